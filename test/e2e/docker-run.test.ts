/**
 * `execution.runtime: docker` end to end on real components: the CLI, a real Temporal server, workers
 * (in-process and as killable processes), the private dockerd with the harness image built without a
 * registry, and the fixture endpoint. Mandatory under EVALFLOW_E2E=1; skipped only when that is unset
 * and no engine answers.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ContainerRuntime } from '../../backends/local/docker/containers.js';
import { LABEL } from '../../backends/local/docker/names.js';
import { ensureLocalImage } from '../../docker/images.js';
import type { InvocationStatus } from '../../workflows/types.js';
import { testDocker } from '../support/docker.js';
import { answerFromTable, startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import { cli, DATASETS, gsm8kHead, readYaml, startedInvocationId, tempDir, writeConfig } from '../support/run-helpers.js';
import { spawnWorkerProcess, startWorker, testClient, testTarget, type RunningWorker } from '../support/temporal.js';

const docker = await testDocker();
const N = 12;
const questions = gsm8kHead(N);
/** Questions 0, 3, 6, 9 are answered correctly: accuracy 4/12. */
const table = Object.fromEntries(questions.map(({ question, answer }, i) => [question, `The final answer is ${i % 3 === 0 ? answer : '-1'}`]));
const API_KEY = 'sk-evalflow-docker-7f3a9c0e5b1d2468';

function config(dir: string, fixture: FixtureServer, extra: { execution?: string; tasks?: number; parallel?: boolean } = {}): string {
  const tasks = Array.from({ length: extra.tasks ?? 1 }, () => `    - name: evalflow.gsm8k\n      dataset_dir: ${DATASETS}\n`).join('');
  return writeConfig(
    dir,
    `
execution:
  output_dir: ${dir}/results
  runtime: docker
  heartbeat_timeout: 10
  mode: ${extra.parallel ? 'parallel' : 'sequential'}
${extra.execution ?? ''}
target:
  api_endpoint:
    url: ${fixture.url}/v1/chat/completions
    model_id: fixture-model
    api_key_name: EVALFLOW_DOCKER_TEST_KEY
evaluation:
  nemo_evaluator_config:
    config:
      params: {limit_samples: ${N}, parallelism: 1}
  tasks:
${tasks}`,
  );
}

function accuracyOf(jobDir: string): number {
  const r = readYaml<{ results: { tasks: { gsm8k: { metrics: { accuracy: { scores: { accuracy: { value: number } } } } } } } }>(join(jobDir, 'artifacts', 'results.yml'));
  return r.results.tasks.gsm8k.metrics.accuracy.scores.accuracy.value;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => (statSync(join(dir, name)).isDirectory() ? filesUnder(join(dir, name)) : [join(dir, name)]));
}

/** Container `create` events of one job since `since` (seconds): how many containers were ever made for it. */
async function createdContainers(jobId: string, since: number): Promise<number> {
  const stream = (await (docker as Docker).getEvents({
    since,
    until: Math.ceil(Date.now() / 1000) + 1,
    filters: { type: ['container'], event: ['create'], label: [`${LABEL.job}=${jobId}`] },
  })) as unknown as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text.split('\n').filter((line) => line.trim()).length;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe.skipIf(!docker)('execution.runtime docker, end to end', () => {
  let runtime: ContainerRuntime;
  let client: Client;
  let harnessImage: string;
  const cleanups: Array<() => Promise<void> | void> = [];
  /** Every invocation started here: a failed assertion must not leave its containers behind. */
  const invocations: string[] = [];
  const started = (stdout: string) => {
    const inv = startedInvocationId(stdout);
    invocations.push(inv);
    return inv;
  };

  beforeAll(async () => {
    process.env.TEMPORAL_ADDRESS = testTarget().address;
    process.env.EVALFLOW_DOCKER_TEST_KEY = API_KEY;
    runtime = new ContainerRuntime(docker as Docker);
    harnessImage = (await ensureLocalImage(docker as Docker, 'harness')).tag;
    client = await testClient();
  });
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });
  afterAll(async () => {
    for (const invocationId of invocations) await runtime?.removeAll({ invocationId }, 1);
    await client?.connection.close();
    delete process.env.EVALFLOW_DOCKER_TEST_KEY;
  });

  async function statusOf(inv: string): Promise<InvocationStatus> {
    return client.workflow.getHandle(`evalflow-${inv}`).query<InvocationStatus>('status');
  }

  async function runningHarness(inv: string): Promise<string> {
    return waitFor(`a running harness container of ${inv}`, async () => (await runtime.list({ invocationId: inv, role: 'harness' })).find((c) => c.state === 'running')?.name);
  }

  it('runs a task in the harness container: exact scores, logs, the key only through the secrets file, nothing left', async () => {
    const fixture = await startFixtureServer({ answer: answerFromTable(table), latencyMs: 150 });
    cleanups.push(() => fixture.close());
    const worker: RunningWorker = await startWorker(); // in-process, default harness image (built or found by its tag)
    cleanups.push(() => worker.stop());
    const dir = tempDir();
    const runAt = Date.now();
    const res = await cli('run', '-c', config(dir, fixture));
    expect(res.code, res.stderr).toBe(0);
    const inv = started(res.stdout);

    const name = await runningHarness(inv);
    const firstRequestMs = await waitFor('the first request', async () => (fixture.totalRequests() > 0 ? Date.now() - runAt : undefined));
    const inspected = await runtime.inspect(name);
    expect(inspected?.Config.Image.replace(/^docker\.io\//, '')).toBe(harnessImage); // Podman names it docker.io/…
    expect(inspected?.HostConfig).toMatchObject({ Init: true, NetworkMode: 'host' });
    expect(JSON.stringify(inspected)).not.toContain(API_KEY);
    console.log(`[docker-run] run → first request ${firstRequestMs} ms (container ${name})`);

    await client.workflow.getHandle(`evalflow-${inv}`).result();
    const status = await statusOf(inv);
    const task = status.tasks[0];
    expect(task?.stage).toBe('succeeded');
    expect(task?.handle).toMatchObject({ executor: 'docker', name: `evalflow-${inv}.0-a1`, role: 'harness' });
    expect(task?.metrics?.gsm8k_accuracy).toBe(4 / 12);
    const jobDir = task?.jobDir as string;
    expect(accuracyOf(jobDir)).toBe(4 / 12);
    expect(fixture.requests.map((r) => r.authorization)).toEqual(Array.from({ length: N }, () => `Bearer ${API_KEY}`));
    const log = readFileSync(join(jobDir, 'logs', 'client_stdout.log'), 'utf8');
    expect(log).toMatch(new RegExp(`^=== \\S+ evalflow-${inv}\\.0-a1: launching container ${harnessImage.replace(/[.]/g, '\\.')} \\(attempt 1\\)\\n`));
    expect(log).toContain('results written to /results/results.yml');
    expect(await runtime.list({ invocationId: inv })).toEqual([]);
    for (const file of filesUnder(status.runDir)) expect(readFileSync(file, 'utf8'), file).not.toContain(API_KEY);
  });

  it("upstream's container contract: a task whose container is the harness image runs upstream's command (config_ef.yaml, NEMO_EVALUATOR_DATASET_DIR, pre_cmd/post_cmd): exact scores", async () => {
    const fixture = await startFixtureServer({ answer: answerFromTable(table), latencyMs: 50 });
    cleanups.push(() => fixture.close());
    const worker = await startWorker();
    cleanups.push(() => worker.stop());
    const dir = tempDir();
    // The built-in harness image stands in for an upstream one: `container:` makes evalflow start it the way
    // upstream's launcher starts a catalogue task's image (bash -c, nemo-evaluator run_eval --run_config …).
    const file = writeConfig(
      dir,
      `
execution:
  output_dir: ${dir}/results
  runtime: docker
  heartbeat_timeout: 10
target:
  api_endpoint:
    url: ${fixture.url}/v1/chat/completions
    model_id: fixture-model
    api_key_name: EVALFLOW_DOCKER_TEST_KEY
evaluation:
  pre_cmd: 'echo "pre_cmd saw $NEMO_EVALUATOR_DATASET_DIR" > /results/pre_cmd.txt'
  nemo_evaluator_config:
    config:
      params: {limit_samples: ${N}, parallelism: 2}
  tasks:
    - name: evalflow.gsm8k
      container: ${harnessImage}
      dataset_dir: ${DATASETS}
      dataset_mount_path: /mnt/data
      post_cmd: 'ls /results > /results/post_cmd.txt'
      nemo_evaluator_config:
        metadata: {owner: golden-run}
`,
    );
    const refused = await cli('run', '-c', file);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('evaluation.pre_cmd: runs a command from the config inside the harness container; set NEMO_EVALUATOR_TRUST_PRE_CMD=1');
    process.env.NEMO_EVALUATOR_TRUST_PRE_CMD = '1';
    cleanups.push(() => void delete process.env.NEMO_EVALUATOR_TRUST_PRE_CMD);
    const res = await cli('run', '-c', file);
    expect(res.code, res.stderr).toBe(0);
    const inv = started(res.stdout);
    const name = await runningHarness(inv);
    const inspected = await runtime.inspect(name);
    expect(inspected?.Config.Entrypoint).toEqual(['bash', '-c']);
    expect(inspected?.Config.Cmd?.[0]).toContain('$cmd run_eval --run_config /evalflow/config_ef.yaml');
    expect(inspected?.Config.Env).toContain('NEMO_EVALUATOR_DATASET_DIR=/mnt/data');
    expect(JSON.stringify(inspected)).not.toContain(API_KEY);

    await client.workflow.getHandle(`evalflow-${inv}`).result();
    const status = await statusOf(inv);
    const task = status.tasks[0];
    expect(task?.stage).toBe('succeeded');
    expect(task?.metrics?.gsm8k_accuracy).toBe(4 / 12);
    const jobDir = task?.jobDir as string;
    expect(accuracyOf(jobDir)).toBe(4 / 12);
    expect(fixture.totalRequests()).toBe(N);
    // config_ef.yaml as upstream writes it: the user's section whole, filled where absent, no evalflow keys.
    const runConfig = readYaml<{ config: Record<string, unknown>; target: { api_endpoint: Record<string, unknown> }; metadata: Record<string, unknown> }>(join(jobDir, 'config_ef.yaml'));
    expect(runConfig.config).toEqual({ params: { limit_samples: N, parallelism: 2 }, type: 'gsm8k', output_dir: '/results' });
    expect(runConfig.target.api_endpoint).toEqual({ url: `${fixture.url}/v1/chat/completions`, model_id: 'fixture-model', type: 'chat', api_key_name: 'EVALFLOW_DOCKER_TEST_KEY' });
    expect(runConfig.metadata).toMatchObject({ owner: 'golden-run', pre_cmd: expect.stringContaining('pre_cmd saw'), post_cmd: 'ls /results > /results/post_cmd.txt' });
    expect(readFileSync(join(jobDir, 'artifacts', 'pre_cmd.txt'), 'utf8')).toBe('pre_cmd saw /mnt/data\n');
    expect(readFileSync(join(jobDir, 'artifacts', 'post_cmd.txt'), 'utf8')).toContain('results.yml');
    expect(readFileSync(join(jobDir, 'logs', 'client_stdout.log'), 'utf8')).toContain('Container completed successfully');
    expect(await runtime.list({ invocationId: inv })).toEqual([]);
    for (const f of filesUnder(status.runDir)) expect(readFileSync(f, 'utf8'), f).not.toContain(API_KEY);
  });

  it('a worker SIGKILLed while the container runs: a new worker adopts it, one container ever, same scores', async () => {
    const fixture = await startFixtureServer({ answer: answerFromTable(table), latencyMs: 300 });
    cleanups.push(() => fixture.close());
    const env = { EVALFLOW_HARNESS_IMAGE: harnessImage, EVALFLOW_DOCKER_TEST_KEY: API_KEY };
    let workerA: ChildProcess | undefined = await spawnWorkerProcess(env);
    cleanups.push(() => void workerA?.kill('SIGKILL'));
    const since = Math.floor(Date.now() / 1000) - 1;
    const res = await cli('run', '-c', config(tempDir(), fixture));
    expect(res.code, res.stderr).toBe(0);
    const inv = started(res.stdout);
    await runningHarness(inv);
    await fixture.waitForRequests(4); // under way and being watched
    workerA.kill('SIGKILL');
    workerA = undefined;

    const workerB = await spawnWorkerProcess(env);
    cleanups.push(() => void workerB.kill('SIGTERM'));
    await client.workflow.getHandle(`evalflow-${inv}`).result();
    const task = (await statusOf(inv)).tasks[0];
    expect(task?.stage).toBe('succeeded');
    expect(task?.attempt).toBe(1);
    expect(await createdContainers(`${inv}.0`, since)).toBe(1);
    expect(fixture.totalRequests()).toBe(N);
    expect(accuracyOf(task?.jobDir as string)).toBe(4 / 12);
    // No line was copied twice across the two workers.
    const lines = readFileSync(join(task?.jobDir as string, 'logs', 'client_stdout.log'), 'utf8').split('\n').filter((l) => l.startsWith('gsm8k '));
    expect(lines).toEqual(['gsm8k accuracy/accuracy: 0.3333333333333333']);
    expect(await runtime.list({ invocationId: inv })).toEqual([]);
  });

  it('evalflow kill of one job, then of the invocation: no container of it remains', async () => {
    const fixture = await startFixtureServer({ answer: answerFromTable(table), latencyMs: 1000 });
    cleanups.push(() => fixture.close());
    const worker = await startWorker({ activityDeps: {} });
    cleanups.push(() => worker.stop());
    const res = await cli('run', '-c', config(tempDir(), fixture, { tasks: 2, parallel: true }));
    expect(res.code, res.stderr).toBe(0);
    const inv = started(res.stdout);
    await waitFor('both harness containers running', async () => ((await runtime.list({ invocationId: inv, role: 'harness' })).filter((c) => c.state === 'running').length === 2 ? true : undefined));

    expect((await cli('kill', `${inv}.1`)).code).toBe(0);
    await waitFor('job 1 torn down', async () => ((await runtime.list({ invocationId: inv, jobId: `${inv}.1` })).length === 0 ? true : undefined));
    expect((await runtime.list({ invocationId: inv, jobId: `${inv}.0` })).map((c) => c.state)).toEqual(['running']);

    expect((await cli('kill', inv)).code).toBe(0);
    await client.workflow.getHandle(`evalflow-${inv}`).result().catch(() => undefined);
    await waitFor('the invocation torn down', async () => ((await runtime.list({ invocationId: inv })).length === 0 ? true : undefined));
    const status = await statusOf(inv);
    expect(status.tasks.map((t) => t.stage)).toEqual(['cancelled', 'cancelled']);
  });

  it('a harness container over its memory limit is reported as OOM-killed', async () => {
    const fixture = await startFixtureServer({ answer: answerFromTable(table) });
    cleanups.push(() => fixture.close());
    const worker = await startWorker();
    cleanups.push(() => worker.stop());
    // 24 MiB is less than the Node runtime of the harness needs: the kernel kills it for real.
    const res = await cli('run', '-c', config(tempDir(), fixture, { execution: '  max_attempts: 1\n  extra_docker_args: --memory 24m' }));
    expect(res.code, res.stderr).toBe(0);
    const inv = started(res.stdout);
    await client.workflow.getHandle(`evalflow-${inv}`).result().catch(() => undefined);
    const task = (await statusOf(inv)).tasks[0];
    expect(task?.stage).toBe('failed');
    expect(task?.error).toMatch(/killed for exceeding its memory limit \(exit 137\)/);
    expect(await runtime.list({ invocationId: inv })).toEqual([]);
  });

  it('bad docker config is refused before anything starts: exit 2 and the key path', async () => {
    const fixture = await startFixtureServer({ answer: answerFromTable(table) });
    cleanups.push(() => fixture.close());
    for (const [execution, message] of [
      ['  extra_docker_args: --name evil', /^error: execution\.extra_docker_args: unsupported docker flag --name/],
      ['  extra_docker_args: --network bridge', /^error: execution\.extra_docker_args: --network: evalflow runs containers with host networking only/],
      ['  mounts: {evaluation: {/models: models}}', /^error: execution\.mounts\.evaluation\.\/models: expected an absolute container path/],
    ] as const) {
      const res = await cli('run', '-c', config(tempDir(), fixture, { execution }));
      expect(res.code, res.stdout + res.stderr).toBe(2);
      expect(res.stderr).toMatch(message);
      expect(res.stdout).not.toMatch(/started invocation/);
    }
  });
});
