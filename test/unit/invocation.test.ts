import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { assertRunnable, buildInvocationInput, newInvocationId, runDirName } from '../../client/invocation.js';
import { ConfigError } from '../../config/errors.js';
import { loadRunConfig } from '../../config/load.js';
import { planTasks } from '../../config/plan.js';
import { EvaluationInputSchema, InvocationInputSchema } from '../../workflows/types.js';

const dir = mkdtempSync(join(tmpdir(), 'evalflow-invocation-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const URL_CHAT = 'http://127.0.0.1:8000/v1/chat/completions';
const INV = '0123456789abcdef';
// Local-time constructor: runDirName formats local time, so this is timezone independent.
const NOW = new Date(2026, 0, 5, 3, 4, 5);

function config(over: { runtime?: string; destinations?: string[]; exportLocal?: Record<string, unknown> | null; taskParams?: Record<string, unknown> } = {}) {
  return {
    execution: {
      output_dir: './results',
      runtime: over.runtime ?? 'process',
      max_attempts: 4,
      heartbeat_timeout: 45,
      endpoint_readiness_timeout: 120,
      auto_export: { destinations: over.destinations ?? ['local'] },
    },
    target: { api_endpoint: { url: URL_CHAT, model_id: 'tiny-model', api_key_name: 'MY_API_KEY' } },
    env_vars: { HF_TOKEN: 'host:HF_TOKEN_ON_HOST' },
    evaluation: {
      nemo_evaluator_config: { config: { params: { parallelism: 4, extra: { shared: 1 } } } },
      tasks: [
        { name: 'evalflow.gsm8k', dataset_dir: './data' },
        { name: 'evalflow.mmlu', dataset_dir: './data', nemo_evaluator_config: { config: { params: { limit_samples: 20, ...(over.taskParams ?? {}) } } } },
      ],
    },
    ...(over.exportLocal === null ? {} : { export: { local: over.exportLocal ?? { format: 'csv' } } }),
  };
}

let n = 0;
function load(cfg: object, taskFilter?: string[]) {
  const file = join(dir, `config-${n++}.yaml`);
  writeFileSync(file, stringify(cfg));
  return loadRunConfig({ configPath: file, cwd: dir, env: {}, ...(taskFilter ? { taskFilter } : {}) });
}

function build(cfg: object, taskFilter?: string[]) {
  const loaded = load(cfg, taskFilter);
  return buildInvocationInput(loaded, planTasks(loaded), { invocationId: INV, now: NOW });
}

describe('newInvocationId', () => {
  it('is 16 lowercase hex characters and random', () => {
    const ids = new Set(Array.from({ length: 50 }, () => newInvocationId()));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(ids.size).toBe(50);
  });
});

describe('runDirName', () => {
  it('formats YYYYmmdd_HHMMSS-<inv> with zero padding in local time', () => {
    expect(runDirName(NOW, INV)).toBe('20260105_030405-0123456789abcdef');
    expect(runDirName(new Date(2025, 11, 31, 23, 59, 58), 'ffffffffffffffff')).toBe('20251231_235958-ffffffffffffffff');
  });
});

describe('buildInvocationInput', () => {
  it('builds the input for the tasks kept by -t, keeping their original positions', () => {
    const input = build(config(), ['evalflow.mmlu']);
    const runDir = join(dir, 'results', '20260105_030405-0123456789abcdef');
    expect(input.invocationId).toBe(INV);
    expect(input.runDir).toBe(runDir);
    expect(input.model).toBe('tiny-model');
    expect(input.backend).toBe('local/process');
    expect(input.mode).toBe('sequential');
    expect('maxParallel' in input).toBe(false);
    expect(input.tasks).toHaveLength(1);

    const task = input.tasks[0];
    if (!task) throw new Error('no task');
    expect(task.taskIndex).toBe(1);
    expect(task.jobName).toBe('mmlu.1');
    expect(task.taskName).toBe('evalflow.mmlu');
    expect(task.jobDir).toBe(join(runDir, 'mmlu.1'));
    expect(task.executor).toEqual({ kind: 'process' });
    expect(task.builtinHarness).toBe(true);
    expect(task.limits).toEqual({ maxAttempts: 4, heartbeatTimeoutS: 45 });
    expect(task.endpoint).toEqual({ url: URL_CHAT, modelId: 'tiny-model', type: 'chat', apiKeyName: 'MY_API_KEY', readinessTimeoutS: 120 });

    expect(task.runConfig).toEqual({
      config: {
        type: 'mmlu',
        output_dir: join(runDir, 'mmlu.1', 'artifacts'),
        params: { parallelism: 4, limit_samples: 20, extra: { endpoint_outage_timeout: 120, shared: 1, dataset_dir: join(dir, 'data') } },
      },
      target: { api_endpoint: { url: URL_CHAT, model_id: 'tiny-model', type: 'chat', api_key_name: 'MY_API_KEY' } },
      metadata: { invocation_id: INV, job_id: `${INV}.1`, task: 'evalflow.mmlu', versioning: { evalflow: expect.any(String) } },
    });

    // The API key travels only as a name: to read on the worker host.
    expect(task.env).toEqual({ HF_TOKEN: { kind: 'host', name: 'HF_TOKEN_ON_HOST' }, MY_API_KEY: { kind: 'host', name: 'MY_API_KEY' } });
    expect(task.exports).toEqual([{ kind: 'local', settings: { format: 'csv' }, env: {} }]);
  });

  it('builds every task without a filter, each with its own index, job dir and artifacts dir', () => {
    const input = build(config());
    expect(input.tasks.map((t) => [t.taskIndex, t.jobName, t.jobDir.slice(input.runDir.length)])).toEqual([
      [0, 'gsm8k.0', '/gsm8k.0'],
      [1, 'mmlu.1', '/mmlu.1'],
    ]);
    const gsm8k = input.tasks[0]?.runConfig as { config: { type: string; output_dir: string; params: Record<string, unknown> } };
    expect(gsm8k.config.type).toBe('gsm8k');
    expect(gsm8k.config.output_dir).toBe(join(input.runDir, 'gsm8k.0', 'artifacts'));
    expect(gsm8k.config.params).toEqual({ parallelism: 4, extra: { endpoint_outage_timeout: 120, shared: 1, dataset_dir: join(dir, 'data') } });
  });

  it('validates against InvocationInputSchema (and each task against EvaluationInputSchema)', () => {
    const input = build(config(), ['evalflow.mmlu']);
    const parsed = InvocationInputSchema.safeParse(input);
    expect(parsed.success ? 'ok' : parsed.error.message).toBe('ok');
    for (const task of input.tasks) expect(EvaluationInputSchema.safeParse(task).success).toBe(true);
  });

  it('never carries a secret value: only names of env vars', () => {
    const input = build(config());
    const text = JSON.stringify(input);
    expect(text).toContain('MY_API_KEY');
    expect(text).not.toMatch(/Bearer|sk-/);
    for (const task of input.tasks) {
      for (const ref of Object.values(task.env ?? {})) expect(ref.kind).toBe('host');
    }
  });

  it('copies parallel mode and max_parallel_tasks', () => {
    const cfg = config();
    Object.assign(cfg.execution, { mode: 'parallel', max_parallel_tasks: 2 });
    const input = build(cfg);
    expect(input.mode).toBe('parallel');
    expect(input.maxParallel).toBe(2);
  });

  it('exports: each destination with its export.<dest> settings and the names in export.env_vars; no destinations → none', () => {
    expect(build(config({ exportLocal: null })).tasks[0]?.exports).toEqual([{ kind: 'local', settings: {}, env: {} }]);
    const custom = build(config({ exportLocal: { format: 'json', output_dir: 'exports', output_filename: 'all', layout: 'upstream' } }));
    expect(custom.tasks[0]?.exports).toEqual([{ kind: 'local', settings: { format: 'json', output_dir: join(dir, 'exports'), output_filename: 'all', layout: 'upstream' }, env: {} }]);
    expect(build(config({ destinations: [] })).tasks[0]?.exports).toEqual([]);
    const mlflow = build({
      ...config({ destinations: ['mlflow', 'local'], exportLocal: null }),
      export: { mlflow: { tracking_uri: 'http://127.0.0.1:5000', experiment_name: 'nightly' }, env_vars: { MLFLOW_TRACKING_TOKEN: 'host:MY_MLFLOW_TOKEN' } },
    });
    expect(mlflow.tasks[0]?.exports).toEqual([
      { kind: 'mlflow', settings: { tracking_uri: 'http://127.0.0.1:5000', experiment_name: 'nightly' }, env: { MLFLOW_TRACKING_TOKEN: { kind: 'host', name: 'MY_MLFLOW_TOKEN' } } },
      { kind: 'local', settings: {}, env: { MLFLOW_TRACKING_TOKEN: { kind: 'host', name: 'MY_MLFLOW_TOKEN' } } },
    ]);
  });

  it('export settings are checked by their exporter when the config is loaded (exit 2, key named)', () => {
    expect(() => load({ ...config(), export: { mlflow: { experiment_nam: 'x' } } })).toThrow(/export\.mlflow.*experiment_nam/);
    expect(() => load({ ...config(), export: { local: { layout: 'flat' } } })).toThrow(/export\.local\.layout/);
  });

  it('gives built-in tasks the readiness timeout as their outage limit, unless the task sets its own', () => {
    const input = build(config({ taskParams: { extra: { endpoint_outage_timeout: 30 } } }));
    const extraOf = (i: number) => (input.tasks[i]?.runConfig as { config: { params: { extra: Record<string, unknown> } } }).config.params.extra;
    expect(extraOf(0).endpoint_outage_timeout).toBe(120);
    expect(extraOf(1).endpoint_outage_timeout).toBe(30);
  });

  it('passes execution.endpoint_parallelism to built-in tasks with the invocation as the limit group', () => {
    const cfg = config();
    Object.assign(cfg.execution, { endpoint_parallelism: 6 });
    const input = build(cfg);
    for (const task of input.tasks) {
      const { extra } = (task.runConfig as { config: { params: { extra: Record<string, unknown> } } }).config.params;
      expect(extra).toMatchObject({ endpoint_parallelism: 6, endpoint_limit_group: INV });
    }
    const without = (build(config()).tasks[0]?.runConfig as { config: { params: { extra: Record<string, unknown> } } }).config.params.extra;
    expect(without).not.toHaveProperty('endpoint_parallelism');
  });

  it('plans runtime docker: container paths, the docker executor spec, and runs built-in tasks', () => {
    const loaded = load({ ...config({ runtime: 'docker' }), execution: { ...config().execution, runtime: 'docker', extra_docker_args: '--shm-size 1g', mounts: { evaluation: { '/models': '/models:ro' } } } });
    const input = buildInvocationInput(loaded, planTasks(loaded), { invocationId: INV, now: NOW });
    expect(input.tasks[0]?.executor).toEqual({
      kind: 'docker',
      extraDockerArgs: '--shm-size 1g',
      mounts: { '/models': '/models:ro' },
      dataset: { source: join(dir, 'data'), target: '/datasets' },
    });
    const runConfig = input.tasks[0]?.runConfig as { config: { output_dir: string; params: { extra: { dataset_dir: string } } } };
    expect(runConfig.config.output_dir).toBe('/results');
    expect(runConfig.config.params.extra.dataset_dir).toBe('/datasets');
    expect(() => assertRunnable(loaded, input)).not.toThrow();
  });

  it('streams when the target asks to, unless the task says otherwise', () => {
    const streamOf = (cfg: ReturnType<typeof config>) => build(cfg).tasks.map((t) => (t.runConfig.target as { api_endpoint: { stream?: boolean } }).api_endpoint.stream);
    const cfg = config({ taskParams: {} });
    cfg.target.api_endpoint = { ...cfg.target.api_endpoint, stream: true } as typeof cfg.target.api_endpoint;
    expect(streamOf(cfg)).toEqual([true, true]);
    (cfg.evaluation.tasks[1] as Record<string, unknown>).nemo_evaluator_config = { target: { api_endpoint: { stream: false } } };
    expect(streamOf(cfg)).toEqual([true, false]);
  });

  it('assertRunnable accepts upstream harness containers; their pre_cmd/post_cmd need NEMO_EVALUATOR_TRUST_PRE_CMD=1, as upstream', () => {
    const tasks = [{ name: 'evalflow.gsm8k' }, { name: 'simple_evals.mmlu', post_cmd: 'ls /results' }];
    const loaded = load({ ...config({ runtime: 'docker' }), evaluation: { tasks } });
    const input = buildInvocationInput(loaded, planTasks(loaded), { invocationId: INV, now: NOW });
    expect(() => assertRunnable(loaded, input, { NEMO_EVALUATOR_TRUST_PRE_CMD: '1' })).not.toThrow();
    let caught: unknown;
    try {
      assertRunnable(loaded, input, {});
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).keyPath).toBe('evaluation.tasks[1].post_cmd');
    expect((caught as ConfigError).message).toBe(
      'evaluation.tasks[1].post_cmd: runs a command from the config inside the harness container; set NEMO_EVALUATOR_TRUST_PRE_CMD=1 if you trust it (as upstream)',
    );
  });

  it('a llama_cpp deployment under runtime process is runnable: the process executor starts the server, the input carries its plan', () => {
    const loaded = load({ ...config(), defaults: [{ execution: 'local' }, { deployment: 'llama_cpp' }, '_self_'] });
    const input = buildInvocationInput(loaded, planTasks(loaded), { invocationId: INV, now: NOW });
    expect(() => assertRunnable(loaded, input)).not.toThrow();
    expect(input.tasks[0]?.deployment).toMatchObject({ type: 'llama_cpp', port: 8000, healthUrl: 'http://127.0.0.1:8000/health' });
  });

  it('assertRunnable accepts local and mlflow auto-export, and rejects a destination evalflow lacks, naming its position', () => {
    const runnable = load(config({ destinations: ['local', 'mlflow'] }));
    expect(() => assertRunnable(runnable, buildInvocationInput(runnable, planTasks(runnable), { invocationId: INV, now: NOW }))).not.toThrow();
    const loaded = load(config({ destinations: ['local', 'wandb'] }));
    let caught: unknown;
    try {
      assertRunnable(loaded, buildInvocationInput(loaded, planTasks(loaded), { invocationId: INV, now: NOW }));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).keyPath).toBe('execution.auto_export.destinations[1]');
    expect((caught as ConfigError).message).toContain("'wandb' is not supported (supported: local, mlflow)");
  });
});
