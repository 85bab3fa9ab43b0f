/**
 * Activities: the only place where evalflow does I/O. Built by `createActivities(deps)` so the worker
 * wires real backends and tests can inject their own. Every activity is idempotent: a retry after a
 * worker crash re-attaches to what is already running instead of starting it again.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ApplicationFailure, Context, heartbeat, log } from '@temporalio/activity';
import type { Backend } from '../backends/types.js';
import { exportLocal, exportRow } from '../exporters/local.js';
import { flattenMetrics, readResultsFile, ResultsFormatError } from '../harness/results-schema.js';
import type {
  ExportDestination,
  HarnessHandle,
  Progress,
  ResolvedEvaluationInput,
} from '../workflows/types.js';
import { probeEndpoint } from './endpoint.js';

export interface ActivityDeps {
  backends: { local: Backend };
  /** Where `host:`/`runtime:` env references and API keys are read (default: process.env). */
  env?: Record<string, string | undefined>;
  /** watchHarness poll period; the heartbeat goes out at least this often. */
  pollIntervalMs?: number;
}

export interface WatchResult {
  state: 'running' | 'exited' | 'lost';
  exitCode?: number;
  progress?: Progress;
}

export interface CollectedResults {
  resultsPath: string;
  samplesPath: string;
  metrics: Record<string, number>;
  samples: { total: number; scored: number; errors: number; cached: number };
  progress: Progress;
}

export function createActivities(deps: ActivityDeps) {
  const env = deps.env ?? process.env;
  const pollIntervalMs = deps.pollIntervalMs ?? 1000;
  const backendFor = (handle: { backend: 'local' }) => deps.backends[handle.backend];

  return {
    /** Waits until the endpoint answers HTTP (any status below 500), heartbeating meanwhile. */
    async prepareEndpoint(input: { url: string; apiKeyName: string | null; readinessTimeoutS: number }): Promise<{ readyAfterS: number }> {
      const started = Date.now();
      const deadline = started + input.readinessTimeoutS * 1000;
      const apiKey = input.apiKeyName ? env[input.apiKeyName] : undefined;
      let lastProblem = '';
      for (;;) {
        const problem = await probeEndpoint(input.url, apiKey);
        if (problem === null) return { readyAfterS: (Date.now() - started) / 1000 };
        if (problem !== lastProblem) log.info('endpoint not ready yet', { url: input.url, problem });
        lastProblem = problem;
        heartbeat({ waitingFor: input.url, problem });
        if (Date.now() >= deadline) {
          throw ApplicationFailure.nonRetryable(
            `endpoint ${input.url} was not ready within ${input.readinessTimeoutS} s (execution.endpoint_readiness_timeout): ${problem}`,
            'EndpointNotReady',
          );
        }
        await Context.current().sleep(Math.min(2000, Math.max(0, deadline - Date.now())));
      }
    },

    async launchHarness(input: { evaluation: ResolvedEvaluationInput; attempt: number }): Promise<HarnessHandle> {
      const ev = input.evaluation;
      if (ev.runtime !== 'process') {
        throw ApplicationFailure.nonRetryable(`runtime ${ev.runtime} is not supported by this worker yet (the Docker backend is the next milestone)`, 'UnsupportedRuntime');
      }
      const name = `evalflow-${ev.invocationId}.${ev.taskIndex}-a${input.attempt}`;
      const handle = await deps.backends[ev.backend].launch({
        name,
        jobDir: ev.jobDir,
        attempt: input.attempt,
        runConfig: ev.runConfig,
        env: resolveEnv(ev.env, env),
      });
      log.info('harness launched', { name, pid: handle.pid });
      return handle;
    },

    /**
     * Polls the harness until it ends or `returnAfterS` passes (then returns `running`, so the workflow
     * can record progress). Never launches anything: a retry on another worker simply re-attaches.
     */
    async watchHarness(input: { handle: HarnessHandle; returnAfterS: number }): Promise<WatchResult> {
      const backend = backendFor(input.handle);
      const until = Date.now() + input.returnAfterS * 1000;
      for (;;) {
        const status = await backend.poll(input.handle);
        heartbeat({ state: status.state, progress: status.progress });
        if (status.state !== 'running' || Date.now() >= until) return status;
        await Context.current().sleep(pollIntervalMs);
      }
    },

    async collectResults(input: { jobDir: string }): Promise<CollectedResults> {
      const artifacts = join(input.jobDir, 'artifacts');
      const resultsPath = join(artifacts, 'results.yml');
      if (!existsSync(resultsPath)) {
        throw ApplicationFailure.nonRetryable(`the harness wrote no ${resultsPath}; see ${input.jobDir}/logs/client_stdout.log`, 'ResultsMissing');
      }
      try {
        const results = readResultsFile(resultsPath);
        const task = Object.keys(results.results.tasks)[0] ?? 'results';
        const { total, scored, errors, cached } = results.samples;
        return {
          resultsPath,
          samplesPath: join(artifacts, 'nemo-evaluator-per-sample-outputs', `${task}.jsonl`),
          // Task-level scores only: the per-subset breakdown stays in the files and the exports.
          metrics: flattenMetrics(results.results, { groups: false }),
          samples: { total, scored, errors, cached },
          progress: { total, done: total, cached, errors },
        };
      } catch (err) {
        if (err instanceof ResultsFormatError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidResults');
        throw err;
      }
    },

    async exportResults(input: {
      invocationId: string;
      jobId: string;
      taskName: string;
      jobDir: string;
      model: string;
      destinations: ExportDestination[];
    }): Promise<string[]> {
      const row = exportRow(input);
      const written: string[] = [];
      for (const dest of input.destinations) {
        written.push(
          await exportLocal([row], {
            outputDir: dest.outputDir ?? dirname(input.jobDir),
            format: dest.format,
            filename: dest.outputFilename,
          }),
        );
      }
      return written;
    },

    /** Teardown: stops the harness if it still runs. Safe to call at any time, any number of times. */
    async stopHarness(input: { handle: HarnessHandle }): Promise<{ wasRunning: boolean }> {
      const wasRunning = await backendFor(input.handle).stop(input.handle);
      if (wasRunning) log.info('harness stopped', { name: input.handle.name });
      return { wasRunning };
    },
  };
}

/** Resolves env references on this host. Values stay in memory: never logged, never returned. */
export function resolveEnv(
  refs: ResolvedEvaluationInput['env'],
  env: Record<string, string | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, ref] of Object.entries(refs)) {
    if (ref.kind === 'lit') {
      out[name] = ref.value;
      continue;
    }
    const value = env[ref.name];
    if (value === undefined) {
      throw ApplicationFailure.nonRetryable(
        `env var ${name} = ${ref.kind}:${ref.name}, but ${ref.name} is not set where the worker runs`,
        'MissingEnvVar',
      );
    }
    out[name] = value;
  }
  return out;
}
