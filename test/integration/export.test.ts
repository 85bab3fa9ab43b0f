/**
 * Exporters against real components: a run through the real Temporal server (fixture endpoint), then
 * `evalflow export` to a real MLflow tracking server (PyPI mlflow, SQLite backend, proxied artifacts)
 * twice: one run per job, its tags, params, metrics and artifacts, once; auto-export to MLflow and local
 * files from the workflow. And the local exporter in upstream's layout.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMlflowServer, type MlflowServer } from '../../scripts/mlflow-server.js';
import { answerFromTable, startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import { freePort } from '../../common/ports.js';
import { cli, DATASETS, gsm8kHead, startedInvocationId, tempDir, writeConfig } from '../support/run-helpers.js';
import { startWorker, testTarget, type RunningWorker } from '../support/temporal.js';

const N = 6;

describe('evalflow export to MLflow and local files (upstream layout)', () => {
  let fixture: FixtureServer;
  let worker: RunningWorker;
  let mlflow: MlflowServer;
  let dir: string;
  let inv: string;

  const api = async <T>(path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${mlflow.url}/api/2.0/mlflow/${path}`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.ok, `${path}: ${res.status}`).toBe(true);
    return (await res.json()) as T;
  };

  beforeAll(async () => {
    process.env.TEMPORAL_ADDRESS = testTarget().address;
    dir = tempDir();
    // Several minutes on a loaded 2-core machine (the server imports a lot of Python).
    mlflow = await startMlflowServer({ port: await freePort(), dir: join(dir, 'mlflow'), startTimeoutS: 400 });
    const table = Object.fromEntries(gsm8kHead(N).map(({ question, answer }, i) => [question, `The final answer is ${i < 4 ? answer : 0}`]));
    fixture = await startFixtureServer({ answer: answerFromTable(table) });
    worker = await startWorker();
    const config = writeConfig(
      dir,
      `
defaults:
  - execution: local
  - deployment: none
  - _self_
execution:
  output_dir: ${dir}/results
  runtime: process
target:
  api_endpoint: {url: '${fixture.url}/v1/chat/completions', model_id: fixture-model, type: chat}
evaluation:
  tasks:
    - name: evalflow.gsm8k
      dataset_dir: ${DATASETS}
      nemo_evaluator_config: {config: {params: {limit_samples: ${N}, parallelism: 2}}}
`,
    );
    const res = await cli('run', '-c', config, '--wait');
    expect(res.code, res.stdout + res.stderr).toBe(0);
    inv = startedInvocationId(res.stdout);
  }, 600_000);

  afterAll(async () => {
    await worker?.stop();
    await fixture?.close();
    await mlflow?.stop();
  });

  it('exports a job to MLflow once, however often it is exported', async () => {
    const args = ['export', inv.slice(0, 8), '--dest', 'mlflow', '-o', `export.mlflow.tracking_uri=${mlflow.url}`, '-o', 'export.mlflow.experiment_name=evalflow-it', '-o', 'export.mlflow.log_config_params=true', '--copy-logs'];
    const first = await cli(...args);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toContain(`${inv}.0: exported`);
    const again = await cli(...args);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`${inv}.0: exported`);
    const skipped = await cli(...args, '-o', 'export.mlflow.skip_existing=true');
    expect(skipped.stdout).toContain(`${inv}.0: skipped`);

    const { experiment } = await api<{ experiment: { experiment_id: string } }>('experiments/get-by-name?experiment_name=evalflow-it');
    const { runs } = await api<{ runs: Array<{ info: { run_id: string; status: string }; data: { tags: Array<{ key: string; value: string }>; params: Array<{ key: string; value: string }>; metrics: Array<{ key: string; value: number }> } }> }>(
      'runs/search',
      { experiment_ids: [experiment.experiment_id] },
    );
    expect(runs).toHaveLength(1);
    const run = runs[0]!;
    expect(run.info.status).toBe('FINISHED');
    const tags = Object.fromEntries(run.data.tags.map((t) => [t.key, t.value]));
    expect(tags).toMatchObject({ invocation_id: inv, job_id: `${inv}.0`, task_name: 'gsm8k', harness: 'evalflow', model: 'fixture-model', executor: 'local', 'mlflow.runName': `eval-${inv}-gsm8k` });
    const params = Object.fromEntries(run.data.params.map((p) => [p.key, p.value]));
    expect(params).toMatchObject({ invocation_id: inv, model: 'fixture-model', 'config.config.params.limit_samples': String(N) });
    const metrics = Object.fromEntries(run.data.metrics.map((m) => [m.key, m.value]));
    expect(metrics.gsm8k_accuracy).toBeCloseTo(4 / N, 12);
    const list = async (path: string) =>
      (await api<{ files?: Array<{ path: string }> }>(`artifacts/list?run_id=${run.info.run_id}&path=${encodeURIComponent(path)}`)).files?.map((f) => f.path) ?? [];
    expect((await list('evalflow.gsm8k/artifacts')).sort()).toEqual(
      ['eval_factory_metrics.json', 'metadata.yaml', 'results.yml', 'run_config.yml'].map((f) => `evalflow.gsm8k/artifacts/${f}`),
    );
    expect(await list('evalflow.gsm8k/logs')).toContain('evalflow.gsm8k/logs/client_stdout.log');
    const stored = readFileSync(join(dir, 'mlflow', 'artifacts', experiment.experiment_id, run.info.run_id, 'artifacts', 'evalflow.gsm8k', 'artifacts', 'results.yml'), 'utf8');
    expect(stored).toContain('gsm8k');
  });

  it('auto-export to MLflow and local from the workflow: the tracking URI from export.env_vars, resolved on the worker; a later export updates the same run', async () => {
    process.env.EVALFLOW_IT_MLFLOW_URI = mlflow.url;
    const config = writeConfig(
      dir,
      `
defaults:
  - execution: local
  - deployment: none
  - _self_
execution:
  output_dir: ${dir}/auto
  runtime: process
  auto_export:
    destinations: [mlflow, local]
export:
  mlflow: {experiment_name: evalflow-auto, tags: {suite: auto}}
  local: {format: csv}
  env_vars: {MLFLOW_TRACKING_URI: 'host:EVALFLOW_IT_MLFLOW_URI'}
target:
  api_endpoint: {url: '${fixture.url}/v1/chat/completions', model_id: fixture-model, type: chat}
evaluation:
  tasks:
    - name: evalflow.gsm8k
      dataset_dir: ${DATASETS}
      nemo_evaluator_config: {config: {params: {limit_samples: ${N}, parallelism: 2}}}
`,
      'auto.yaml',
    );
    const res = await cli('run', '-c', config, '--wait');
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const auto = startedInvocationId(res.stdout);
    const runsOf = async () => {
      const { experiment } = await api<{ experiment: { experiment_id: string } }>('experiments/get-by-name?experiment_name=evalflow-auto');
      return (
        await api<{ runs?: Array<{ info: { run_id: string; status: string }; data: { tags: Array<{ key: string; value: string }>; metrics: Array<{ key: string; value: number }> } }> }>('runs/search', {
          experiment_ids: [experiment.experiment_id],
        })
      ).runs ?? [];
    };
    const runs = await runsOf();
    expect(runs).toHaveLength(1);
    expect(runs[0]?.info.status).toBe('FINISHED');
    expect(Object.fromEntries(runs[0]?.data.tags.map((t) => [t.key, t.value]) ?? [])).toMatchObject({ invocation_id: auto, job_id: `${auto}.0`, executor: 'local', suite: 'auto' });
    expect(Object.fromEntries(runs[0]?.data.metrics.map((m) => [m.key, m.value]) ?? []).gsm8k_accuracy).toBeCloseTo(4 / N, 12);
    const status = JSON.parse((await cli('status', auto, '--json')).stdout) as Array<{ location: string }>;
    const csv = readFileSync(join(status[0]?.location ?? '', '..', 'processed_results.csv'), 'utf8');
    expect(csv).toContain(`${auto}.0`);

    const again = await cli('export', auto, '--dest', 'mlflow', '-o', `export.mlflow.tracking_uri=${mlflow.url}`, '-o', 'export.mlflow.experiment_name=evalflow-auto');
    expect(again.code, again.stderr).toBe(0);
    expect((await runsOf()).map((r) => r.info.run_id)).toEqual(runs.map((r) => r.info.run_id));
  });

  it('refuses bad destination settings before connecting (exit 2, key named)', async () => {
    const bad = await cli('export', inv, '--dest', 'mlflow', '-o', 'export.mlflow.experiment_nam=x');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/export\.mlflow.*experiment_nam/);
    expect((await cli('export', inv, '--dest', 'wandb')).stderr).toMatch(/not supported \(supported: local, mlflow\)/);
  });

  it('local export in upstream layout: job files, job_metadata.json and processed_results as upstream writes them', async () => {
    const out = join(dir, 'upstream');
    for (const format of ['json', 'csv']) {
      const res = await cli('export', inv, '--dest', 'local', '-o', 'export.local.layout=upstream', '--output-dir', out, '--format', format);
      expect(res.code, res.stderr).toBe(0);
    }
    await cli('export', inv, '--dest', 'local', '-o', 'export.local.layout=upstream', '--output-dir', out, '--format', 'json');
    const summary = JSON.parse(readFileSync(join(out, inv, 'processed_results.json'), 'utf8')) as { benchmarks: Record<string, { models: Record<string, Array<Record<string, unknown>>> }> };
    const entries = summary.benchmarks.gsm8k?.models['fixture-model'];
    expect(entries).toHaveLength(1);
    expect(entries?.[0]).toMatchObject({ invocation_id: inv, job_id: `${inv}.0`, harness: 'evalflow', executor: 'local', scores: { gsm8k_accuracy: 4 / N } });
    const csv = readFileSync(join(out, inv, 'processed_results.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('Model Name,Harness,Task Name,Executor,Container,Invocation ID,Job ID,accuracy');
    expect(csv[1]).toBe(`fixture-model,evalflow,gsm8k,local,,${inv},${inv}.0,${4 / N}`);
    expect(readFileSync(join(out, inv, `${inv}.0`, 'artifacts', 'results.yml'), 'utf8')).toContain('gsm8k');
    expect(JSON.parse(readFileSync(join(out, inv, `${inv}.0`, 'job_metadata.json'), 'utf8'))).toMatchObject({ invocation_id: inv, job_id: `${inv}.0` });
  });
});
