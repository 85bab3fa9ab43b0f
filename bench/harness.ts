/**
 * Measurement: `run_eval` end to end (process start → exit) on the 10,000 custom samples whose bodies
 * the baseline sends, at parallelism 1, 16, 64: N / wall, N / runtime_seconds, the request phase at the
 * server, start-up, client CPU per request (warm and with JIT warm-up, from 1- and 1,000-sample runs),
 * and the ratio to the bare undici baseline. Run by bench/throughput.ts (`--only harness`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requestKey } from '../harness/cache.js';
import { CONCURRENCIES, N_REQUESTS } from './baseline.js';
import type { BareResult } from './lib/bare.js';
import type { BenchContext } from './lib/context.js';
import { customTask, harnessBodies, type CustomDataset } from './lib/datasets.js';
import type { Fixture } from './lib/fixture.js';
import { atLeast, atMost, f0, f2, f3, pct, print, table, type Target } from './lib/format.js';
import { checkRun, printWarnings, runHarness, type HarnessRun } from './lib/harness-run.js';
import { medianRun, ratio } from './lib/stats.js';

const TARGET = { ratioToBare: 0.75, cpuMsPerRequest: 0.1 };

export type HarnessVsBare = HarnessRun & { ratioToBare: number | null; ratioToBarePhase: number | null };

export interface HarnessReport {
  runs: HarnessVsBare[];
  /** 1-sample and 1,000-sample runs at parallelism 64, for fixed and warm marginal costs. */
  oneSample: HarnessRun;
  thousand: HarnessRun;
  /** (CPU(10,000) − CPU(1,000)) / 9,000 at parallelism 64. */
  warmCpuMsPerRequest: number | null;
  /** (CPU(10,000) − CPU(1)) / 9,999 at parallelism 64: JIT warm-up included. */
  marginalCpuMsPerRequest: number | null;
  promptsIdentical: string;
}

export async function measureHarness(ctx: BenchContext, fixture: Fixture, dataset: CustomDataset, baseline: BareResult[] | undefined): Promise<HarnessReport> {
  print(`\n== harness end to end (process start -> exit): custom task, ${f0(N_REQUESTS)} distinct samples, fresh output_dir per run`);
  const task = customTask(dataset);
  const runs: HarnessVsBare[] = [];
  for (const c of CONCURRENCIES) {
    const r = await medianRun(ctx.repeat, (x: HarnessRun) => x.rpsWall, () => runHarness(ctx, fixture, task, N_REQUESTS, c));
    const bare = baseline?.find((b) => b.c === c);
    runs.push({ ...r, ratioToBare: ratio(r.rpsWall, bare?.rps), ratioToBarePhase: ratio(r.rpsPhase, bare?.rps) });
  }
  // Short reference runs for the CPU differences: median of 3 at least (CPU time is noisy on a shared machine).
  const cpuKey = (x: HarnessRun) => x.clientCpuMs ?? 0;
  const refs = Math.max(3, ctx.repeat);
  const oneSample = await medianRun(refs, cpuKey, () => runHarness(ctx, fixture, task, 1, 64));
  const thousand = await medianRun(refs, cpuKey, () => runHarness(ctx, fixture, task, 1_000, 64));
  const p64 = runs.find((r) => r.parallelism === 64);
  const perRequest = (big: HarnessRun | undefined, small: HarnessRun) =>
    big && big.clientCpuMs !== null && small.clientCpuMs !== null ? (big.clientCpuMs - small.clientCpuMs) / (big.n - small.n) : null;
  const warm = perRequest(p64, thousand);
  const marginal = perRequest(p64, oneSample);
  const promptsIdentical = runs[0] === undefined ? 'n/a' : await comparePrompts(dataset, runs[0].outputDir, runs[0].n);
  print(table(
    ['parallelism', 'wall s', 'runtime s', 'wall-runtime s', 'start-up s', 'requests s', 'tail s', 'req/s N/wall', 'req/s N/runtime', 'req/s requests', 'vs bare (wall)', 'vs bare (requests)', 'CPU ms/req', 'check', 'other load'],
    runs.map((r) => [
      String(r.parallelism), f3(r.wallS), f3(r.runtimeS), f3(r.outsideRuntimeS), f3(r.startupS), f3(r.requestPhaseS), f3(r.tailS),
      f0(r.rpsWall), f0(r.rpsRuntime), f0(r.rpsPhase), pct(r.ratioToBare), pct(r.ratioToBarePhase), f3(r.clientCpuMsPerRequest), checkRun(r), f2(r.otherCores),
    ]),
  ));
  print('  start-up = process start -> first request at the fixture; requests = first -> last request; tail = last request -> exit');
  for (const r of [oneSample, thousand]) {
    print(`  n=${f0(r.n)} @ p=64 (median of ${refs} by CPU): wall ${f3(r.wallS)} s, start-up ${f3(r.startupS)} s, tail ${f3(r.tailS)} s, client CPU ${f0(r.clientCpuMs)} ms, ${checkRun(r)}`);
  }
  print(
    `  client CPU per request at p=64: warm (CPU(10,000) - CPU(1,000)) / 9,000 = ${f3(warm)} ms; with JIT warm-up (CPU(10,000) - CPU(1)) / 9,999 = ${f3(marginal)} ms;` +
      ` bare undici (warm, in-process) ${f3(baseline?.find((b) => b.c === 64)?.cpuMsPerRequest)} ms`,
  );
  if (p64) print(`  fixture CPU at p=64: ${f0(p64.serverCpuUsPerRequest)} µs/request (≈ ${f0(p64.serverCpuUsPerRequest ? 1e6 / p64.serverCpuUsPerRequest : null)} req/s ceiling on its core)`);
  print(`  scores: ${[...new Set(runs.map((r) => r.score ?? 'n/a'))].join(' | ')} (1 = every response came back and was scored)`);
  print(`  harness request bodies = baseline bodies: ${promptsIdentical}`);
  printWarnings([...runs, oneSample, thousand]);
  return { runs, oneSample, thousand, warmCpuMsPerRequest: warm, marginalCpuMsPerRequest: marginal, promptsIdentical };
}

/** Checks the harness sent the baseline's bodies: its cache keys against keys of the bodies built here. */
async function comparePrompts(dataset: CustomDataset, outputDir: string, n: number): Promise<string> {
  const file = join(outputDir, 'cache', 'responses.jsonl');
  if (!existsSync(file)) return 'cache file missing';
  const sent = new Set(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => (JSON.parse(l) as { k: string }).k),
  );
  const bodies = await harnessBodies(dataset, n);
  const same = bodies.filter((b) => sent.has(requestKey('chat', b))).length;
  return `${same}/${n} cache keys match`;
}

export function harnessTargets(report: HarnessReport, baseline: BareResult[] | undefined): Target[] {
  const out: Target[] = [];
  const h64 = report.runs.find((r) => r.parallelism === 64);
  const b64 = baseline?.find((b) => b.c === 64);
  if (h64 && b64) {
    out.push({ target: `>= ${pct(TARGET.ratioToBare)} of bare undici @ c=64, end to end`, measured: `${pct(h64.ratioToBare)} (${f0(h64.rpsWall)} / ${f0(b64.rps)})`, met: atLeast(h64.ratioToBare, TARGET.ratioToBare) });
    out.push({ target: `>= ${pct(TARGET.ratioToBare)} of bare undici @ c=64, request phase`, measured: `${pct(h64.ratioToBarePhase)} (${f0(h64.rpsPhase)} / ${f0(b64.rps)})`, met: atLeast(h64.ratioToBarePhase, TARGET.ratioToBare) });
  }
  out.push({ target: `client CPU <= ${TARGET.cpuMsPerRequest} ms/request warm (custom @ p=64, 10k - 1k runs)`, measured: `${f3(report.warmCpuMsPerRequest)} ms`, met: atMost(report.warmCpuMsPerRequest, TARGET.cpuMsPerRequest) });
  out.push({ target: `client CPU <= ${TARGET.cpuMsPerRequest} ms/request (custom @ p=64, 10k - 1 runs, JIT warm-up included)`, measured: `${f3(report.marginalCpuMsPerRequest)} ms`, met: atMost(report.marginalCpuMsPerRequest, TARGET.cpuMsPerRequest) });
  return out;
}

/** No per-request TCP connections: the server saw at most `parallelism` connections per run. */
export function keepAliveTarget(runs: HarnessRun[]): Target[] {
  if (runs.length === 0) return [];
  const worst = runs.reduce((a, b) => (b.serverConnections / b.parallelism > a.serverConnections / a.parallelism ? b : a));
  return [{ target: 'no per-request TCP connections (connections <= parallelism)', measured: `worst: ${worst.serverConnections} for p=${worst.parallelism}, n=${f0(worst.n)}`, met: runs.every((r) => r.serverConnections <= r.parallelism) }];
}
