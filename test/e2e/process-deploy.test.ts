/**
 * The llama_cpp deployment under runtime `process`: evalflow's model server starts as a host process before
 * the harness, the readiness wait polls its health URL, the harness evaluates the real SmolLM2-135M-Instruct
 * through it, and teardown stops it; a server that cannot load its model fails the task at once, with
 * nothing left running. Real Temporal dev server, worker and model; no root needed.
 */
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../common/ports.js';
import { ensureModel } from '../../model-server/model-file.js';
import type { InvocationStatus } from '../../workflows/types.js';
import { cli, DATASETS, readYaml, startedInvocationId, tempDir, writeConfig } from '../support/run-helpers.js';
import { startWorker, testClient, testTarget, type RunningWorker } from '../support/temporal.js';

/** Model server processes whose working directory is under `dir`. */
function serversUnder(dir: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('model-server') && readlinkSync(`/proc/${pid}/cwd`).startsWith(dir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('the llama_cpp deployment under runtime process', () => {
  let client: Client;
  let worker: RunningWorker;

  beforeAll(async () => {
    process.env.TEMPORAL_ADDRESS = testTarget().address;
    client = await testClient();
    worker = await startWorker();
  });
  afterAll(async () => {
    await worker?.stop();
    await client?.connection.close();
  });

  async function run(dir: string, modelPath: string, readinessS: number): Promise<{ code: number; output: string; status: InvocationStatus }> {
    const port = await freePort();
    const config = writeConfig(
      dir,
      `
defaults:
  - execution: local
  - deployment: llama_cpp
  - _self_
execution:
  output_dir: ${dir}/results
  runtime: process
  mode: sequential
  endpoint_readiness_timeout: ${readinessS}
deployment:
  model_path: ${modelPath}
  served_model_name: smollm2-process
  port: ${port}
  parallel: 2
evaluation:
  nemo_evaluator_config:
    config:
      params: {limit_samples: 2, parallelism: 2, temperature: 0, max_new_tokens: 96, request_timeout: 120}
  tasks:
    - name: evalflow.gsm8k
      dataset_dir: ${DATASETS}
`,
    );
    const res = await cli('run', '-c', config, '--wait');
    const inv = startedInvocationId(res.stdout);
    const status = await client.workflow.getHandle(`evalflow-${inv}`).query<InvocationStatus>('status');
    return { code: res.code, output: res.stdout + res.stderr, status };
  }

  it('starts the server before the harness, evaluates the real model through it, and stops it', async () => {
    const dir = tempDir('evalflow-process-deploy-');
    const { code, output, status } = await run(dir, await ensureModel(), 120);
    expect(code, output).toBe(0);
    const task = status.tasks[0];
    expect(task?.stage).toBe('succeeded');
    const jobDir = task?.jobDir as string;
    const results = readYaml<{ samples: { total: number; scored: number; errors: number } }>(join(jobDir, 'artifacts', 'results.yml'));
    expect(results.samples).toMatchObject({ total: 2, scored: 2, errors: 0 });
    const samples = readFileSync(join(jobDir, 'artifacts', 'nemo-evaluator-per-sample-outputs', 'gsm8k.jsonl'), 'utf8').trim().split('\n');
    for (const line of samples) expect((JSON.parse(line) as { generation: string }).generation.length).toBeGreaterThan(0);
    expect(readFileSync(join(jobDir, 'logs', 'server_stdout.log'), 'utf8')).toContain('starting the llama_cpp model server');
    expect(JSON.parse(readFileSync(join(jobDir, 'logs', 'server.json'), 'utf8'))).toMatchObject({ executor: 'process', role: 'server' });
    expect(serversUnder(dir)).toEqual([]);
  });

  it('a server that cannot load its model fails the task at once with its log named, and nothing stays running', async () => {
    const dir = tempDir('evalflow-process-deploy-bad-');
    const notAModel = join(dir, 'not-a-model.gguf');
    writeFileSync(notAModel, 'this is not a GGUF file\n');
    const started = Date.now();
    const { code, status } = await run(dir, notAModel, 300);
    expect(code).toBe(1);
    expect(status.tasks[0]?.stage).toBe('failed');
    expect(status.tasks[0]?.error).toMatch(/^the model server .* ended before http:\/\/127\.0\.0\.1:\d+\/health was ready .*server_stdout\.log/);
    expect(Date.now() - started).toBeLessThan(120_000); // not the 300 s readiness timeout
    expect(serversUnder(dir)).toEqual([]);
  });
});
