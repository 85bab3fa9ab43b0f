/**
 * The harness on bad disks and bad datasets, with real processes and genuine errors from the kernel: a cache file
 * that is /dev/full (ENOSPC on every flush), a disk that fills up mid-run (a 2 MiB tmpfs in a private mount
 * namespace, filled with dd), an output directory replaced by a file mid-run (the progress timer's write fails), a
 * corrupt or missing dataset. Each ends with its exit code and the reason and message in stage.exit.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { distPath } from '../../common/paths.js';
import { EXIT } from '../../harness/command.js';
import { parseStageExit, parseStageFailure, type StageFailure } from '../../core/harness-contract.js';
import { startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import { DATASETS, runHarnessProcess, tempDir } from '../support/run-helpers.js';

const N = 200;
let fixture: FixtureServer;
beforeAll(async () => {
  fixture = await startFixtureServer({ latencyMs: 20, record: false });
});
afterAll(async () => {
  await fixture.close();
});

function job(opts: { datasetDir?: string; type?: string; extra?: Record<string, unknown> } = {}) {
  const dir = tempDir('evalflow-storage-');
  const jobDir = join(dir, 'job');
  const configFile = join(dir, 'config_ef.yaml');
  mkdirSync(jobDir);
  writeFileSync(
    configFile,
    stringify({
      config: {
        type: opts.type ?? 'gsm8k',
        output_dir: join(jobDir, 'artifacts'),
        params: { limit_samples: N, parallelism: 4, max_retries: 1, extra: { dataset_dir: opts.datasetDir ?? DATASETS, ...opts.extra } },
      },
      target: { api_endpoint: { url: `${fixture.url}/v1/chat/completions`, model_id: 'fixture-model', type: 'chat' } },
    }),
  );
  const logs = join(jobDir, 'logs');
  return { dir, jobDir, configFile, artifacts: join(jobDir, 'artifacts'), logs, args: ['--run_config', configFile, '--stage_dir', logs] };
}

/** The exit code and failure recorded in `logs/stage.exit`. */
function stageExit(logs: string): { exitCode: number | null; failure: StageFailure | null } {
  const text = readFileSync(join(logs, 'stage.exit'), 'utf8');
  return { exitCode: parseStageExit(text), failure: parseStageFailure(text) };
}

describe('harness: I/O errors end the run with exit 5 and the cause in stage.exit', () => {
  it('ENOSPC on a cache flush (the cache file is /dev/full)', async () => {
    const j = job();
    mkdirSync(join(j.artifacts, 'cache'), { recursive: true });
    symlinkSync('/dev/full', join(j.artifacts, 'cache', 'responses.jsonl'));
    const result = await runHarnessProcess(j.args);
    expect(result.code, result.output).toBe(EXIT.storage);
    const exit = stageExit(j.logs);
    expect(exit.exitCode).toBe(EXIT.storage);
    expect(exit.failure).toEqual({
      reason: 'storage',
      message: `writing ${join(j.artifacts, 'cache', 'responses.jsonl')}: ENOSPC: no space left on device`,
    });
    expect(result.output).toContain('run_eval: error: writing');
    // No results from a run whose responses could not be kept.
    expect(existsSync(join(j.artifacts, 'results.yml'))).toBe(false);
  });

  it('the output directory replaced by a file mid-run: the progress timer\'s write fails', async () => {
    const j = job();
    const running = runHarnessProcess(j.args);
    await fixture.waitForRequests(fixture.totalRequests() + N / 2);
    renameSync(j.artifacts, `${j.artifacts}.moved`);
    writeFileSync(j.artifacts, 'not a directory\n');
    const result = await running;
    expect(result.code, result.output).toBe(EXIT.storage);
    expect(stageExit(j.logs).failure).toEqual({
      reason: 'storage',
      message: expect.stringMatching(new RegExp(`^writing ${j.artifacts}/progress: (EEXIST|ENOTDIR): `)) as unknown,
    });
  });

  it('the disk fills up mid-run (tmpfs filled with dd): stage.exit still appears, from space reserved at start', async () => {
    const j = job();
    const out = join(j.dir, 'out');
    // A private mount namespace (unprivileged via a user namespace): the tmpfs is visible to this script only.
    const script = `
      set -u
      mount -t tmpfs -o size=2m evalflow-full "$JOB" || exit 90
      mkdir -p "$JOB/logs"
      "$NODE" "$CLI" run_eval --run_config "$CFG" --stage_dir "$JOB/logs" > "$JOB/logs/client_stdout.log" 2>&1 &
      pid=$!
      while kill -0 $pid 2>/dev/null && [ "$(cat "$JOB/artifacts/progress" 2>/dev/null || echo 0)" -lt ${N / 4} ]; do sleep 0.02; done
      mkdir -p "$OUT"
      dd if=/dev/zero of="$JOB/filler" bs=4k 2> "$OUT/dd.err"; echo $? > "$OUT/dd.rc"
      wait $pid; rc=$?
      cp -a "$JOB/logs" "$OUT/"; echo $rc > "$OUT/rc"
    `;
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn('unshare', ['--user', '--map-root-user', '--mount', 'sh', '-c', script], {
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...process.env, JOB: j.jobDir, CFG: j.configFile, OUT: out, NODE: process.execPath, CLI: distPath('harness', 'cli.js') },
      });
      child.once('error', reject);
      child.once('close', resolve);
    });
    expect(code).toBe(0);
    // Really full while the harness ran: dd stopped on ENOSPC. (Free space measured afterwards is not 0: the
    // harness gives pages back as its writes fail.)
    expect(readFileSync(join(out, 'dd.rc'), 'utf8').trim()).not.toBe('0');
    expect(readFileSync(join(out, 'dd.err'), 'utf8')).toContain('No space left on device');
    expect(Number(readFileSync(join(out, 'rc'), 'utf8'))).toBe(EXIT.storage);
    const exit = stageExit(join(out, 'logs'));
    expect(exit.exitCode).toBe(EXIT.storage);
    expect(exit.failure?.reason).toBe('storage');
    expect(exit.failure?.message).toMatch(new RegExp(`^writing ${j.artifacts}/.*: ENOSPC: no space left on device$`));
  });
});

describe('harness: a scorer\'s missing tool fails the run before any request', () => {
  it('a code benchmark with no python3 on PATH: exit 2, the reason in stage.exit, nothing sent', async () => {
    const j = job({ type: 'humaneval' });
    const sent = fixture.totalRequests();
    const result = await runHarnessProcess(j.args, { env: { PATH: tempDir('evalflow-empty-path-') } });
    expect(result.code, result.output).toBe(EXIT.config);
    expect(stageExit(j.logs).failure).toEqual({
      reason: 'config',
      message: expect.stringMatching(/^humaneval: python3 is not on PATH here, and each generation is scored by running it with python3 \(the harness image has none: run code benchmarks with execution.runtime: process or on Slurm\)$/) as unknown,
    });
    expect(fixture.totalRequests()).toBe(sent);
  });
});

describe('harness: a corrupt or missing dataset fails with the file and line in stage.exit', () => {
  it('a line that is not JSON', async () => {
    const datasets = tempDir('evalflow-bad-dataset-');
    mkdirSync(join(datasets, 'gsm8k'));
    const good = readFileSync(join(DATASETS, 'gsm8k', 'test.jsonl'), 'utf8').split('\n').slice(0, 4);
    writeFileSync(join(datasets, 'gsm8k', 'test.jsonl'), [...good.slice(0, 2), '{"question": "cut off', ...good.slice(2)].join('\n'));
    const j = job({ datasetDir: datasets });
    const result = await runHarnessProcess(j.args);
    expect(result.code, result.output).toBe(EXIT.config);
    const exit = stageExit(j.logs);
    expect(exit.failure?.reason).toBe('dataset');
    expect(exit.failure?.message).toMatch(new RegExp(`^loading gsm8k samples from ${datasets}: ${join(datasets, 'gsm8k', 'test.jsonl')}:3: invalid JSON`));
  });

  it('a missing file', async () => {
    const j = job({ type: 'custom', extra: { dataset_path: 'nowhere/qa.jsonl', prompt_template: 'Q: {{q}}' } });
    const result = await runHarnessProcess(j.args);
    expect(result.code, result.output).toBe(EXIT.config);
    expect(stageExit(j.logs).failure).toEqual({
      reason: 'dataset',
      message: `loading custom samples from ${DATASETS}: custom dataset (config.params.extra.dataset_path): file not found: ${join(DATASETS, 'nowhere', 'qa.jsonl')}`,
    });
  });
});
