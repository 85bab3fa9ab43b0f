/**
 * Measurement: the bare undici control client (a Pool with connections = c, keep-alive) sending the
 * harness's own request bodies for 10,000 distinct custom samples at c = 1, 16, 64, after a 1,000-request
 * warm-up in the same process. The ceiling a Node client reaches on one core; the harness is compared with it.
 * Run by bench/throughput.ts (`--only baseline`).
 */
import { runBare, type BareResult } from './lib/bare.js';
import type { BenchContext } from './lib/context.js';
import type { CustomDataset } from './lib/datasets.js';
import type { Fixture } from './lib/fixture.js';
import { f0, f2, f3, print, table } from './lib/format.js';
import { medianRun } from './lib/stats.js';

export const CONCURRENCIES = [1, 16, 64];
export const N_REQUESTS = 10_000;
const N_WARMUP = 1_000;

export async function measureBaseline(ctx: BenchContext, fixture: Fixture, dataset: CustomDataset): Promise<BareResult[]> {
  print(`\n== baseline: bare undici Pool (connections = c, keep-alive), the harness's ${f0(N_REQUESTS)} request bodies after ${f0(N_WARMUP)} warm-up`);
  const results: BareResult[] = [];
  for (const c of CONCURRENCIES) results.push(await medianRun(ctx.repeat, (x: BareResult) => x.rps, () => runBare(ctx, fixture, dataset, c, N_REQUESTS, N_WARMUP)));
  print(table(
    ['c', 'cold req/s (warm-up)', 'warm req/s', 'seconds', 'errors', 'client CPU ms/req', 'fixture CPU µs/req', 'conns', 'other load (cores)'],
    results.map((r) => [
      String(r.c), f0(r.warmupRps), f0(r.rps), f3(r.seconds), String(r.errors), f3(r.cpuMsPerRequest), f0(r.serverCpuUsPerRequest),
      String(r.serverConnections ?? 'n/a'), f2(r.otherCores),
    ]),
  ));
  return results;
}
