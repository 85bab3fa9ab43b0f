/**
 * Measurement: 1,000 GSM8K samples (the real task, ../shared/datasets) at parallelism 64 end to end,
 * and a 1-sample run for the fixed cost: wall, runtime_seconds, start-up, request phase, tail, client
 * CPU per request. The peers' figures for the same prompts come from bench/peers.ts.
 * Run by bench/throughput.ts (`--only gsm8k`).
 */
import type { BenchContext } from './lib/context.js';
import type { Fixture } from './lib/fixture.js';
import { atMost, f0, f2, f3, print, table, type Target } from './lib/format.js';
import { checkRun, printWarnings, runHarness, type HarnessRun, type HarnessTask } from './lib/harness-run.js';
import { medianRun } from './lib/stats.js';

const N_GSM8K = 1_000;
const TARGET_STARTUP_S = 0.3;

export interface Gsm8kReport {
  run: HarnessRun;
  oneSample: HarnessRun;
  /** (CPU(1,000) − CPU(1)) / 999: JIT warm-up included. */
  marginalCpuMsPerRequest: number | null;
}

export function gsm8kTask(datasetsDir: string): HarnessTask {
  return { type: 'gsm8k', extra: { dataset_dir: datasetsDir } };
}

export async function measureGsm8k(ctx: BenchContext, fixture: Fixture): Promise<Gsm8kReport> {
  print(`\n== GSM8K end to end: ${f0(N_GSM8K)} samples at parallelism 64 (peers on the same prompts: bench/peers.ts)`);
  const task = gsm8kTask(ctx.datasetsDir);
  const oneSample = await medianRun(Math.max(3, ctx.repeat), (x: HarnessRun) => x.clientCpuMs ?? 0, () => runHarness(ctx, fixture, task, 1, 64));
  const run = await medianRun(ctx.repeat, (x: HarnessRun) => x.wallS, () => runHarness(ctx, fixture, task, N_GSM8K, 64));
  const marginal = run.clientCpuMs !== null && oneSample.clientCpuMs !== null ? (run.clientCpuMs - oneSample.clientCpuMs) / (run.n - oneSample.n) : null;
  print(table(
    ['run', 'wall s', 'runtime s', 'wall-runtime s', 'start-up s', 'requests s', 'tail s', 'client CPU ms', 'CPU ms/req (total)', 'check', 'other load'],
    [oneSample, run].map((r) => [
      `n=${r.n}`, f3(r.wallS), f3(r.runtimeS), f3(r.outsideRuntimeS), f3(r.startupS), f3(r.requestPhaseS), f3(r.tailS), f0(r.clientCpuMs),
      f3(r.clientCpuMsPerRequest), checkRun(r), f2(r.otherCores),
    ]),
  ));
  print(`  client CPU per request, (CPU(1,000) - CPU(1)) / 999: ${f3(marginal)} ms (includes JIT warm-up)`);
  print(`  ${run.score ?? 'no score line'} (the fixture does not know the answers)`);
  printWarnings([oneSample, run]);
  return { run, oneSample, marginalCpuMsPerRequest: marginal };
}

export function gsm8kTargets(report: Gsm8kReport): Target[] {
  const { run } = report;
  return [
    { target: `GSM8K 1,000 @ p=64: start-up (process start -> 1st request) <= ${TARGET_STARTUP_S} s`, measured: `${f3(run.startupS)} s`, met: atMost(run.startupS, TARGET_STARTUP_S) },
    { target: 'client CPU <= 0.1 ms/request (GSM8K 1,000 - 1, cold JIT included)', measured: `${f3(report.marginalCpuMsPerRequest)} ms`, met: atMost(report.marginalCpuMsPerRequest, 0.1) },
  ];
}
