/**
 * A full run through the real stack: CLI → real Temporal dev server → worker → InvocationWorkflow →
 * EvaluationWorkflow per task → harness as a local process → deterministic fixture endpoint.
 * Scores are exact because the fixture's answers are scripted per question.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBuiltinTask } from '../../harness/tasks/index.js';
import { limitSamples } from '../../harness/engine.js';
import { startFixtureServer, answerFromTable, type FixtureServer } from '../../common/fixture-endpoint.js';
import { cli, DATASETS, gsm8kHead, readYaml, startedInvocationId, tempDir, writeConfig } from '../support/run-helpers.js';
import { startWorker, testClient, testTarget, type RunningWorker } from '../support/temporal.js';
import type { InvocationStatus } from '../../workflows/types.js';

const GSM8K_N = 10;
const GSM8K_CORRECT = 7; // the first 7 questions get the right number, the rest a wrong one
const MMLU_N = 12;

describe('evalflow run on a real Temporal server (process runtime)', () => {
  let fixture: FixtureServer;
  let worker: RunningWorker;
  let client: Client;
  let outDir: string;
  let mmluExpected: number;

  beforeAll(async () => {
    process.env.TEMPORAL_ADDRESS = testTarget().address;
    const table: Record<string, string> = {};
    for (const [i, { question, answer }] of gsm8kHead(GSM8K_N).entries()) {
      table[question] = i < GSM8K_CORRECT ? `Let me think. The final answer is ${answer}` : `The final answer is ${Number(answer) + 1}`;
    }
    // MMLU: the fixture always answers "A"; the expected accuracy follows from the reference answers.
    const mmlu = getBuiltinTask('mmlu');
    const samples = limitSamples(await mmlu.loadSamples({ datasetDir: DATASETS, extra: {} }), MMLU_N);
    mmluExpected = samples.filter((s) => s.groundTruth === 'A').length / MMLU_N;
    fixture = await startFixtureServer({ answer: (prompt) => (prompt.includes('multiple choice') ? 'The answer is (A)' : answerFromTable(table)(prompt)) });
    worker = await startWorker();
    client = await testClient();
    outDir = tempDir();
  });

  afterAll(async () => {
    await worker?.stop();
    await fixture?.close();
    await client?.connection.close();
  });

  it('runs GSM8K and MMLU to exact scores, with upstream-format outputs and a status query', async () => {
    const config = writeConfig(
      outDir,
      `
defaults:
  - execution: local
  - deployment: none
  - _self_
execution:
  output_dir: ${outDir}/results
  runtime: process
  mode: parallel
  auto_export:
    destinations: [local]
target:
  api_endpoint:
    url: ${fixture.url}/v1/chat/completions
    model_id: fixture-model
    type: chat
evaluation:
  pre_cmd: echo accepted for upstream's sake, ignored by the process runtime
  nemo_evaluator_config:
    config:
      params:
        parallelism: 4
        temperature: 0
  tasks:
    - name: evalflow.gsm8k
      dataset_dir: ${DATASETS}
      nemo_evaluator_config:
        config:
          params:
            limit_samples: ${GSM8K_N}
    - name: evalflow.mmlu
      dataset_dir: ${DATASETS}
      nemo_evaluator_config:
        config:
          params:
            limit_samples: ${MMLU_N}
`,
    );
    const res = await cli('run', '-c', config, '--wait');
    expect(res.stderr).not.toContain('error');
    // A key without effect runs, with a warning naming it.
    expect(res.stderr).toContain('warning: evaluation.pre_cmd: ignored with execution.runtime=process (it acts with: local/docker)');
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const inv = startedInvocationId(res.stdout);
    expect(res.stdout).toMatch(/evalflow\.gsm8k\s+SUCCESS\s+gsm8k_accuracy\s+0\.7000/);

    const status = await client.workflow.getHandle(`evalflow-${inv}`).query<InvocationStatus>('status');
    expect(status.stage).toBe('succeeded');
    const [gsm8k, mmlu] = status.tasks;
    expect(gsm8k?.metrics?.gsm8k_accuracy).toBeCloseTo(GSM8K_CORRECT / GSM8K_N, 10);
    expect(mmlu?.metrics?.mmlu_accuracy).toBeCloseTo(mmluExpected, 10);
    expect(gsm8k?.progress).toMatchObject({ total: GSM8K_N, done: GSM8K_N, errors: 0 });

    // Upstream layout: <output_dir>/<YYYYmmdd_HHMMSS>-<inv>/<task>.<n>/{artifacts,logs}
    expect(status.runDir).toMatch(new RegExp(`/results/\\d{8}_\\d{6}-${inv}$`));
    const artifacts = join(status.runDir, 'gsm8k.0', 'artifacts');
    for (const f of ['results.yml', 'eval_factory_metrics.json', 'progress', 'run_config.yml', 'metadata.yaml']) {
      expect(existsSync(join(artifacts, f)), f).toBe(true);
    }
    const results = readYaml<{ results: { tasks: { gsm8k: { metrics: { accuracy: { scores: { accuracy: { value: number; stats: { count: number } } } } } } } } }>(
      join(artifacts, 'results.yml'),
    );
    expect(results.results.tasks.gsm8k.metrics.accuracy.scores.accuracy).toMatchObject({ value: 0.7, stats: { count: 10 } });
    expect(readFileSync(join(artifacts, 'progress'), 'utf8').trim()).toBe(String(GSM8K_N));
    const perSample = readFileSync(join(artifacts, 'nemo-evaluator-per-sample-outputs', 'gsm8k.jsonl'), 'utf8').trim().split('\n');
    expect(perSample).toHaveLength(GSM8K_N);

    // Local auto-export: one row per job in the run directory.
    const exported = JSON.parse(readFileSync(join(status.runDir, 'processed_results.json'), 'utf8')) as { jobs: Record<string, { metrics: Record<string, number> }> };
    expect(Object.keys(exported.jobs).sort()).toEqual([`${inv}.0`, `${inv}.1`]);

    // Each sample was requested exactly once.
    expect(fixture.totalRequests()).toBe(GSM8K_N + MMLU_N);

    // The CLI verbs on the finished run, by unique prefix.
    const st = await cli('status', inv.slice(0, 8), '--json');
    expect(st.code, st.stderr).toBe(0);
    const rows = JSON.parse(st.stdout) as Array<{ job_id: string; status: string }>;
    expect(rows.map((r) => [r.job_id, r.status])).toEqual([
      [`${inv}.0`, 'SUCCESS'],
      [`${inv}.1`, 'SUCCESS'],
    ]);
    const csv = await cli('export', inv, '--dest', 'local', '--format', 'csv', '--output-dir', join(outDir, 'csv'));
    expect(csv.code, csv.stderr).toBe(0);
    const csvText = readFileSync(join(outDir, 'csv', 'processed_results.csv'), 'utf8');
    expect(csvText.split('\n')[0]).toContain('gsm8k_accuracy');
    const logs = await cli('logs', `${inv}.0`);
    expect(logs.stdout).toContain('[gsm8k.0] ');
    expect(logs.stdout).toContain('results written to');
    const runs = await cli('ls', 'runs', '--json', '--since', '1h');
    expect((JSON.parse(runs.stdout) as Array<{ invocation_id: string }>).map((r) => r.invocation_id)).toContain(inv);
  });
});
