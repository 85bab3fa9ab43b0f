/**
 * How failures surface through Temporal and the CLI: a task over its error budget, an endpoint that
 * never becomes ready, and `evalflow kill` stopping a running harness.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerFromTable, startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import { freePort } from '../../common/ports.js';
import { cli, DATASETS, gsm8kHead, startedInvocationId, tempDir, writeConfig } from '../support/run-helpers.js';
import { startWorker, testClient, testTarget, type RunningWorker } from '../support/temporal.js';
import type { ProcessHandle } from '../../backends/local/process.js';
import { parseStageExit, parseStageFailure } from '../../core/harness-contract.js';
import type { InvocationStatus } from '../../workflows/types.js';

const questions = gsm8kHead(8);
const table = Object.fromEntries(questions.map(({ question, answer }) => [question, `The final answer is ${answer}`]));

function config(dir: string, url: string, opts: { limit?: number; readiness?: number; params?: string; datasetDir?: string } = {}): string {
  return writeConfig(
    dir,
    `
execution:
  output_dir: ${dir}/results
  runtime: process
  endpoint_readiness_timeout: ${opts.readiness ?? 30}
target:
  api_endpoint:
    url: ${url}/v1/chat/completions
    model_id: fixture-model
evaluation:
  nemo_evaluator_config:
    config:
      params: {limit_samples: ${opts.limit ?? 8}, parallelism: 2, max_retries: 1${opts.params ?? ''}}
  tasks:
    - name: evalflow.gsm8k
      dataset_dir: ${opts.datasetDir ?? DATASETS}
`,
  );
}

describe('failures through the workflow', () => {
  let fixture: FixtureServer;
  let worker: RunningWorker;
  let client: Client;

  beforeAll(async () => {
    process.env.TEMPORAL_ADDRESS = testTarget().address;
    fixture = await startFixtureServer({ answer: answerFromTable(table) });
    worker = await startWorker();
    client = await testClient();
  });
  afterAll(async () => {
    await worker?.stop();
    await fixture?.close();
    await client?.connection.close();
  });

  it('a task with more failed samples than allowed fails, with its results kept and the cause shown', async () => {
    fixture.addFault(questions[2]?.question as string, { kind: 'status', status: 500, times: 1000 });
    const dir = tempDir();
    const res = await cli('run', '-c', config(dir, fixture.url), '--wait');
    fixture.clearFaults();
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/FAILED/);
    expect(res.stdout).toMatch(/1 of 8 samples failed after retries/);
    const inv = startedInvocationId(res.stdout);
    const status = await client.workflow.getHandle(`evalflow-${inv}`).query<InvocationStatus>('status');
    expect(status.stage).toBe('failed');
    expect(status.tasks[0]?.stage).toBe('failed');
    expect(status.tasks[0]?.metrics?.gsm8k_accuracy).toBe(1);
    expect(existsSync(join(status.tasks[0]?.jobDir as string, 'artifacts', 'results.yml'))).toBe(true);
    const description = await client.workflow.getHandle(`evalflow-${inv}`).describe();
    expect(description.status.name).toBe('FAILED');
  });

  it('an endpoint that never answers fails the task after endpoint_readiness_timeout, without launching', async () => {
    const dir = tempDir();
    const deadUrl = `http://127.0.0.1:${await freePort()}`;
    const started = Date.now();
    const res = await cli('run', '-c', config(dir, deadUrl, { readiness: 3 }), '--wait');
    expect(res.code).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3000);
    const inv = startedInvocationId(res.stdout);
    const status = await client.workflow.getHandle(`evalflow-${inv}`).query<InvocationStatus>('status');
    expect(status.tasks[0]?.error).toMatch(/was not ready within 3 s/);
    expect(status.tasks[0]?.attempt).toBe(0);
    expect(existsSync(join(status.tasks[0]?.jobDir as string, 'logs'))).toBe(false);
  });

  it('a corrupt dataset fails the task at once with the file and line in the workflow failure', async () => {
    const dir = tempDir();
    const data = join(dir, 'data');
    mkdirSync(join(data, 'gsm8k'), { recursive: true });
    const [first, second, third] = readFileSync(join(DATASETS, 'gsm8k', 'test.jsonl'), 'utf8').split('\n');
    writeFileSync(join(data, 'gsm8k', 'test.jsonl'), `${first}\n${second}\n{"question": "cut off\n${third}\n`);
    const res = await cli('run', '-c', config(dir, fixture.url, { datasetDir: data }), '--wait');
    expect(res.code, res.stdout).toBe(1);
    const inv = startedInvocationId(res.stdout);
    const status = await client.workflow.getHandle(`evalflow-${inv}`).query<InvocationStatus>('status');
    expect(status.tasks[0]?.stage).toBe('failed');
    expect(status.tasks[0]?.attempt, status.tasks[0]?.error).toBe(1); // a permanent failure: not relaunched
    expect(status.tasks[0]?.error).toMatch(/rejected its run config \(exit code 2\): .*gsm8k\/test\.jsonl:3/);
  });

  it('evalflow kill cancels the run and stops its harness process', async () => {
    fixture.setLatency(500);
    const dir = tempDir();
    const res = await cli('run', '-c', config(dir, fixture.url, { limit: 40 }));
    expect(res.code, res.stderr).toBe(0);
    const inv = startedInvocationId(res.stdout);
    const before = fixture.totalRequests();
    await fixture.waitForRequests(before + 2);
    const status = await client.workflow.getHandle(`evalflow-${inv}`).query<InvocationStatus>('status');
    const handleFile = join(status.tasks[0]?.jobDir as string, 'logs', 'harness.a1.json');
    const handle = JSON.parse(readFileSync(handleFile, 'utf8')) as ProcessHandle;

    const killed = await cli('kill', inv.slice(0, 6));
    expect(killed.code, killed.stderr).toBe(0);
    expect(killed.stdout).toMatch(/canceled|cancelled/);
    fixture.setLatency(0);
    const after = await client.workflow.getHandle(`evalflow-${inv}`).query<InvocationStatus>('status');
    expect(after.stage).toBe('cancelled');
    expect(after.tasks[0]?.stage).toBe('cancelled');
    // The harness got SIGTERM: it recorded exit 143 and is gone.
    const stageExit = readFileSync(join(handle.jobDir, 'logs', 'stage.exit'), 'utf8');
    expect(parseStageExit(stageExit)).toBe(143);
    expect(parseStageFailure(stageExit)?.reason).toBe('interrupted');
    expect(() => process.kill(handle.pid, 0)).toThrow();
    const st = await cli('status', inv, '--json');
    expect((JSON.parse(st.stdout) as Array<{ status: string }>)[0]?.status).toBe('KILLED');
  });
});
