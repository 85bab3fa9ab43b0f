/**
 * Orchestration overhead (issue 9 §4, DESIGN.md §6): what `evalflow run` adds over the harness alone,
 * end to end with the real stack — a Temporal dev server of its own, an `evalflow worker` process, the
 * process runtime launching real `run_eval` processes — against the fixture endpoint (latency 0, its
 * own process on core 0). A measurement script, not a test: it prints figures and never fails.
 * (bench/history.ts measures the workflows alone, with scripted activities.)
 *
 *   node dist/bench/overhead.js [--samples 10] [--repeat 3] [--fanout 100] [--window 100] [--json out.json]
 *
 * 1. One task: `run_eval` alone (process start → exit) and `evalflow run --wait` with that task
 *    (CLI process start → exit; and the InvocationWorkflow's own start → close from Temporal),
 *    interleaved `--repeat` times after one unmeasured run of each; overhead = the difference of medians.
 * 2. Fan-out: `--fanout` tasks in one invocation (mode parallel, max_parallel_tasks = `--window`)
 *    against the same tasks run as plain `run_eval` processes, at most `--window` at once; the extra
 *    wall time per task.
 * `run_eval` alone, the `evalflow run` CLI and the worker (so the harness processes it starts) run on
 * the client core; the Temporal dev server is not pinned.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { freePort } from '../common/ports.js';
import { startDevServer, type DevServer } from '../scripts/temporal-dev-server.js';
import { gsm8kTask } from './gsm8k.js';
import { openBench, parseCommandLine, parseRepeat, runMain, UsageError, type BenchContext } from './lib/context.js';
import { Fixture } from './lib/fixture.js';
import { atMost, f0, f2, f3, print, printTargets, table, type Target } from './lib/format.js';
import { runHarness, type HarnessRun } from './lib/harness-run.js';
import { machineBusyS, now, otherCores } from './lib/machine.js';
import { killGroup, runChild } from './lib/processes.js';
import { median } from './lib/stats.js';

const TARGETS = { perTaskS: 1, fanoutExtraPerTaskS: 0.1 };
const RUN_TIMEOUT_MS = 900_000;
const USAGE = 'usage: node dist/bench/overhead.js [--samples 10] [--repeat N] [--fanout 100] [--window 100] [--json out.json]';

interface Stack {
  server: DevServer;
  worker: ChildProcess;
  client: Client;
  env: Record<string, string>;
}

/** A Temporal dev server of the bench's own and one `evalflow worker` process polling it. */
async function startStack(ctx: BenchContext): Promise<Stack> {
  const server = await startDevServer({ port: await freePort(), uiPort: null, dbFile: join(ctx.scratch, 'temporal.db'), logFile: join(ctx.scratch, 'temporal.log'), startTimeoutS: 180 });
  const env = { TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: 'default', EVALFLOW_LOG_LEVEL: 'WARN' };
  // On the client core, like run_eval alone: the harness processes it starts inherit its affinity.
  const [cmd, args] = ctx.pinning.command('client', [process.execPath, join(ctx.root, 'bin', 'evalflow.js'), 'worker']);
  const worker = spawn(cmd, args, { cwd: ctx.root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const log = createWriteStream(join(ctx.scratch, 'worker.log'));
  worker.stdout?.pipe(log);
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`evalflow worker not ready after 180 s: ${seen.slice(-1000)}`)), 180_000);
    worker.stderr?.on('data', (chunk: Buffer) => {
      log.write(chunk);
      seen += chunk.toString();
      if (seen.includes('evalflow worker ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    worker.once('exit', (code) => reject(new Error(`evalflow worker exited (${code}): ${seen.slice(-1000)}`)));
  });
  const client = new Client({ connection: await Connection.connect({ address: server.address }), namespace: 'default' });
  return { server, worker, client, env };
}

async function stopStack(stack: Stack): Promise<void> {
  await stack.client.connection.close();
  stack.worker.kill('SIGTERM');
  const killer = setTimeout(() => killGroup(stack.worker), 15_000);
  await new Promise<void>((resolve) => (stack.worker.exitCode !== null ? resolve() : stack.worker.once('exit', () => resolve())));
  clearTimeout(killer);
  await stack.server.stop();
}

let configSeq = 0;

/** An evalflow config with `tasks` copies of evalflow.gsm8k on the fixture, process runtime, parallel mode. */
function writeConfig(ctx: BenchContext, fixture: Fixture, tasks: number, samples: number, window: number): string {
  const file = join(ctx.scratch, `evalflow-${++configSeq}.yaml`);
  const task = `    - name: evalflow.gsm8k\n      dataset_dir: ${JSON.stringify(ctx.datasetsDir)}\n`;
  writeFileSync(
    file,
    [
      'defaults:',
      '  - execution: local',
      '  - deployment: none',
      '  - _self_',
      'execution:',
      `  output_dir: ${JSON.stringify(join(ctx.scratch, `results-${configSeq}`))}`,
      '  runtime: process',
      '  mode: parallel',
      `  max_parallel_tasks: ${window}`,
      'target:',
      '  api_endpoint:',
      `    url: ${fixture.url}/v1/chat/completions`,
      '    model_id: fixture-model',
      '    type: chat',
      'evaluation:',
      '  nemo_evaluator_config:',
      '    config:',
      '      params:',
      `        limit_samples: ${samples}`,
      `        parallelism: ${samples}`,
      '        temperature: 0',
      '  tasks:',
      task.repeat(tasks),
    ].join('\n'),
  );
  return file;
}

interface FlowRun {
  tasks: number;
  code: number | null;
  /** `evalflow run --wait`: process start → exit. */
  wallS: number;
  /** The InvocationWorkflow's start → close, from Temporal. */
  workflowS: number | null;
  otherCores: number | null;
  invocationId: string | null;
}

async function runEvalflow(ctx: BenchContext, stack: Stack, config: string, tasks: number): Promise<FlowRun> {
  const busy0 = machineBusyS();
  const [cmd, args] = ctx.pinning.command('client', [process.execPath, join(ctx.root, 'bin', 'evalflow.js'), 'run', '-c', config, '--wait']);
  const run = await runChild(cmd, args, { env: stack.env, cwd: ctx.root, timeoutMs: RUN_TIMEOUT_MS });
  const busy1 = machineBusyS();
  const wallS = (run.exitedAt - run.startedAt) / 1000;
  const id = /started invocation ([0-9a-f]{16})/.exec(run.stdout)?.[1];
  if (run.code !== 0 || id === undefined) process.stderr.write(`  ! evalflow run (${tasks} tasks) exited ${run.code}\n${run.stdout.slice(-1500)}${run.stderr.slice(-1500)}\n`);
  let workflowS: number | null = null;
  if (id !== undefined) {
    const d = await stack.client.workflow.getHandle(`evalflow-${id}`).describe();
    if (d.closeTime) workflowS = (d.closeTime.getTime() - d.startTime.getTime()) / 1000;
  }
  // Every process on the machine but this one counts as ours here (worker, server, harnesses): "other" is the rest.
  return { tasks, code: run.code, wallS, workflowS, otherCores: otherCores(busy0, busy1, 0, wallS), invocationId: id ?? null };
}

interface ActivitySpan {
  activity: string;
  /** Since the workflow started: when the activity was scheduled and when it closed, s. */
  scheduledAtS: number;
  closedAtS: number | null;
}

/** A protobuf Timestamp (seconds may be a Long) in ms. */
function ms(t: { seconds?: unknown; nanos?: number | null } | null | undefined): number | null {
  if (!t) return null;
  const sec = t.seconds as { toNumber?: () => number } | number | string | null | undefined;
  const seconds = typeof sec === 'object' && sec !== null && typeof sec.toNumber === 'function' ? sec.toNumber() : Number(sec ?? 0);
  return seconds * 1000 + (t.nanos ?? 0) / 1e6;
}

/**
 * Where a task's workflow spent its time: when each activity was scheduled and closed, from the history
 * (the server records an activity's start only when it closes, so waits and runs are not told apart),
 * and a last row for the workflow's close.
 */
async function activitySpans(client: Client, workflowId: string): Promise<ActivitySpan[]> {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const origin = ms(events[0]?.eventTime) ?? 0;
  const at = (t: number | null) => (t === null ? null : (t - origin) / 1000);
  const spans = new Map<number, ActivitySpan>();
  for (const e of events) {
    const t = ms(e.eventTime);
    if (e.activityTaskScheduledEventAttributes) {
      spans.set(Number(e.eventId ?? 0), { activity: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?', scheduledAtS: at(t) ?? 0, closedAtS: null });
    }
    const closedOf =
      e.activityTaskCompletedEventAttributes?.scheduledEventId ??
      e.activityTaskFailedEventAttributes?.scheduledEventId ??
      e.activityTaskTimedOutEventAttributes?.scheduledEventId ??
      e.activityTaskCanceledEventAttributes?.scheduledEventId;
    const span = closedOf == null ? undefined : spans.get(Number(closedOf));
    if (span) span.closedAtS = at(t);
  }
  const closed = at(ms(events.at(-1)?.eventTime));
  return [...spans.values(), { activity: '(workflow closed)', scheduledAtS: closed ?? 0, closedAtS: closed }];
}

/** `count` harness runs, at most `window` at once: wall time of the whole batch. */
async function runHarnessBatch(ctx: BenchContext, fixture: Fixture, samples: number, count: number, window: number): Promise<{ wallS: number; failed: number }> {
  const t0 = now();
  let next = 0;
  let failed = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      next++;
      const r = await runHarness(ctx, fixture, gsm8kTask(ctx.datasetsDir), samples, samples);
      if (r.exitCode !== 0) failed++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, count) }, lane));
  return { wallS: (now() - t0) / 1000, failed };
}

function positive(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name}: a whole number >= 1, not "${value}"`);
  return n;
}

async function main(): Promise<void> {
  const values = parseCommandLine(
    {
      samples: { type: 'string', default: '10' },
      repeat: { type: 'string', default: '3' },
      fanout: { type: 'string', default: '100' },
      window: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    USAGE,
  );
  if (values.help) return print(USAGE);
  const samples = positive(values.samples, 'samples');
  const fanout = positive(values.fanout, 'fanout');
  const window = positive(values.window ?? values.fanout, 'window');
  const ctx = await openBench('evalflow orchestration overhead (real Temporal dev server, evalflow worker, process runtime)', parseRepeat(values.repeat));
  const fixture = await Fixture.start(ctx.pinning, 0);
  let stack: Stack | undefined;
  try {
    await fixture.warm();
    print(`fixture: ${fixture.url} (latency 0); task: evalflow.gsm8k, ${samples} samples at parallelism ${samples}; starting Temporal and a worker ...`);
    const t0 = now();
    stack = await startStack(ctx);
    print(`Temporal dev server ${stack.server.address} and an evalflow worker ready in ${f2((now() - t0) / 1000)} s`);

    const single = writeConfig(ctx, fixture, 1, samples, 1);
    print('warm-up: one unmeasured run each ...');
    await runHarness(ctx, fixture, gsm8kTask(ctx.datasetsDir), samples, samples);
    await runEvalflow(ctx, stack, single, 1);
    const alone: HarnessRun[] = [];
    const flows: FlowRun[] = [];
    for (let round = 1; round <= ctx.repeat; round++) {
      const h = await runHarness(ctx, fixture, gsm8kTask(ctx.datasetsDir), samples, samples);
      const f = await runEvalflow(ctx, stack, single, 1);
      alone.push(h);
      flows.push(f);
      print(`  round ${round}: run_eval alone ${f3(h.wallS)} s (exit ${h.exitCode}); evalflow run ${f3(f.wallS)} s, workflow ${f3(f.workflowS)} s (exit ${f.code}); other load ${f2(f.otherCores)}`);
    }
    const aloneS = median(alone.map((r) => r.wallS));
    const flowS = median(flows.map((r) => r.wallS));
    const workflowS = median(flows.map((r) => r.workflowS));
    const perTask = aloneS === null || flowS === null ? null : flowS - aloneS;
    const perTaskWorkflow = aloneS === null || workflowS === null ? null : workflowS - aloneS;
    print(`\n== one task, medians of ${ctx.repeat}`);
    print(table(
      ['path', 'wall s', 'over run_eval alone s'],
      [
        ['run_eval alone (process start -> exit)', f3(aloneS), '-'],
        ['evalflow run --wait (CLI start -> exit)', f3(flowS), f3(perTask)],
        ['InvocationWorkflow start -> close (Temporal)', f3(workflowS), f3(perTaskWorkflow)],
      ],
    ));

    const last = flows.at(-1);
    const spans = last?.invocationId ? await activitySpans(stack.client, `evalflow-${last.invocationId}.0`) : [];
    const harnessS = alone.at(-1)?.wallS ?? null;
    print(`  where the task's workflow spent its time (last round; run_eval alone took ${f3(harnessS)} s):`);
    print(table(
      ['activity', 'scheduled at s', 'closed at s', 'took s'],
      spans.map((x) => [x.activity, f3(x.scheduledAtS), f3(x.closedAtS), f3(x.closedAtS === null ? null : x.closedAtS - x.scheduledAtS)]),
    ));
    print('  (times since the task workflow started; gaps between rows are workflow tasks and scheduling)');

    print(`\n== fan-out: ${fanout} tasks, at most ${window} at once`);
    const direct = await runHarnessBatch(ctx, fixture, samples, fanout, window);
    print(`  ${fanout} x run_eval, ${window} at a time: ${f3(direct.wallS)} s (${direct.failed} failed)`);
    const many = await runEvalflow(ctx, stack, writeConfig(ctx, fixture, fanout, samples, window), fanout);
    print(`  evalflow run with ${fanout} tasks: ${f3(many.wallS)} s (workflow ${f3(many.workflowS)} s, exit ${many.code}, other load ${f2(many.otherCores)})`);
    const extraPerTask = (many.wallS - direct.wallS) / fanout;
    print(`  extra per task: (${f3(many.wallS)} - ${f3(direct.wallS)}) / ${fanout} = ${f0(extraPerTask * 1000)} ms`);

    const targets: Target[] = [
      { target: `orchestration overhead per task <= ${TARGETS.perTaskS} s (evalflow run - run_eval alone)`, measured: `${f3(perTask)} s`, met: atMost(perTask, TARGETS.perTaskS) },
      { target: `${fanout} tasks fan out with <= ${TARGETS.fanoutExtraPerTaskS * 1000} ms extra each (window ${window})`, measured: `${f0(extraPerTask * 1000)} ms`, met: many.code === 0 ? atMost(extraPerTask, TARGETS.fanoutExtraPerTaskS) : null },
    ];
    printTargets('DESIGN §6 orchestration', targets);
    if (values.json !== undefined) {
      const report = { meta: { date: new Date().toISOString(), ...ctx.machine, pinning: ctx.pinning.note, repeat: ctx.repeat, samples, fanout, window }, alone, flows, spans, perTask, perTaskWorkflow, fanoutRun: { direct, evalflow: many, extraPerTask }, targets };
      writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
      print(`figures written to ${values.json}`);
    }
  } finally {
    if (stack) await stopStack(stack);
    fixture.stop();
    ctx.close();
  }
}

runMain(main);
