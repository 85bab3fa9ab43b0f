/**
 * Killing one job and resuming an invocation, on the real dev server with real harness processes:
 * a killed job ends KILLED while its siblings go on (parallel) or start (sequential); `resume` re-runs
 * only the failed or killed jobs in their own job dirs, so no sample with an answer is requested again.
 */
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerFromTable, startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import { cli, DATASETS, gsm8kHead, startedInvocationId, tempDir, writeConfig } from '../support/run-helpers.js';
import { startWorker, testClient, testTarget, type RunningWorker } from '../support/temporal.js';
import type { InvocationStatus } from '../../workflows/types.js';

const N = 12;
const questions = gsm8kHead(N);
const table = Object.fromEntries(questions.map(({ question, answer }) => [question, `The final answer is ${answer}`]));

function config(dir: string, url: string, opts: { mode?: 'parallel' | 'sequential'; tasks?: number; maxErrorRate?: number } = {}): string {
  const task = `    - name: evalflow.gsm8k\n      dataset_dir: ${DATASETS}\n`;
  return writeConfig(
    dir,
    `
execution:
  output_dir: ${dir}/results
  runtime: process
  mode: ${opts.mode ?? 'sequential'}
target:
  api_endpoint:
    url: ${url}/v1/chat/completions
    model_id: fixture-model
evaluation:
  nemo_evaluator_config:
    config:
      params: {limit_samples: ${N}, parallelism: 2, max_retries: 1, extra: {max_error_rate: ${opts.maxErrorRate ?? 0}}}
  tasks:
${task.repeat(opts.tasks ?? 2)}`,
  );
}

interface StatusRow {
  job_id: string;
  status: string;
  metrics: Record<string, number>;
  error: string | null;
}

describe('kill one job, resume an invocation', () => {
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

  const status = async (inv: string) => JSON.parse((await cli('status', inv, '--json')).stdout) as StatusRow[];
  const waitClosed = async (inv: string) => {
    const handle = client.workflow.getHandle(`evalflow-${inv}`);
    await handle.result().catch(() => undefined);
    return handle.describe();
  };
  const startedRequests = async (n: number) => {
    const before = fixture.totalRequests();
    await fixture.waitForRequests(before + n);
  };

  it('parallel: killing job .0 leaves job .1 running to success; the invocation fails naming the killed job; resume finishes it without repeats', async () => {
    fixture.setLatency(400);
    const dir = tempDir();
    const res = await cli('run', '-c', config(dir, fixture.url, { mode: 'parallel' }));
    expect(res.code, res.stderr).toBe(0);
    const inv = startedInvocationId(res.stdout);
    await startedRequests(4);

    const killed = await cli('kill', `${inv}.0`);
    expect(killed.code, killed.stderr).toBe(0);
    expect(killed.stdout).toMatch(new RegExp(`evalflow-${inv}\\.0: (canceled|cancelled)`));
    fixture.setLatency(0);

    const description = await waitClosed(inv);
    expect(description.status.name).toBe('FAILED');
    const rows = await status(inv);
    expect(rows.map((r) => [r.job_id, r.status])).toEqual([
      [`${inv}.0`, 'KILLED'],
      [`${inv}.1`, 'SUCCESS'],
    ]);
    expect(rows[1]?.metrics.gsm8k_accuracy).toBe(1);
    const failure = await client.workflow.getHandle(`evalflow-${inv}`).result().catch((err: Error) => err);
    expect(String((failure as { cause?: Error }).cause?.message)).toBe('1 of 2 tasks failed: gsm8k.0: killed');

    // Resume: only job .0 runs again, from its cache; no sample that had an answer is requested again.
    const resumed = await cli('resume', inv.slice(0, 8), '--wait');
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`resumed invocation ${inv}`);
    expect(resumed.stdout).toContain('gsm8k.0');
    expect(resumed.stdout).not.toMatch(/: gsm8k\.0, gsm8k\.1/);
    const after = await status(inv);
    expect(after.map((r) => [r.job_id, r.status, r.metrics.gsm8k_accuracy])).toEqual([
      [`${inv}.0`, 'SUCCESS', 1],
      [`${inv}.1`, 'SUCCESS', 1],
    ]);
    // Both jobs ask the same 12 questions: 2 answers each at most (one per job), never a third.
    for (const [, count] of fixture.answeredCounts()) expect(count).toBeLessThanOrEqual(2);

    const runs = JSON.parse((await cli('ls', 'runs', '--json')).stdout) as Array<{ invocation_id: string; resume_of: string | null; status: string }>;
    const mine = runs.filter((r) => r.invocation_id === inv);
    expect(mine.map((r) => r.status).sort()).toEqual(['COMPLETED', 'FAILED']);
    expect(mine.find((r) => r.status === 'COMPLETED')?.resume_of).toBe(description.runId);
  });

  it('sequential: killing the running job lets the next one start and succeed', async () => {
    fixture.setLatency(400);
    const dir = tempDir();
    const res = await cli('run', '-c', config(dir, fixture.url, { mode: 'sequential' }));
    expect(res.code, res.stderr).toBe(0);
    const inv = startedInvocationId(res.stdout);
    await startedRequests(3);
    expect((await cli('kill', `${inv}.0`)).code).toBe(0);
    fixture.setLatency(0);
    expect((await waitClosed(inv)).status.name).toBe('FAILED');
    expect((await status(inv)).map((r) => r.status)).toEqual(['KILLED', 'SUCCESS']);
  });

  it('resume after a task failed its error budget: only the failed samples are requested, scores equal a clean run', async () => {
    const faulty = questions.slice(0, 3).map((q) => q.question);
    for (const q of faulty) fixture.addFault(q, { kind: 'status', status: 500, times: 1000 });
    const firstRequest = fixture.requests.length;
    const dir = tempDir();
    const res = await cli('run', '-c', config(dir, fixture.url, { tasks: 1 }), '--wait');
    expect(res.code).toBe(1);
    const inv = startedInvocationId(res.stdout);
    expect((await status(inv))[0]?.status).toBe('FAILED');

    fixture.clearFaults();
    const answeredBefore = new Set(fixture.requests.slice(firstRequest).filter((r) => r.status === 200).map((r) => r.prompt));
    const seen = fixture.requests.length;
    const resumed = await cli('resume', inv, '--wait', '--json');
    expect(resumed.code, resumed.stderr).toBe(0);
    const resumedPrompts = fixture.requests.slice(seen).map((r) => r.prompt);
    for (const q of faulty) expect(resumedPrompts.some((p) => p.includes(q))).toBe(true);
    expect(resumedPrompts.filter((p) => answeredBefore.has(p))).toEqual([]);
    const final = JSON.parse(resumed.stdout) as InvocationStatus;
    expect(final.tasks[0]?.stage).toBe('succeeded');
    expect(final.tasks[0]?.metrics?.gsm8k_accuracy).toBe(1);
    expect(final.tasks[0]?.attempt).toBe(2);

    // Nothing left to resume.
    const again = await cli('resume', inv);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/nothing to resume/);
  });

  it('refuses to resume a running invocation, and an unknown job', async () => {
    fixture.setLatency(300);
    const dir = tempDir();
    const res = await cli('run', '-c', config(dir, fixture.url, { tasks: 1 }));
    const inv = startedInvocationId(res.stdout);
    const running = await cli('resume', inv);
    expect(running.code).toBe(2);
    expect(running.stderr).toMatch(/still running/);
    fixture.setLatency(0);
    await waitClosed(inv);
    const unknown = await cli('resume', `${inv}.7`);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(new RegExp(`has no job ${inv}\\.7`));
  });
});
