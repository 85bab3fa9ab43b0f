/**
 * Throughput of the built-in harness against the deterministic fixture endpoint (DESIGN.md §6):
 * `npm run bench`. A measurement script, not a test: it prints figures and ratios and never fails on
 * a missed target. About a minute on an idle 2-core machine with the defaults.
 *
 *   node dist/bench/throughput.js [--only baseline,harness,gsm8k,latency] [--json out.json] [--repeat N]
 *
 * Measurements (one file each):
 *   baseline  bench/baseline.ts  a bare undici Pool sending the harness's own request bodies, c = 1, 16, 64
 *   harness   bench/harness.ts   `run_eval` end to end on those 10,000 samples at parallelism 1, 16, 64
 *   gsm8k     bench/gsm8k.ts     1,000 GSM8K samples at parallelism 64: wall, start-up, CPU per request
 *   latency   bench/latency.ts   a 50 ms endpoint at parallelism 1, 16, 64, 256 vs parallelism / 50 ms
 * The peers (lm-eval, Inspect AI) on the same prompts: bench/peers.ts; orchestration: bench/overhead.ts.
 *
 * The fixture endpoint runs in its own process (bench/lib/fixture-process.ts) pinned to core 0 and
 * every measured client to core 1 when `taskset` and two cores are there; the output says whether
 * pinning was used. Each run splits at the server into start-up (process start → first request),
 * request phase (first → last request) and tail (last request → exit). Client CPU is user + system
 * time from /usr/bin/time (10 ms resolution). "other load" is the CPU (in cores) that other processes
 * used during a run, from /proc/stat: on a shared machine every figure is depressed by it; use
 * `--repeat 3` for medians then.
 */
import { writeFileSync } from 'node:fs';
import { measureBaseline, N_REQUESTS } from './baseline.js';
import { gsm8kTargets, measureGsm8k, type Gsm8kReport } from './gsm8k.js';
import { harnessTargets, keepAliveTarget, measureHarness, type HarnessReport } from './harness.js';
import { LATENCY_MS, LATENCY_RUNS, latencyTargets, measureLatency, type LatencyRun } from './latency.js';
import type { BareResult } from './lib/bare.js';
import { openBench, parseCommandLine, parseRepeat, runMain, UsageError, type BenchContext } from './lib/context.js';
import { gsm8kQuestions, writeCustomDataset } from './lib/datasets.js';
import { Fixture } from './lib/fixture.js';
import { print, printTargets, type Target } from './lib/format.js';
import { now } from './lib/machine.js';

const SECTIONS = ['baseline', 'harness', 'gsm8k', 'latency'] as const;
type Section = (typeof SECTIONS)[number];

const USAGE = 'usage: node dist/bench/throughput.js [--only baseline,harness,gsm8k,latency] [--json out.json] [--repeat N]';

interface Report {
  meta: Record<string, unknown>;
  baseline?: BareResult[];
  harness?: HarnessReport;
  gsm8k?: Gsm8kReport;
  latency?: LatencyRun[];
  targets?: Target[];
}

async function main(): Promise<void> {
  const values = parseCommandLine(
    { only: { type: 'string' }, json: { type: 'string' }, repeat: { type: 'string', default: '1' }, help: { type: 'boolean', short: 'h' } },
    USAGE,
  );
  if (values.help) return print(USAGE);
  const only = values.only === undefined ? [...SECTIONS] : values.only.split(',').map((s) => s.trim());
  for (const s of only) if (!(SECTIONS as readonly string[]).includes(s)) throw new UsageError(`--only: unknown section "${s}" (one of ${SECTIONS.join(', ')})`);
  const want = (s: Section) => only.includes(s);
  const ctx = await openBench('evalflow throughput bench', parseRepeat(values.repeat));
  try {
    const report = await measure(ctx, want, only);
    if (values.json !== undefined) {
      writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
      print(`figures written to ${values.json}`);
    }
  } finally {
    ctx.close();
  }
}

async function measure(ctx: BenchContext, want: (s: Section) => boolean, only: string[]): Promise<Report> {
  const started = now();
  const dataset = writeCustomDataset(ctx.scratch, Math.max(N_REQUESTS, ...LATENCY_RUNS.map((r) => r.n)), ctx.datasetsDir);
  const report: Report = { meta: { date: new Date().toISOString(), ...ctx.machine, pinning: ctx.pinning.note, repeat: ctx.repeat, sections: only } };
  const fixtures: Fixture[] = [];
  try {
    if (want('baseline') || want('harness') || want('gsm8k')) {
      const fixture = await Fixture.start(ctx.pinning, 0);
      fixtures.push(fixture);
      print(`fixture: ${fixture.url} (latency 0)`);
      await fixture.warm();
      if (want('baseline')) report.baseline = await measureBaseline(ctx, fixture, dataset);
      if (want('harness')) report.harness = await measureHarness(ctx, fixture, dataset, report.baseline);
      if (want('gsm8k')) {
        if (gsm8kQuestions(ctx.datasetsDir).length === 0) print(`\n== GSM8K: skipped (no gsm8k/test.jsonl under ${ctx.datasetsDir})`);
        else report.gsm8k = await measureGsm8k(ctx, fixture);
      }
    }
    if (want('latency')) {
      const slow = await Fixture.start(ctx.pinning, LATENCY_MS);
      fixtures.push(slow);
      print(`\nfixture: ${slow.url} (latency ${LATENCY_MS} ms)`);
      report.latency = await measureLatency(ctx, slow, dataset);
    }
  } finally {
    for (const f of fixtures) f.stop();
  }
  report.targets = [
    ...(report.harness ? harnessTargets(report.harness, report.baseline) : []),
    ...(report.latency ? latencyTargets(report.latency) : []),
    ...(report.gsm8k ? gsm8kTargets(report.gsm8k) : []),
    ...keepAliveTarget([...(report.harness?.runs ?? []), ...(report.latency ?? []), ...(report.gsm8k ? [report.gsm8k.run] : [])]),
  ];
  printTargets('DESIGN §6', report.targets);
  const totalS = (now() - started) / 1000;
  report.meta.totalSeconds = totalS;
  print(`\nbench took ${totalS.toFixed(1)} s`);
  return report;
}

runMain(main);
