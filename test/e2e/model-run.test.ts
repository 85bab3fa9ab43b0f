/**
 * End to end with the real tiny model: CLI → Temporal → worker → harness process → model server
 * (node-llama-cpp, SmolLM2-135M-Instruct on CPU). A few samples, greedy decoding.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestModelServer } from '../support/model-server.js';
import { cli, DATASETS, readYaml, startedInvocationId, tempDir, writeConfig } from '../support/run-helpers.js';
import { startWorker, testClient, testTarget, type RunningWorker } from '../support/temporal.js';
import type { InvocationStatus } from '../../workflows/types.js';

describe('a run against the real tiny model', () => {
  let model: { url: string; close(): Promise<void> };
  let worker: RunningWorker;
  let client: Client;

  beforeAll(async () => {
    process.env.TEMPORAL_ADDRESS = testTarget().address;
    model = await startTestModelServer();
    worker = await startWorker();
    client = await testClient();
  });
  afterAll(async () => {
    await worker?.stop();
    await model?.close();
    await client?.connection.close();
  });

  it('scores GSM8K and MMLU samples with the model’s own answers', async () => {
    const dir = tempDir();
    const config = writeConfig(
      dir,
      `
execution:
  output_dir: ${dir}/results
  runtime: process
  mode: parallel
target:
  api_endpoint:
    url: ${model.url}/v1/chat/completions
    model_id: smollm2-135m-instruct
evaluation:
  nemo_evaluator_config:
    config:
      params: {temperature: 0, parallelism: 2, request_timeout: 300}
  tasks:
    - name: evalflow.gsm8k
      dataset_dir: ${DATASETS}
      nemo_evaluator_config: {config: {params: {limit_samples: 3, max_new_tokens: 96}}}
    - name: evalflow.mmlu
      dataset_dir: ${DATASETS}
      nemo_evaluator_config: {config: {params: {limit_samples: 4, max_new_tokens: 8}}}
`,
    );
    const res = await cli('run', '-c', config, '--wait');
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const inv = startedInvocationId(res.stdout);
    const status = await client.workflow.getHandle(`evalflow-${inv}`).query<InvocationStatus>('status');
    expect(status.tasks.map((t) => t.stage)).toEqual(['succeeded', 'succeeded']);

    for (const [task, n] of [
      ['gsm8k', 3],
      ['mmlu', 4],
    ] as const) {
      const jobDir = status.tasks.find((t) => t.jobName.startsWith(task))?.jobDir as string;
      const results = readYaml<{ samples: { total: number; errors: number; scored: number } }>(join(jobDir, 'artifacts', 'results.yml'));
      expect(results.samples).toMatchObject({ total: n, scored: n, errors: 0 });
      const samples = readFileSync(join(jobDir, 'artifacts', 'nemo-evaluator-per-sample-outputs', `${task}.jsonl`), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { generation: string; num_generated_tokens: number; score: number });
      // Real generations from the model, each scored 0 or 1.
      for (const s of samples) {
        expect(s.generation.length).toBeGreaterThan(0);
        expect(s.num_generated_tokens).toBeGreaterThan(0);
        expect([0, 1]).toContain(s.score);
      }
      const accuracy = status.tasks.find((t) => t.jobName.startsWith(task))?.metrics?.[`${task}_accuracy`];
      expect(accuracy).toBeCloseTo(samples.reduce((a, s) => a + s.score, 0) / n, 10);
    }
  });
});
