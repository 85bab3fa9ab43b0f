/**
 * Measurement: a 50 ms endpoint at parallelism 1, 16, 64, 256: the harness (custom task) as a fraction
 * of the physical limit parallelism / 50 ms, end to end and in the request phase, with a bare undici
 * Pool at the same parallelism as a control. Run by bench/throughput.ts (`--only latency`).
 */
import { runBare, type BareResult } from './lib/bare.js';
import type { BenchContext } from './lib/context.js';
import type { CustomDataset } from './lib/datasets.js';
import { customTask } from './lib/datasets.js';
import type { Fixture } from './lib/fixture.js';
import { atLeast, f0, f2, f3, pct, print, table, type Target } from './lib/format.js';
import { checkRun, printWarnings, runHarness, type HarnessRun } from './lib/harness-run.js';
import { medianRun, ratio } from './lib/stats.js';

export const LATENCY_MS = 50;
/** Samples per run: ~3 s of requests each at the physical limit (N·latency/parallelism). */
export const LATENCY_RUNS: Array<{ c: number; n: number }> = [
  { c: 1, n: 60 },
  { c: 16, n: 1_000 },
  { c: 64, n: 4_000 },
  { c: 256, n: 16_000 },
];
const TARGET_OF_LIMIT = 0.95;

export type LatencyRun = HarnessRun & { limitRps: number; ratioWall: number; ratioRuntime: number | null; ratioPhase: number | null; bare: BareResult; bareRatio: number };

export async function measureLatency(ctx: BenchContext, slow: Fixture, dataset: CustomDataset): Promise<LatencyRun[]> {
  print(`\n== ${LATENCY_MS} ms endpoint: harness (custom task) vs the physical limit parallelism / ${LATENCY_MS} ms; bare undici as a control`);
  const task = customTask(dataset);
  const runs: LatencyRun[] = [];
  for (const { c, n } of LATENCY_RUNS) {
    const r = await medianRun(ctx.repeat, (x: HarnessRun) => x.rpsWall, () => runHarness(ctx, slow, task, n, c));
    const limitRps = c / (LATENCY_MS / 1000);
    // Control: a bare undici Pool at the same parallelism (half the requests, after 2 rounds of warm-up).
    const bare = await medianRun(ctx.repeat, (x: BareResult) => x.rps, () => runBare(ctx, slow, dataset, c, Math.max(c, Math.round(n / 2)), 2 * c));
    runs.push({
      ...r,
      limitRps,
      ratioWall: r.rpsWall / limitRps,
      ratioRuntime: ratio(r.rpsRuntime, limitRps),
      ratioPhase: ratio(r.rpsPhase, limitRps),
      bare,
      bareRatio: bare.rps / limitRps,
    });
  }
  print(table(
    ['parallelism', 'N', 'limit req/s', 'wall s', 'start-up s', 'tail s', 'req/s N/wall', 'req/s requests', 'of limit (wall)', 'of limit (runtime)', 'of limit (requests)', 'bare undici of limit', 'client CPU s', 'check', 'other load'],
    runs.map((r) => [
      String(r.parallelism), f0(r.n), f0(r.limitRps), f3(r.wallS), f3(r.startupS), f3(r.tailS), f0(r.rpsWall), f0(r.rpsPhase),
      pct(r.ratioWall), pct(r.ratioRuntime), pct(r.ratioPhase), pct(r.bareRatio), f2(r.clientCpuMs === null ? null : r.clientCpuMs / 1000), checkRun(r), f2(r.otherCores),
    ]),
  ));
  printWarnings(runs);
  return runs;
}

export function latencyTargets(runs: LatencyRun[]): Target[] {
  return runs.flatMap((r) => [
    { target: `${LATENCY_MS} ms endpoint @ p=${r.parallelism} >= ${pct(TARGET_OF_LIMIT)} of ${f0(r.limitRps)} req/s, end to end`, measured: `${pct(r.ratioWall)} (${f0(r.rpsWall)} req/s)`, met: atLeast(r.ratioWall, TARGET_OF_LIMIT) },
    { target: `${LATENCY_MS} ms endpoint @ p=${r.parallelism} >= ${pct(TARGET_OF_LIMIT)} of ${f0(r.limitRps)} req/s, request phase`, measured: `${pct(r.ratioPhase)} (${f0(r.rpsPhase)} req/s; bare ${pct(r.bareRatio)})`, met: atLeast(r.ratioPhase, TARGET_OF_LIMIT) },
  ]);
}
