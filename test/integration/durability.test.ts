/**
 * Durability on real components: a worker SIGKILLed mid-watch, a Temporal server restarted mid-run,
 * and a harness SIGKILLed half-way (resumed from its response cache). The fixture endpoint counts
 * every request, so "launched once" and "nothing sent twice" are measured, not assumed.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { afterEach, describe, expect, it } from 'vitest';
import { startDevServer } from '../../scripts/temporal-dev-server.js';
import { answerFromTable, startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import { freePort } from '../../common/ports.js';
import { cli, DATASETS, gsm8kHead, readYaml, startedInvocationId, tempDir, writeConfig } from '../support/run-helpers.js';
import { spawnWorkerProcess, startWorker, testClient, testTarget, type RunningWorker } from '../support/temporal.js';
import type { ProcessHandle } from '../../backends/local/process.js';
import type { InvocationStatus } from '../../workflows/types.js';

const N = 24;
const questions = gsm8kHead(N);
/** Questions 0, 3, 6, … are answered correctly: accuracy 8/24 when every sample is scored once. */
const table = Object.fromEntries(questions.map(({ question, answer }, i) => [question, `The final answer is ${i % 3 === 0 ? answer : '-1'}`]));
const EXPECTED_ACCURACY = 8 / 24;

function config(dir: string, fixture: FixtureServer, heartbeatTimeoutS = 10): string {
  return writeConfig(
    dir,
    `
execution:
  output_dir: ${dir}/results
  runtime: process
  heartbeat_timeout: ${heartbeatTimeoutS}
target:
  api_endpoint:
    url: ${fixture.url}/v1/chat/completions
    model_id: fixture-model
evaluation:
  nemo_evaluator_config:
    config:
      params: {limit_samples: ${N}, parallelism: 1}
  tasks:
    - name: evalflow.gsm8k
      dataset_dir: ${DATASETS}
`,
  );
}

async function waitForResult(client: Client, inv: string): Promise<InvocationStatus> {
  const handle = client.workflow.getHandle(`evalflow-${inv}`);
  await handle.result();
  return handle.query<InvocationStatus>('status');
}

function launchLines(jobDir: string): number {
  return readFileSync(join(jobDir, 'logs', 'client_stdout.log'), 'utf8').split('\n').filter((l) => l.includes('launching harness')).length;
}

function accuracyOf(jobDir: string): number {
  const r = readYaml<{ results: { tasks: { gsm8k: { metrics: { accuracy: { scores: { accuracy: { value: number } } } } } } } }>(
    join(jobDir, 'artifacts', 'results.yml'),
  );
  return r.results.tasks.gsm8k.metrics.accuracy.scores.accuracy.value;
}

describe('durability', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });

  it('a worker SIGKILLed while watching: another worker re-attaches; launched once, same scores', async () => {
    process.env.TEMPORAL_ADDRESS = testTarget().address;
    const fixture = await startFixtureServer({ answer: answerFromTable(table), latencyMs: 250 });
    cleanups.push(() => fixture.close());
    const dir = tempDir();
    let workerA: ChildProcess | undefined = await spawnWorkerProcess();
    cleanups.push(() => void workerA?.kill('SIGKILL'));

    const res = await cli('run', '-c', config(dir, fixture));
    expect(res.code, res.stderr).toBe(0);
    const inv = startedInvocationId(res.stdout);
    await fixture.waitForRequests(6); // the harness is well under way and being watched
    workerA.kill('SIGKILL');
    workerA = undefined;

    const workerB = await spawnWorkerProcess();
    cleanups.push(() => void workerB.kill('SIGTERM'));
    const client = await testClient();
    cleanups.push(() => client.connection.close());
    const status = await waitForResult(client, inv);

    const task = status.tasks[0];
    expect(task?.stage).toBe('succeeded');
    expect(task?.attempt).toBe(1);
    const jobDir = task?.jobDir as string;
    expect(readdirSync(join(jobDir, 'logs')).filter((f) => /^harness\.a\d+\.json$/.test(f))).toEqual(['harness.a1.json']);
    expect(launchLines(jobDir)).toBe(1);
    expect(fixture.totalRequests()).toBe(N);
    expect(accuracyOf(jobDir)).toBeCloseTo(EXPECTED_ACCURACY, 10);
  });

  it('the Temporal server restarted mid-run (same SQLite file): the run completes', async () => {
    const dir = tempDir();
    const port = await freePort();
    const serverOpts = { port, uiPort: null, dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'server.log'), startTimeoutS: 120 };
    let server = await startDevServer(serverOpts);
    cleanups.push(() => server.stop());
    const address = server.address;
    process.env.TEMPORAL_ADDRESS = address;
    const fixture = await startFixtureServer({ answer: answerFromTable(table), latencyMs: 300 });
    cleanups.push(() => fixture.close());
    const worker = await startWorker({ address });
    cleanups.push(() => worker.stop());

    const res = await cli('run', '-c', config(dir, fixture, 60));
    expect(res.code, res.stderr).toBe(0);
    const inv = startedInvocationId(res.stdout);
    await fixture.waitForRequests(5);
    await server.stop();
    await new Promise((r) => setTimeout(r, 1000));
    server = await startDevServer(serverOpts);

    const connection = await Connection.connect({ address });
    const client = new Client({ connection });
    cleanups.push(() => connection.close());
    const status = await waitForResult(client, inv);
    expect(status.tasks[0]?.stage).toBe('succeeded');
    expect(accuracyOf(status.tasks[0]?.jobDir as string)).toBeCloseTo(EXPECTED_ACCURACY, 10);
    // The harness kept going while the server was down: nothing was sent twice.
    expect(fixture.totalRequests()).toBe(N);
  });

  it('a harness SIGKILLed half-way is relaunched and resumes from its cache: no request answered twice', async () => {
    process.env.TEMPORAL_ADDRESS = testTarget().address;
    const half = N / 2;
    const fixture = await startFixtureServer({ answer: answerFromTable(table) });
    cleanups.push(() => fixture.close());
    // Hold request half+1, so exactly `half` responses are answered and cached when the kill lands.
    const heldQuestion = questions[half]?.question as string;
    fixture.addFault(heldQuestion, { kind: 'hang' });
    const worker: RunningWorker = await startWorker();
    cleanups.push(() => worker.stop());
    const dir = tempDir();

    const res = await cli('run', '-c', config(dir, fixture));
    expect(res.code, res.stderr).toBe(0);
    const inv = startedInvocationId(res.stdout);
    await fixture.waitForRequests(half + 1);
    const client = await testClient();
    cleanups.push(() => client.connection.close());
    const running = await client.workflow.getHandle(`evalflow-${inv}`).query<InvocationStatus>('status');
    const jobDir = running.tasks[0]?.jobDir as string;
    const handle = JSON.parse(readFileSync(join(jobDir, 'logs', 'harness.a1.json'), 'utf8')) as ProcessHandle;
    fixture.clearFaults();
    process.kill(handle.pid, 'SIGKILL');

    const status = await waitForResult(client, inv);
    const task = status.tasks[0];
    expect(task?.stage).toBe('succeeded');
    expect(task?.attempt).toBe(2);
    expect(existsSync(join(jobDir, 'logs', 'harness.a2.json'))).toBe(true);
    const answered = [...fixture.answeredCounts().values()];
    expect(answered).toHaveLength(N);
    expect(Math.max(...answered)).toBe(1);
    // Only the held request was received twice (it was never answered the first time).
    expect(fixture.totalRequests()).toBe(N + 1);
    const results = readYaml<{ samples: { total: number; cached: number; errors: number } }>(join(jobDir, 'artifacts', 'results.yml'));
    expect(results.samples).toMatchObject({ total: N, cached: half, errors: 0 });
    expect(accuracyOf(jobDir)).toBeCloseTo(EXPECTED_ACCURACY, 10);
  });
});
