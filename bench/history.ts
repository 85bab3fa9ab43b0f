/**
 * History-size and fan-out benchmark of the workflows (DESIGN.md §6), on a real Temporal dev server with
 * scripted activities (the workflows are real; the activities answer at once, so only orchestration is
 * measured). A measurement script, not a test: it prints figures and never fails on a missed target.
 *
 *   node dist/bench/history.js [--tasks 50] [--checkpoints 5,50] [--fanout 100]
 *
 * 1. An invocation of `--tasks` parallel tasks whose watchers return `--checkpoints` times before the
 *    harness ends: events in the invocation's history and in one task's history. The invocation's count
 *    must not depend on the checkpoints (children signal stage changes only); a task's grows by a fixed
 *    number of events per checkpoint, extrapolated to a 7-day watch with the real checkpoint schedule.
 * 2. Fan-out: `--fanout` tasks with one checkpoint each; wall time per task over one task alone.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { ExecutorHandle } from '../core/executor.js';
import type { PollResult } from '../core/outcome.js';
import { startDevServer } from '../scripts/temporal-dev-server.js';
import { freePort } from '../common/ports.js';
import { workflowCodeOptions } from '../worker/workers.js';
import { watchCheckpointSeconds } from '../workflows/watch-policy.js';
import type { EvaluationInput, InvocationInput } from '../workflows/types.js';

const { values } = parseArgs({
  options: { tasks: { type: 'string', default: '50' }, checkpoints: { type: 'string', default: '5,50' }, fanout: { type: 'string', default: '100' } },
});
const TASKS = Number(values.tasks);
const CHECKPOINTS = String(values.checkpoints).split(',').map(Number);
const FANOUT = Number(values.fanout);
const TEMPORAL_HISTORY_LIMIT = 51_200;

Runtime.install({ logger: new DefaultLogger('WARN') });

function scripted(checkpoints: number) {
  const polls = new Map<string, number>();
  return {
    prepareEndpoint: async () => ({ readyAfterS: 0 }),
    deployServer: async () => null,
    launchHarness: async (input: { evaluation: { jobDir: string; taskIndex: number }; attempt: number }): Promise<ExecutorHandle> => ({
      executor: 'process',
      role: 'harness',
      name: `bench-${input.evaluation.taskIndex}-a${input.attempt}`,
      jobDir: input.evaluation.jobDir,
      attempt: input.attempt,
      display: 'scripted',
    }),
    watchHarness: async (input: { handle: ExecutorHandle }): Promise<PollResult> => {
      const n = (polls.get(input.handle.name) ?? 0) + 1;
      polls.set(input.handle.name, n);
      return n <= checkpoints ? { outcome: { kind: 'running' }, progress: { total: 1000, done: n, cached: 0, errors: 0 } } : { outcome: { kind: 'succeeded' } };
    },
    collectResults: async (input: { handle: ExecutorHandle }) => ({
      resultsPath: `${input.handle.jobDir}/artifacts/results.yml`,
      samplesPath: `${input.handle.jobDir}/artifacts/s.jsonl`,
      metrics: { bench_accuracy: 1 },
      samples: { total: 1000, scored: 1000, errors: 0, cached: 0 },
      progress: { total: 1000, done: 1000, cached: 0, errors: 0 },
    }),
    exportResults: async () => [],
    teardownJob: async () => ({ stopped: 0 }),
  };
}

function input(tasks: number): InvocationInput {
  const invocationId = randomBytes(8).toString('hex');
  const task = (i: number): EvaluationInput => ({
    invocationId,
    taskIndex: i,
    taskName: 'evalflow.gsm8k',
    jobName: `gsm8k.${i}`,
    jobDir: `/bench/run/gsm8k.${i}`,
    builtinHarness: true,
    executor: { kind: 'process' },
    endpoint: { url: 'http://127.0.0.1:9/v1/chat/completions', modelId: 'm', type: 'chat', readinessTimeoutS: 10 },
    runConfig: {},
  });
  return { invocationId, runDir: '/bench/run', model: 'm', backend: 'local/process', mode: 'parallel', tasks: Array.from({ length: tasks }, (_, i) => task(i)) };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'evalflow-bench-history-'));
  const server = await startDevServer({ port: await freePort(), uiPort: null, dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'server.log'), startTimeoutS: 120 });
  const connection = await NativeConnection.connect({ address: server.address });
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  try {
    const run = async (tasks: number, checkpoints: number) => {
      const taskQueue = `bench-${randomBytes(4).toString('hex')}`;
      const worker = await Worker.create({ connection, taskQueue, activities: scripted(checkpoints), ...workflowCodeOptions(), maxConcurrentWorkflowTaskExecutions: 100 });
      return worker.runUntil(async () => {
        const inv = input(tasks);
        const started = performance.now();
        const handle = await client.workflow.start('InvocationWorkflow', { taskQueue, workflowId: `evalflow-${inv.invocationId}`, args: [inv] });
        await handle.result();
        const wallS = (performance.now() - started) / 1000;
        const parent = (await handle.fetchHistory()).events?.length ?? 0;
        const child = (await client.workflow.getHandle(`evalflow-${inv.invocationId}.0`).fetchHistory()).events?.length ?? 0;
        return { wallS, parent, child };
      });
    };

    console.log(`# history: ${TASKS} parallel tasks (scripted activities, real workflows, Temporal dev server)`);
    const rows = [];
    for (const c of CHECKPOINTS) {
      const r = await run(TASKS, c);
      rows.push({ c, ...r });
      console.log(`checkpoints/task ${String(c).padStart(4)}: invocation ${r.parent} events, one task ${r.child} events, wall ${r.wallS.toFixed(1)} s`);
    }
    const [lo, hi] = [rows[0], rows[rows.length - 1]];
    if (lo && hi && hi.c > lo.c) {
      const perCheckpoint = (hi.child - lo.child) / (hi.c - lo.c);
      let elapsed = 0;
      let watchCalls = 0;
      while (elapsed < 7 * 86_400) {
        elapsed += watchCheckpointSeconds(elapsed);
        watchCalls++;
      }
      const sevenDays = Math.round(lo.child - lo.c * perCheckpoint + watchCalls * perCheckpoint);
      console.log(`task history: ${perCheckpoint.toFixed(1)} events per watch checkpoint; a 7-day watch = ${watchCalls} checkpoints ≈ ${sevenDays} events (limit ${TEMPORAL_HISTORY_LIMIT})`);
      console.log(`invocation history: ${lo.parent} → ${hi.parent} events for ${lo.c} → ${hi.c} checkpoints per task (ratio ${(hi.parent / lo.parent).toFixed(2)}; flat = independent of run time)`);
    }

    console.log(`# fan-out: ${FANOUT} tasks, one checkpoint each`);
    const one = await run(1, 1);
    const many = await run(FANOUT, 1);
    console.log(`1 task: ${one.wallS.toFixed(2)} s; ${FANOUT} tasks: ${many.wallS.toFixed(2)} s → ${((1000 * (many.wallS - one.wallS)) / (FANOUT - 1)).toFixed(0)} ms extra per task (target ≤ 100 ms)`);
  } finally {
    await client.connection.close();
    await connection.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
