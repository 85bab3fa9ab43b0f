/**
 * Deployments (`deployment:`) on the real dockerd: the model server container starts before the harness,
 * the readiness wait polls its health URL, each task's URL comes from the deployment and the task's endpoint
 * type, and the server is torn down after success and failure. One run deploys evalflow's llama_cpp server
 * (the model-server image, the real SmolLM2-135M-Instruct GGUF mounted) next to the harness container; one
 * deploys a server that never becomes healthy. Mandatory under EVALFLOW_E2E=1.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ContainerRuntime } from '../../backends/local/docker/containers.js';
import { freePort } from '../../common/ports.js';
import { ensureLocalImage } from '../../docker/images.js';
import type { InvocationStatus } from '../../workflows/types.js';
import { testDocker } from '../support/docker.js';
import { cli, DATASETS, readYaml, startedInvocationId, tempDir, writeConfig } from '../support/run-helpers.js';
import { startWorker, testClient, testTarget, type RunningWorker } from '../support/temporal.js';

const docker = await testDocker();

describe.skipIf(!docker)('deployments on the docker runtime', () => {
  let runtime: ContainerRuntime;
  let client: Client;
  let harnessImage: string;
  let worker: RunningWorker;
  const invocations: string[] = [];
  const cleanups: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    process.env.TEMPORAL_ADDRESS = testTarget().address;
    runtime = new ContainerRuntime(docker as Docker);
    harnessImage = (await ensureLocalImage(docker as Docker, 'harness')).tag;
    await ensureLocalImage(docker as Docker, 'model-server');
    client = await testClient();
    worker = await startWorker();
  });
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });
  afterAll(async () => {
    for (const invocationId of invocations) await runtime?.removeAll({ invocationId }, 1);
    await worker?.stop();
    await client?.connection.close();
  });

  async function statusOf(inv: string): Promise<InvocationStatus> {
    return client.workflow.getHandle(`evalflow-${inv}`).query<InvocationStatus>('status');
  }

  it('llama_cpp server container + harness container against the real tiny model: server first, URL from the deployment, both removed', async () => {
    const port = await freePort();
    const dir = tempDir();
    const file = writeConfig(
      dir,
      `
defaults:
  - execution: local
  - deployment: llama_cpp
  - _self_
execution:
  output_dir: ${dir}/results
  runtime: docker
  heartbeat_timeout: 10
  endpoint_readiness_timeout: 300
deployment:
  port: ${port}
  parallel: 1
evaluation:
  nemo_evaluator_config:
    config:
      params: {limit_samples: 2, parallelism: 1, max_new_tokens: 48, temperature: 0}
  tasks:
    - name: evalflow.gsm8k
      dataset_dir: ${DATASETS}
`,
    );
    const dry = await cli('run', '--dry-run', '-c', file);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`# server ready when http://127.0.0.1:${port}/health answers 200`);

    const started = Date.now();
    const res = await cli('run', '-c', file);
    expect(res.code, res.stderr).toBe(0);
    const inv = startedInvocationId(res.stdout);
    invocations.push(inv);
    await client.workflow.getHandle(`evalflow-${inv}`).result();
    const status = await statusOf(inv);
    const task = status.tasks[0];
    console.log(`[docker-deploy] llama_cpp run ${Date.now() - started} ms, metrics ${JSON.stringify(task?.metrics)}`);
    expect(task?.stage).toBe('succeeded');
    const jobDir = task?.jobDir as string;
    const results = readYaml<{ samples: { total: number; scored: number; errors: number } }>(join(jobDir, 'artifacts', 'results.yml'));
    expect(results.samples).toMatchObject({ total: 2, scored: 2, errors: 0 });
    expect(typeof task?.metrics?.gsm8k_accuracy).toBe('number');
    // The harness talked to the deployed server at the URL derived from the deployment and the task's endpoint type.
    const runConfig = readYaml<{ target: { api_endpoint: { url: string; model_id: string } } }>(join(jobDir, 'config_ef.yaml'));
    expect(runConfig.target.api_endpoint).toMatchObject({ url: `http://127.0.0.1:${port}/v1/chat/completions`, model_id: 'smollm2-135m-instruct' });
    const serverLog = readFileSync(join(jobDir, 'logs', 'server_stdout.log'), 'utf8');
    expect(serverLog).toMatch(/launching the llama_cpp server container evalflow\/model-server:/);
    expect(await runtime.list({ invocationId: inv })).toEqual([]);
  });

  it('a deployment that never becomes healthy fails with its health URL and last status, and leaves no container', async () => {
    const port = await freePort();
    const dir = tempDir();
    const file = writeConfig(
      dir,
      `
defaults:
  - execution: local
  - deployment: generic
  - _self_
execution:
  output_dir: ${dir}/results
  runtime: docker
  heartbeat_timeout: 10
  endpoint_readiness_timeout: 6
deployment:
  image: ${harnessImage}
  command: node -e 'setInterval(() => {}, 1000)'
  served_model_name: never-ready
  port: ${port}
evaluation:
  tasks:
    - name: evalflow.gsm8k
      dataset_dir: ${DATASETS}
`,
    );
    const res = await cli('run', '-c', file);
    expect(res.code, res.stderr).toBe(0);
    const inv = startedInvocationId(res.stdout);
    invocations.push(inv);
    await expect(client.workflow.getHandle(`evalflow-${inv}`).result()).rejects.toThrow();
    const task = (await statusOf(inv)).tasks[0];
    expect(task?.stage).toBe('failed');
    expect(task?.error).toContain(`was not ready within 6 s (execution.endpoint_readiness_timeout): its health check http://127.0.0.1:${port}/health last answered ECONNREFUSED`);
    expect(task?.error).toContain('server_stdout.log');
    expect(task?.attempt ?? 0).toBe(0); // no harness was launched
    expect(await runtime.list({ invocationId: inv })).toEqual([]);
    expect(existsSync(join(task?.jobDir as string, '.server-secrets.env'))).toBe(false);
  });

  it('a deployment without its required keys is refused before anything starts: exit 2 and the key path', async () => {
    const dir = tempDir();
    const file = writeConfig(dir, `defaults:\n  - execution: local\n  - deployment: sglang\n  - _self_\nexecution:\n  output_dir: ${dir}/results\nevaluation:\n  tasks:\n    - name: evalflow.gsm8k\n`);
    const res = await cli('run', '-c', file);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('deployment.checkpoint_path: missing required value (???)');
    expect(res.stderr).toContain('deployment.served_model_name: missing required value (???)');
    expect(res.stdout).toBe('');
  });
});
