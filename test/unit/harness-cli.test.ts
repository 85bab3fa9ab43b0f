import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { applyCliArgs, EXIT, runEvalCommand } from '../../harness/command.js';
import { HarnessConfigError } from '../../harness/engine.js';
import { formatStageExit, parseStageExit, parseStageFailure } from '../../core/harness-contract.js';

const root = mkdtempSync(join(tmpdir(), 'evalflow-harness-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const fileConfig = () => ({
  config: { type: 'gsm8k', output_dir: '/from/file', params: { limit_samples: 10, parallelism: 1 } },
  target: { api_endpoint: { url: 'http://file:8000/v1/chat/completions', model_id: 'file-model', type: 'chat' } },
});

describe('applyCliArgs', () => {
  it('leaves the file config unchanged without flags and does not mutate its input', () => {
    const raw = fileConfig();
    const out = applyCliArgs(raw, {});
    expect(out).toEqual(fileConfig());
    const changed = applyCliArgs(raw, { model_id: 'other', overrides: 'config.params.limit_samples=3' });
    expect((changed.target as { api_endpoint: { model_id: string } }).api_endpoint.model_id).toBe('other');
    expect(raw).toEqual(fileConfig());
  });

  it('maps each flag onto its key path (flags beat the file)', () => {
    const out = applyCliArgs(fileConfig(), {
      output_dir: '/from/flag',
      eval_type: 'mmlu',
      model_id: 'flag-model',
      model_url: 'http://flag/v1/completions',
      model_type: 'completions',
      api_key_name: 'FLAG_KEY',
    });
    expect(out).toEqual({
      config: { type: 'mmlu', output_dir: '/from/flag', params: { limit_samples: 10, parallelism: 1 } },
      target: { api_endpoint: { url: 'http://flag/v1/completions', model_id: 'flag-model', type: 'completions', api_key_name: 'FLAG_KEY' } },
    });
  });

  it('lets --overrides beat the flags and the file', () => {
    const out = applyCliArgs(fileConfig(), {
      model_id: 'flag-model',
      output_dir: '/from/flag',
      overrides: 'target.api_endpoint.model_id=override-model,config.params.limit_samples=2',
    }) as ReturnType<typeof fileConfig>;
    expect(out.target.api_endpoint.model_id).toBe('override-model');
    expect(out.config.output_dir).toBe('/from/flag');
    expect(out.config.params.limit_samples).toBe(2);
    expect(out.config.params.parallelism).toBe(1);
  });

  it('parses override values as YAML scalars (numbers, booleans, null, strings)', () => {
    const out = applyCliArgs(fileConfig(), {
      overrides: 'config.params.limit_samples=0.5,target.api_endpoint.stream=true,config.params.temperature=0,config.params.task=null,config.params.extra.name=hello world,config.params.extra.quoted="42"',
    }) as { config: { params: Record<string, unknown> }; target: { api_endpoint: Record<string, unknown> } };
    expect(out.config.params.limit_samples).toBe(0.5);
    expect(out.target.api_endpoint.stream).toBe(true);
    expect(out.config.params.temperature).toBe(0);
    expect(out.config.params.task).toBeNull();
    expect(out.config.params.extra).toEqual({ name: 'hello world', quoted: '42' });
  });

  it('creates missing intermediate mappings and replaces scalars on the way', () => {
    const out = applyCliArgs({ config: 'scalar' }, { overrides: 'config.params.extra.k=1', model_id: 'm' });
    expect(out).toEqual({ config: { params: { extra: { k: 1 } } }, target: { api_endpoint: { model_id: 'm' } } });
  });

  it('keeps "=" inside a value and trims the key', () => {
    const out = applyCliArgs({}, { overrides: ' config.params.extra.expr =a=b' }) as { config: { params: { extra: Record<string, unknown> } } };
    expect(out.config.params.extra.expr).toBe('a=b');
  });

  it('ignores a blank --overrides', () => {
    expect(applyCliArgs(fileConfig(), { overrides: '   ' })).toEqual(fileConfig());
  });

  it('rejects an override without key=value', () => {
    expect(() => applyCliArgs({}, { overrides: 'config.type' })).toThrow(HarnessConfigError);
    expect(() => applyCliArgs({}, { overrides: 'config.type' })).toThrow('--overrides: expected key=value, got "config.type"');
    expect(() => applyCliArgs({}, { overrides: '=5' })).toThrow('--overrides: expected key=value, got "=5"');
    expect(() => applyCliArgs({}, { overrides: 'a=1,,b=2' })).toThrow('--overrides: expected key=value, got ""');
  });

  it('does not let an override key path write to Object.prototype', () => {
    const probe = {} as Record<string, unknown>;
    try {
      try {
        applyCliArgs({}, { overrides: '__proto__.evalflowPolluted=yes' });
      } catch (err) {
        expect(err).toBeInstanceOf(HarnessConfigError); // rejecting the key is fine too
      }
      expect(probe.evalflowPolluted).toBeUndefined();
    } finally {
      delete (Object.prototype as Record<string, unknown>).evalflowPolluted;
    }
  });
});

describe('runEvalCommand', () => {
  const captured = { out: '', err: '' };
  const capture = () => {
    captured.out = '';
    captured.err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      captured.out += String(chunk);
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      captured.err += String(chunk);
      return true;
    });
  };
  afterEach(() => vi.restoreAllMocks());

  it('prints usage and exits 0 for --help and -h', async () => {
    capture();
    expect(await runEvalCommand(['--help'])).toBe(EXIT.ok);
    expect(captured.out).toMatch(/^usage: run_eval --run_config FILE/);
    expect(await runEvalCommand(['-h'])).toBe(0);
  });

  it('exits 2 with usage for an unknown flag', async () => {
    capture();
    expect(await runEvalCommand(['--run_config', 'x.yml', '--bogus'])).toBe(EXIT.config);
    expect(EXIT.config).toBe(2);
    expect(captured.err).toContain("run_eval: Unknown option '--bogus'");
    expect(captured.err).toContain('usage: run_eval');
  });

  it('exits 2 for a positional argument', async () => {
    capture();
    expect(await runEvalCommand(['stray'])).toBe(2);
  });

  it('exits 2 when --run_config is missing, and records the exit in the stage dir', async () => {
    capture();
    const stageDir = join(root, 'stage-missing');
    const sigterm = process.listenerCount('SIGTERM');
    expect(await runEvalCommand(['--stage_dir', stageDir])).toBe(2);
    expect(captured.err).toContain('run_eval: error: --run_config is required');
    expect(readFileSync(join(stageDir, 'stage.running'), 'utf8')).toMatch(new RegExp(` ${process.pid}\\n$`));
    const stageExit = readFileSync(join(stageDir, 'stage.exit'), 'utf8');
    expect(stageExit).toMatch(/^\d{4}-\d\d-\d\dT\S+ 2\n/);
    expect(parseStageExit(stageExit)).toBe(2);
    expect(parseStageFailure(stageExit)).toEqual({ reason: 'config', message: '--run_config is required' });
    expect(readdirSync(stageDir).sort()).toEqual(['stage.exit', 'stage.running']); // the reserved space became stage.exit
    expect(process.listenerCount('SIGTERM')).toBe(sigterm); // its signal handlers are removed again
  });

  it('exits 2 for a run config file that does not exist or is not valid YAML', async () => {
    capture();
    expect(await runEvalCommand(['--run_config', join(root, 'nope.yml')])).toBe(2);
    const broken = join(root, 'broken.yml');
    writeFileSync(broken, 'config: [unclosed\n');
    expect(await runEvalCommand(['--run_config', broken])).toBe(2);
    expect(captured.err).toContain(broken);
  });

  it('exits 2 for a bad --overrides item', async () => {
    capture();
    const file = join(root, 'ok.yml');
    writeFileSync(file, stringify(fileConfig()));
    expect(await runEvalCommand(['--run_config', file, '--overrides', 'nokey'])).toBe(2);
    expect(captured.err).toContain('--overrides: expected key=value, got "nokey"');
  });

  it('--dry_run prints the merged config and exits 0 without running anything', async () => {
    capture();
    const file = join(root, 'dry.yml');
    const output = join(root, 'dry-out');
    writeFileSync(file, stringify(fileConfig()));
    const code = await runEvalCommand(['--run_config', file, '--dry_run', '--output_dir', output, '--overrides', 'config.params.limit_samples=4']);
    expect(code).toBe(0);
    const printed = JSON.parse(captured.out) as ReturnType<typeof fileConfig>;
    expect(printed.config.output_dir).toBe(output);
    expect(printed.config.params.limit_samples).toBe(4);
    expect(existsSync(output)).toBe(false);
  });

  it('exits 2 for an invalid run config (HarnessConfigError from the engine), naming the key', async () => {
    capture();
    const file = join(root, 'invalid.yml');
    const cfg = fileConfig();
    (cfg.config.params as Record<string, unknown>).parallelism = 0;
    writeFileSync(file, stringify(cfg));
    expect(await runEvalCommand(['--run_config', file])).toBe(2);
    expect(captured.err).toContain('run config config.params.parallelism');
  });
});

describe('stage.exit format', () => {
  const at = new Date('2026-11-30T06:00:00.000Z');

  it('round-trips: first line "<time> <code>", then the failure as one JSON line (none for 0)', () => {
    const failure = { reason: 'dataset' as const, message: 'gsm8k dataset: /d/test.jsonl:17: invalid JSON (Unexpected token)' };
    const text = formatStageExit(at, 2, failure);
    expect(text).toBe(`2026-11-30T06:00:00.000Z 2\n${JSON.stringify(failure)}\n`);
    expect(parseStageExit(text)).toBe(2);
    expect(parseStageFailure(text)).toEqual(failure);
    expect(formatStageExit(at, 0)).toBe('2026-11-30T06:00:00.000Z 0\n');
    expect(parseStageFailure(formatStageExit(at, 0))).toBeNull();
  });

  it('keeps the code of older or damaged files, and bounds the message', () => {
    expect(parseStageExit('t 143\nnot json\n')).toBe(143);
    expect(parseStageFailure('t 143\nnot json\n')).toBeNull();
    expect(parseStageFailure('t 3\n{"reason":"nope","message":"x"}\n')).toBeNull();
    expect(parseStageExit('')).toBeNull();
    expect(parseStageExit('t x\n')).toBeNull();
    const long = formatStageExit(at, 1, { reason: 'unexpected', message: 'x'.repeat(10_000) });
    expect(parseStageFailure(long)?.message).toHaveLength(4000);
  });
});
