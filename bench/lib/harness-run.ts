/** One `run_eval` run of the built-in harness against the fixture, measured as a client run. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURE_MODEL } from '../../common/fixture-endpoint.js';
import { measureClient, stderrLines, type ClientRun } from './client-run.js';
import type { BenchContext } from './context.js';
import type { Fixture } from './fixture.js';
import { print } from './format.js';

export interface HarnessTask {
  type: 'custom' | 'gsm8k';
  /** `params.extra` of the run config (dataset_dir included). */
  extra: Record<string, unknown>;
}

export interface HarnessRun extends ClientRun {
  task: string;
  parallelism: number;
  /** The harness's own `evaluation.runtime_seconds`. */
  runtimeS: number | null;
  /** wall − runtime_seconds: node start, imports, result files, exit. */
  outsideRuntimeS: number | null;
  rpsRuntime: number | null;
  requestsSent: number | null;
  failedSamples: number | null;
  /** The score line run_eval printed. */
  score: string | null;
  /** Distinct stderr lines of the harness (warnings), shortened. */
  warnings: string[];
  outputDir: string;
}

/** Longest a single harness run may take before the bench kills it. */
const HARNESS_TIMEOUT_MS = 300_000;

let runSeq = 0;

/** The run config of `task` on `n` samples at `parallelism` against the fixture, written next to `outputDir`. */
export function writeHarnessConfig(fixture: Fixture, task: HarnessTask, n: number, parallelism: number, outputDir: string): string {
  const runConfig = {
    config: {
      type: task.type,
      output_dir: outputDir,
      params: { limit_samples: n, parallelism, max_retries: 2, request_timeout: 60, temperature: 0, extra: task.extra },
    },
    target: { api_endpoint: { url: `${fixture.url}/v1/chat/completions`, model_id: FIXTURE_MODEL, type: 'chat' } },
  };
  const configFile = `${outputDir}.yml`;
  writeFileSync(configFile, JSON.stringify(runConfig, null, 2)); // JSON is YAML
  return configFile;
}

/** `run_eval` on `n` samples at `parallelism`, with a fresh output_dir (the response cache would answer it otherwise). */
export async function runHarness(ctx: BenchContext, fixture: Fixture, task: HarnessTask, n: number, parallelism: number): Promise<HarnessRun> {
  const outputDir = join(ctx.scratch, `run-${++runSeq}-${task.type}-p${parallelism}-n${n}`);
  const configFile = writeHarnessConfig(fixture, task, n, parallelism, outputDir);
  const { figures: run, stdout, stderr } = await measureClient(ctx.pinning, fixture, ctx.scratch, {
    argv: [process.execPath, ctx.cli, 'run_eval', '--run_config', configFile],
    n,
    timeoutMs: HARNESS_TIMEOUT_MS,
  });
  let runtimeS: number | null = null;
  let requestsSent: number | null = null;
  let failedSamples: number | null = null;
  const metricsFile = join(outputDir, 'eval_factory_metrics.json');
  if (existsSync(metricsFile)) {
    const m = JSON.parse(readFileSync(metricsFile, 'utf8')) as {
      evaluation?: { runtime_seconds?: number };
      response_stats?: { requests_sent?: number; failed_samples?: number };
    };
    runtimeS = m.evaluation?.runtime_seconds ?? null;
    requestsSent = m.response_stats?.requests_sent ?? null;
    failedSamples = m.response_stats?.failed_samples ?? null;
  }
  if (run.exitCode !== 0) process.stderr.write(`  ! run_eval ${task.type} p=${parallelism} n=${n} exited ${run.exitCode}\n${stderr.slice(-2000)}\n`);
  return {
    ...run,
    task: task.type,
    parallelism,
    runtimeS,
    outsideRuntimeS: runtimeS === null ? null : run.wallS - runtimeS,
    rpsRuntime: runtimeS === null || runtimeS <= 0 ? null : n / runtimeS,
    requestsSent,
    failedSamples,
    score: stdout.split('\n').find((l) => /^\S+ \S+: /.test(l))?.trim() ?? null,
    warnings: stderrLines(stderr),
    outputDir,
  };
}

/** A harness run's server-side check: every sample sent exactly once, none failed, a keep-alive pool. */
export function checkRun(r: HarnessRun): string {
  const problems: string[] = [];
  if (r.exitCode !== 0) problems.push(`exit ${r.exitCode}`);
  if (r.serverRequests !== r.n) problems.push(`server saw ${r.serverRequests} requests`);
  if (r.failedSamples !== 0) problems.push(`${r.failedSamples ?? '?'} failed`);
  if (r.serverConnections > r.parallelism) problems.push(`${r.serverConnections} connections`);
  return problems.length === 0 ? 'ok' : problems.join(', ');
}

/** Warnings and errors the harness printed, once per distinct line, with the runs that printed them. */
export function printWarnings(runs: HarnessRun[]): void {
  const seen = new Map<string, string[]>();
  for (const r of runs) for (const l of r.warnings) seen.set(l, [...(seen.get(l) ?? []), `p=${r.parallelism}`]);
  for (const [line, where] of seen) print(`  harness stderr (${where.join(', ')}): ${line}`);
}
