/**
 * Workflow behaviour on the real dev server. Two workers with different host identities route a local
 * job's activities to the host that runs it (real harness processes). With scripted activities on a
 * private task queue: the invocation's history does not grow with how long its tasks run (children signal
 * stage changes only), and relaunch budgets count launches without progress only.
 */
import { randomBytes } from 'node:crypto';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutorHandle } from '../../core/executor.js';
import type { PollResult } from '../../core/outcome.js';
import { workflowCodeOptions } from '../../worker/workers.js';
import type { EvaluationInput, InvocationInput } from '../../workflows/types.js';
import { answerFromTable, startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import { cli, DATASETS, gsm8kHead, tempDir, writeConfig } from '../support/run-helpers.js';
import { startWorker, testClient, testTarget, type RunningWorker } from '../support/temporal.js';

const INVOCATION_ID = () => randomBytes(8).toString('hex');

describe('local jobs are served by the host that runs them', () => {
  let fixture: FixtureServer;
  const workers: RunningWorker[] = [];
  let client: Client;
  const questions = gsm8kHead(10);

  beforeAll(async () => {
    process.env.TEMPORAL_ADDRESS = testTarget().address;
    fixture = await startFixtureServer({ answer: answerFromTable(Object.fromEntries(questions.map((q) => [q.question, `The answer is ${q.answer}`]))), latencyMs: 100 });
    // Same machine, two identities: to each worker the other's pids belong to another host.
    workers.push(await startWorker({ host: { id: 'host-a-00000001', hostname: 'host-a' } }));
    workers.push(await startWorker({ host: { id: 'host-b-00000002', hostname: 'host-b' } }));
    client = await testClient();
  });
  afterAll(async () => {
    for (const w of workers) await w.stop();
    await fixture?.close();
    await client?.connection.close();
  });

  it('every activity after the launch runs on the launching host queue; the run succeeds with exact scores', async () => {
    const dir = tempDir();
    const file = writeConfig(
      dir,
      `
execution: {output_dir: ${dir}/results, runtime: process, mode: parallel}
target: {api_endpoint: {url: ${fixture.url}/v1/chat/completions, model_id: fixture-model}}
evaluation:
  nemo_evaluator_config: {config: {params: {limit_samples: 10, parallelism: 2}}}
  tasks:
    - {name: evalflow.gsm8k, dataset_dir: ${DATASETS}}
    - {name: evalflow.gsm8k, dataset_dir: ${DATASETS}}
    - {name: evalflow.gsm8k, dataset_dir: ${DATASETS}}
`,
    );
    const res = await cli('run', '-c', file, '--wait', '--json');
    expect(res.code, res.stderr).toBe(0);
    const inv = (JSON.parse(res.stdout) as { invocationId: string }).invocationId;
    for (const index of [0, 1, 2]) {
      const history = await client.workflow.getHandle(`evalflow-${inv}.${index}`).fetchHistory();
      const scheduled = (history.events ?? []).flatMap((e) => {
        const a = e.activityTaskScheduledEventAttributes;
        return a ? [{ type: a.activityType?.name ?? '', queue: a.taskQueue?.name ?? '' }] : [];
      });
      const launch = scheduled.findIndex((s) => s.type === 'launchHarness');
      expect(scheduled[launch]?.queue).toBe('evalflow');
      const after = scheduled.slice(launch + 1);
      const hostQueues = new Set(after.map((s) => s.queue));
      expect(hostQueues.size, JSON.stringify(after)).toBe(1);
      expect([...hostQueues][0]).toMatch(/^evalflow@host-[ab]-0000000[12]$/);
      expect(after.map((s) => s.type)).toContain('watchHarness');
      expect(after.map((s) => s.type)).toContain('teardownJob');
    }
    const status = JSON.parse(res.stdout) as { tasks: Array<{ stage: string; metrics: Record<string, number> }> };
    expect(status.tasks.map((t) => [t.stage, t.metrics.gsm8k_accuracy])).toEqual([
      ['succeeded', 1],
      ['succeeded', 1],
      ['succeeded', 1],
    ]);
  });
});

/** Scripted activities: each launch polls `running` for `checkpoints` calls, then ends as `script` says. */
function scriptedActivities(script: { checkpoints: number; ends: (attempt: number) => PollResult }) {
  const polls = new Map<string, number>();
  return {
    async prepareEndpoint() {
      return { readyAfterS: 0 };
    },
    async deployServer() {
      return null;
    },
    async launchHarness(input: { evaluation: { jobDir: string; invocationId: string; taskIndex: number }; attempt: number }): Promise<ExecutorHandle> {
      return { executor: 'process', role: 'harness', name: `fake-${input.evaluation.taskIndex}-a${input.attempt}`, jobDir: input.evaluation.jobDir, attempt: input.attempt, display: 'scripted' };
    },
    async watchHarness(input: { handle: ExecutorHandle }): Promise<PollResult> {
      const n = (polls.get(input.handle.name) ?? 0) + 1;
      polls.set(input.handle.name, n);
      if (n <= script.checkpoints) return { outcome: { kind: 'running' }, progress: { total: 100, done: n, cached: 0, errors: 0 } };
      return script.ends(input.handle.attempt);
    },
    async collectResults(input: { handle: ExecutorHandle }) {
      return {
        resultsPath: `${input.handle.jobDir}/artifacts/results.yml`,
        samplesPath: `${input.handle.jobDir}/artifacts/x.jsonl`,
        metrics: { fake_accuracy: 0.5 },
        samples: { total: 100, scored: 100, errors: 0, cached: 0 },
        progress: { total: 100, done: 100, cached: 0, errors: 0 },
      };
    },
    async exportResults() {
      return [];
    },
    async teardownJob() {
      return { stopped: 0 };
    },
  };
}

function fakeTask(invocationId: string, taskIndex: number, maxAttempts = 3): EvaluationInput {
  return {
    invocationId,
    taskIndex,
    taskName: 'evalflow.gsm8k',
    jobName: `gsm8k.${taskIndex}`,
    jobDir: `/nonexistent/run/gsm8k.${taskIndex}`,
    builtinHarness: true,
    executor: { kind: 'process' },
    endpoint: { url: 'http://127.0.0.1:9/v1/chat/completions', modelId: 'm', type: 'chat', readinessTimeoutS: 10 },
    runConfig: {},
    limits: { maxAttempts, heartbeatTimeoutS: 10 },
  };
}

describe('workflow policy with scripted activities', () => {
  let connection: NativeConnection;
  let client: Client;

  beforeAll(async () => {
    connection = await NativeConnection.connect({ address: testTarget().address });
    client = await testClient();
  });
  afterAll(async () => {
    await connection?.close();
    await client?.connection.close();
  });

  async function withScriptedWorker<T>(activities: object, fn: (taskQueue: string) => Promise<T>): Promise<T> {
    const taskQueue = `scripted-${randomBytes(4).toString('hex')}`;
    const worker = await Worker.create({ connection, taskQueue, activities, ...workflowCodeOptions(), maxConcurrentWorkflowTaskExecutions: 50 });
    return worker.runUntil(fn(taskQueue));
  }

  async function runInvocation(taskQueue: string, tasks: number, maxAttempts = 3) {
    const invocationId = INVOCATION_ID();
    const input: InvocationInput = {
      invocationId,
      runDir: '/nonexistent/run',
      model: 'm',
      backend: 'local/process',
      mode: 'parallel',
      tasks: Array.from({ length: tasks }, (_, i) => fakeTask(invocationId, i, maxAttempts)),
    };
    const handle = await client.workflow.start('InvocationWorkflow', { taskQueue, workflowId: `evalflow-${invocationId}`, args: [input] });
    const outcome = await handle.result().then(
      (r: unknown) => ({ ok: true as const, result: r }),
      (err: Error) => ({ ok: false as const, error: err }),
    );
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const signals = events.filter((e) => e.workflowExecutionSignaledEventAttributes).length;
    return { invocationId, outcome, events: events.length, signals };
  }

  it("the invocation's history does not grow with its tasks' run time: 10 parallel tasks, 2 or 20 watch checkpoints each", async () => {
    const short = await withScriptedWorker(scriptedActivities({ checkpoints: 2, ends: () => ({ outcome: { kind: 'succeeded' } }) }), (q) => runInvocation(q, 10));
    const long = await withScriptedWorker(scriptedActivities({ checkpoints: 20, ends: () => ({ outcome: { kind: 'succeeded' } }) }), (q) => runInvocation(q, 10));
    expect(short.outcome.ok).toBe(true);
    expect(long.outcome.ok).toBe(true);
    console.log(
      `[history] invocation with 10 parallel tasks: ${short.events} events, ${short.signals} signals (2 checkpoints/task); ${long.events} events, ${long.signals} signals (20 checkpoints/task)`,
    );
    // Children signal stage changes only, never checkpoints: the same signals however long the tasks run.
    // The total varies a little with how signals batch into workflow tasks (3 events each), within a bound
    // per task that does not depend on run time (bench/history.ts measures 50 tasks).
    expect(long.signals).toBe(short.signals);
    expect(long.events).toBeLessThan(10 * 40);
  }, 600_000);

  it('a launch that made progress does not use up an attempt: 5 interruptions with progress, then success, with max_attempts 2', async () => {
    const acts = scriptedActivities({ checkpoints: 1, ends: (attempt) => (attempt <= 5 ? { outcome: { kind: 'resumable', reason: 'PREEMPTED' } } : { outcome: { kind: 'succeeded' } }) });
    // Progress per launch: the scripted poll reports done = 1 for each new launch, so make it grow.
    let done = 0;
    const watch = acts.watchHarness;
    acts.watchHarness = async (input) => {
      const r = await watch(input);
      return r.progress ? { ...r, progress: { ...r.progress, done: ++done } } : r;
    };
    const run = await withScriptedWorker(acts, (q) => runInvocation(q, 1, 2));
    expect(run.outcome.ok, String(!run.outcome.ok && (run.outcome.error as { cause?: Error }).cause?.message)).toBe(true);
    const result = (run.outcome.ok ? run.outcome.result : undefined) as { tasks: Array<{ attempts: number }> } | undefined;
    expect(result?.tasks[0]?.attempts).toBe(6);
  });

  it('launches that end without progress use up max_attempts, with the last reason in the failure', async () => {
    const acts = scriptedActivities({ checkpoints: 0, ends: () => ({ outcome: { kind: 'lost', reason: 'the harness vanished' } }) });
    const run = await withScriptedWorker(acts, (q) => runInvocation(q, 1, 2));
    expect(run.outcome.ok).toBe(false);
    const message = !run.outcome.ok ? String((run.outcome.error as { cause?: Error }).cause?.message) : '';
    expect(message).toMatch(/gsm8k\.0: the harness vanished; 2 launch\(es\) ended without progress \(execution\.max_attempts = 2\)/);
  });
});
