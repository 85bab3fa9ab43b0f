import { describe, expect, it } from 'vitest';
import { ExportDestinationInputSchema } from '../../core/exports.js';
import {
  EvaluationInputSchema,
  evaluationWorkflowId,
  INVOCATION_ID_PATTERN,
  invocationWorkflowId,
  jobIdOf,
  watchCheckpointSeconds,
  type EvaluationInput,
} from '../../workflows/types.js';

describe('watchCheckpointSeconds', () => {
  it('has a 15 s floor for young jobs', () => {
    expect(watchCheckpointSeconds(0)).toBe(15);
    expect(watchCheckpointSeconds(10)).toBe(15);
    expect(watchCheckpointSeconds(150)).toBe(15);
  });

  it('is a tenth of the elapsed time in between, rounded to whole seconds', () => {
    expect(watchCheckpointSeconds(151)).toBe(15);
    expect(watchCheckpointSeconds(160)).toBe(16);
    expect(watchCheckpointSeconds(1234)).toBe(123);
    expect(watchCheckpointSeconds(1235)).toBe(124);
    expect(watchCheckpointSeconds(20_000)).toBe(2000);
  });

  it('caps at one hour', () => {
    expect(watchCheckpointSeconds(36_000)).toBe(3600);
    expect(watchCheckpointSeconds(36_010)).toBe(3600);
    expect(watchCheckpointSeconds(7 * 86_400)).toBe(3600);
  });

  it('is monotone non-decreasing in the elapsed time', () => {
    let last = 0;
    for (let t = 0; t <= 100_000; t += 37) {
      const s = watchCheckpointSeconds(t);
      expect(s).toBeGreaterThanOrEqual(last);
      last = s;
    }
  });

  it('keeps a 7-day job well below the history limit: < 300 watch calls, < 2,000 events', () => {
    const SEVEN_DAYS = 7 * 86_400;
    let elapsed = 0;
    let calls = 0;
    while (elapsed < SEVEN_DAYS) {
      const step = watchCheckpointSeconds(elapsed);
      expect(step).toBeGreaterThanOrEqual(15);
      elapsed += step;
      calls++;
    }
    expect(calls).toBeLessThan(300);
    const EVENTS_PER_CALL = 6; // scheduled, started, completed + timer / workflow-task events
    expect(calls * EVENTS_PER_CALL).toBeLessThan(2000);
    expect(calls * EVENTS_PER_CALL).toBeLessThan(51_200 / 10);
    // The first ten checkpoints come every 15 s: live progress early on.
    expect(watchCheckpointSeconds(0) * 10).toBe(150);
  });
});

describe('ids', () => {
  it('builds workflow ids and job ids as the design names them', () => {
    expect(jobIdOf('0123456789abcdef', 3)).toBe('0123456789abcdef.3');
    expect(invocationWorkflowId('0123456789abcdef')).toBe('evalflow-0123456789abcdef');
    expect(evaluationWorkflowId('0123456789abcdef.3')).toBe('evalflow-0123456789abcdef.3');
    expect(INVOCATION_ID_PATTERN.test('0123456789abcdef')).toBe(true);
    expect(INVOCATION_ID_PATTERN.test('0123456789ABCDEF')).toBe(false);
  });
});

function input(over: Record<string, unknown> = {}): EvaluationInput {
  return {
    invocationId: '0123456789abcdef',
    taskIndex: 0,
    taskName: 'evalflow.gsm8k',
    jobName: 'gsm8k.0',
    jobDir: '/runs/20260105_030405-0123456789abcdef/gsm8k.0',
    builtinHarness: true,
    executor: { kind: 'process' },
    endpoint: { url: 'http://127.0.0.1:8000/v1/chat/completions', modelId: 'm', type: 'chat', readinessTimeoutS: 60 },
    runConfig: { config: { type: 'gsm8k' } },
    ...over,
  } as EvaluationInput;
}

function issuePaths(value: unknown): string[] {
  const parsed = EvaluationInputSchema.safeParse(value);
  if (parsed.success) return [];
  return parsed.error.issues.map((i) => i.path.join('.'));
}

describe('EvaluationInputSchema', () => {
  it('applies defaults: env {}, limits {maxAttempts 3, heartbeatTimeoutS 60}, exports []', () => {
    const parsed = EvaluationInputSchema.parse(input());
    expect(parsed.env).toEqual({});
    expect(parsed.limits).toEqual({ maxAttempts: 3, heartbeatTimeoutS: 60 });
    expect(parsed.exports).toEqual([]);
  });

  it('fills missing limit fields and the export settings and env', () => {
    const parsed = EvaluationInputSchema.parse(input({ limits: { maxAttempts: 5 }, exports: [{ kind: 'local' }, { kind: 'mlflow', settings: { experiment_name: 'x' } }] }));
    expect(parsed.limits).toEqual({ maxAttempts: 5, heartbeatTimeoutS: 60 });
    expect(parsed.exports).toEqual([
      { kind: 'local', settings: {}, env: {} },
      { kind: 'mlflow', settings: { experiment_name: 'x' }, env: {} },
    ]);
    expect(issuePaths(input({ exports: [{ kind: 'wandb' }] }))).toEqual(['exports.0']);
  });

  it('takes the local export destination of workflows started before exporters were plug-ins, so they keep replaying', () => {
    const parsed = EvaluationInputSchema.parse(input({ exports: [{ kind: 'local', format: 'json' }] }));
    expect(parsed.exports).toEqual([{ kind: 'local', settings: { format: 'json' }, env: {} }]);
  });

  it('the export activity also takes the local destination of evalflow 0.1 workflows', () => {
    expect(ExportDestinationInputSchema.parse({ kind: 'local', format: 'csv', outputDir: '/x', outputFilename: 'f' })).toEqual({
      kind: 'local',
      settings: { format: 'csv', output_dir: '/x', output_filename: 'f' },
      env: {},
    });
    expect(ExportDestinationInputSchema.parse({ kind: 'local' })).toEqual({ kind: 'local', settings: {}, env: {} });
  });

  it('accepts host, lit and runtime env refs', () => {
    const env = { A: { kind: 'host', name: 'A_ON_HOST' }, _B2: { kind: 'lit', value: '' }, C: { kind: 'runtime', name: 'C' } };
    expect(EvaluationInputSchema.parse(input({ env })).env).toEqual(env);
  });

  it('rejects bad invocation ids', () => {
    for (const id of ['0123456789ABCDEF', '0123456789abcde', '0123456789abcdef0', 'g123456789abcdef', '', '../../etc/passwd']) {
      expect(issuePaths(input({ invocationId: id })), id).toEqual(['invocationId']);
    }
    const parsed = EvaluationInputSchema.safeParse(input({ invocationId: 'XYZ' }));
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toBe('must be 16 lowercase hex characters');
  });

  it('rejects a relative jobDir', () => {
    expect(issuePaths(input({ jobDir: 'runs/gsm8k.0' }))).toEqual(['jobDir']);
    expect(issuePaths(input({ jobDir: './gsm8k.0' }))).toEqual(['jobDir']);
  });

  it('rejects bad env names and malformed env refs', () => {
    for (const name of ['1ABC', 'A-B', 'A B', '', 'A=B']) {
      expect(issuePaths(input({ env: { [name]: { kind: 'host', name: 'X' } } })).length, name).toBeGreaterThan(0);
    }
    expect(issuePaths(input({ env: { A: { kind: 'secret', value: 'x' } } }))).toEqual(['env.A.kind']);
    expect(issuePaths(input({ env: { A: { kind: 'host', name: 'X', value: 'leak' } } }))).toEqual(['env.A']);
    expect(issuePaths(input({ env: { A: { kind: 'host', name: '' } } }))).toEqual(['env.A.name']);
  });

  it('rejects bad job names, endpoints, limits and unknown keys', () => {
    expect(issuePaths(input({ jobName: '../gsm8k.0' }))).toEqual(['jobName']);
    expect(issuePaths(input({ jobName: 'gsm8k 0' }))).toEqual(['jobName']);
    expect(issuePaths(input({ endpoint: { url: 'ftp://x', modelId: 'm', type: 'chat', readinessTimeoutS: 1 } }))).toEqual(['endpoint.url']);
    expect(issuePaths(input({ endpoint: { url: 'http://x', modelId: 'm', type: 'embedding', readinessTimeoutS: 1 } }))).toEqual(['endpoint.type']);
    expect(issuePaths(input({ endpoint: { url: 'http://x', modelId: 'm', type: 'chat', readinessTimeoutS: 1, apiKey: 'sk-1' } }))).toEqual(['endpoint']);
    expect(issuePaths(input({ limits: { maxAttempts: 0 } }))).toEqual(['limits.maxAttempts']);
    expect(issuePaths(input({ limits: { heartbeatTimeoutS: 5 } }))).toEqual(['limits.heartbeatTimeoutS']);
    expect(issuePaths(input({ taskIndex: -1 }))).toEqual(['taskIndex']);
    expect(issuePaths(input({ executor: { kind: 'podman' } }))).toEqual(['executor.kind']);
    expect(issuePaths(input({ runtime: 'process' }))).toEqual(['']);
    expect(issuePaths(input({ secret: 'x' }))).toEqual(['']);
  });
});
