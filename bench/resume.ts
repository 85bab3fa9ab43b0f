/**
 * Resume cost (issue 9 §4, DESIGN.md §6): `run_eval` on 1,000 GSM8K samples is killed when the endpoint has received
 * 90 % of them, then run again on the same output dir (what a relaunch does); the requests sent again are the
 * requests of both runs minus the samples. Killed two ways: SIGKILL (a crash: nothing can be saved) and SIGTERM
 * (what `evalflow kill`, a Slurm preemption or `docker stop` send). A killed *worker* costs nothing: the harness is a
 * process of its own and the workflow re-attaches to it (test/integration/durability.test.ts). A measurement
 * script, not a test: it prints figures and never fails.
 *
 *   node dist/bench/resume.js [--n 1000] [--parallelism 16,64] [--latency-ms 20] [--repeat 3] [--json out.json]
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readResultsFile } from '../harness/results-schema.js';
import { gsm8kTask } from './gsm8k.js';
import { openBench, parseCommandLine, parseRepeat, runMain, UsageError, type BenchContext } from './lib/context.js';
import { Fixture } from './lib/fixture.js';
import { writeHarnessConfig } from './lib/harness-run.js';
import { atMost, f0, pct, print, printTargets, table, type Target } from './lib/format.js';
import { median } from './lib/stats.js';

const USAGE = 'usage: node dist/bench/resume.js [--n 1000] [--parallelism 16,64] [--latency-ms 20] [--repeat N] [--json out.json]';
const KILL_AT = 0.9;
const TARGET_RESENT = 0.01;
const SIGNALS = ['SIGKILL', 'SIGTERM'] as const;
type KillSignal = (typeof SIGNALS)[number];

interface ResumeRun {
  signal: KillSignal;
  parallelism: number;
  /** Requests the endpoint received from the killed run, and from the run that finished the job. */
  firstRequests: number;
  secondRequests: number;
  /** Requests of both runs minus the samples: what the kill cost. */
  resent: number;
  /** Samples the second run found in the cache (results.yml `samples.cached`). */
  cachedSamples: number | null;
  exitCodes: [number | null, number | null];
}

let runSeq = 0;

/** Runs `run_eval` on the client core; `killWhen` (if given) resolves when to send `signal`. */
function runEval(ctx: BenchContext, configFile: string, kill?: { when: Promise<unknown>; signal: KillSignal }): Promise<number | null> {
  const [cmd, args] = ctx.pinning.command('client', [process.execPath, ctx.cli, 'run_eval', '--run_config', configFile]);
  const child = spawn(cmd, args, { stdio: 'ignore' });
  if (kill) void kill.when.then(() => child.kill(kill.signal));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGKILL' ? 137 : 143)));
  });
}

async function measureOnce(ctx: BenchContext, fixture: Fixture, n: number, parallelism: number, signal: KillSignal): Promise<ResumeRun> {
  const outputDir = join(ctx.scratch, `resume-${++runSeq}-p${parallelism}`);
  const configFile = writeHarnessConfig(fixture, gsm8kTask(ctx.datasetsDir), n, parallelism, outputDir);
  const start = await fixture.mark(Math.round(n * KILL_AT));
  const firstExit = await runEval(ctx, configFile, { when: fixture.event(start, 'last', 120_000), signal });
  const between = await fixture.mark();
  const secondExit = await runEval(ctx, configFile);
  const end = await fixture.mark();
  const resultsFile = join(outputDir, 'results.yml');
  // No results: the second run failed (its exit code says so).
  const cachedSamples = existsSync(resultsFile) ? (readResultsFile(resultsFile).samples?.cached ?? null) : null;
  const firstRequests = between.requests - start.requests;
  const secondRequests = end.requests - between.requests;
  return { signal, parallelism, firstRequests, secondRequests, resent: firstRequests + secondRequests - n, cachedSamples, exitCodes: [firstExit, secondExit] };
}

async function main(): Promise<void> {
  const values = parseCommandLine(
    {
      n: { type: 'string', default: '1000' },
      parallelism: { type: 'string', default: '16,64' },
      'latency-ms': { type: 'string', default: '20' },
      repeat: { type: 'string', default: '3' },
      json: { type: 'string' },
    },
    USAGE,
  );
  const n = Number(values.n);
  if (!Number.isInteger(n) || n < 10) throw new UsageError(`--n: a whole number >= 10, not "${values.n}"`);
  const parallelisms = String(values.parallelism).split(',').map(Number);
  if (parallelisms.some((p) => !Number.isInteger(p) || p < 1)) throw new UsageError(`--parallelism: whole numbers >= 1, not "${values.parallelism}"`);
  const latencyMs = Number(values['latency-ms']);
  if (!Number.isFinite(latencyMs) || latencyMs < 0) throw new UsageError(`--latency-ms: a number >= 0, not "${values['latency-ms']}"`);
  const repeat = parseRepeat(values.repeat);

  const ctx = await openBench('evalflow resume-cost bench', repeat);
  const fixture = await Fixture.start(ctx.pinning, latencyMs);
  try {
    print(`fixture: ${fixture.url} (latency ${latencyMs} ms); ${f0(n)} GSM8K samples, killed at ${pct(KILL_AT)} of them received, then run again on the same output dir`);
    const runs: ResumeRun[] = [];
    for (let round = 0; round < repeat; round++) {
      for (const parallelism of parallelisms) {
        for (const signal of SIGNALS) {
          const run = await measureOnce(ctx, fixture, n, parallelism, signal);
          runs.push(run);
          print(`  round ${round + 1} p=${parallelism} ${signal}: ${run.firstRequests} + ${run.secondRequests} requests, ${run.resent} sent again, exits ${run.exitCodes.join(' / ')}`);
        }
      }
    }
    const rows: string[][] = [];
    const targets: Target[] = [];
    for (const parallelism of parallelisms) {
      for (const signal of SIGNALS) {
        const mine = runs.filter((r) => r.parallelism === parallelism && r.signal === signal);
        const resent = median(mine.map((r) => r.resent));
        const share = resent === null ? null : resent / n;
        const ok = mine.every((r) => r.exitCodes[1] === 0);
        rows.push([String(parallelism), signal, f0(median(mine.map((r) => r.firstRequests))), f0(median(mine.map((r) => r.secondRequests))), f0(resent), pct(share), f0(median(mine.map((r) => r.cachedSamples ?? Number.NaN))), ok ? 'ok' : 'second run failed']);
        targets.push({ target: `p=${parallelism}, ${signal} at ${pct(KILL_AT)}: <= ${pct(TARGET_RESENT)} of ${f0(n)} requests sent again`, measured: pct(share), met: atMost(share, TARGET_RESENT) });
      }
    }
    print(`\n== resume cost, medians of ${repeat}`);
    print(table(['parallelism', 'kill', 'killed run: requests', 'second run: requests', 'sent again', 'of samples', 'cached samples (2nd run)', 'check'], rows));
    printTargets('issue 9 §4: a crash (SIGKILL) loses the responses in flight, at most the parallelism', targets);
    if (values.json) writeFileSync(String(values.json), JSON.stringify({ n, latencyMs, runs }, null, 2));
  } finally {
    fixture.stop();
    ctx.close();
  }
}

runMain(main);
