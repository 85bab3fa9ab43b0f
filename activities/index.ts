/**
 * Activities: the only place where evalflow does I/O. Built by `createActivities(deps)` so the worker
 * wires real executors and tests can inject their own. Every activity is idempotent: a retry after a
 * worker crash re-attaches to what is already running instead of starting it again.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ApplicationFailure, Context, heartbeat, log } from '@temporalio/activity';
import { executorFor } from '../backends/registry.js';
import type { Executor, ExecutorRegistry } from '../backends/types.js';
import type { HostIdentity } from '../backends/local/host.js';
import { EnvRefsSchema, resolveHostEnv } from '../core/env-refs.js';
import { PermanentError } from '../core/errors.js';
import type { ExecutorHandle } from '../core/executor.js';
import { hostTaskQueue, jobIdOf, launchName } from '../core/ids.js';
import type { PollResult } from '../core/outcome.js';
import type { Progress } from '../core/progress.js';
import { assertEnvAllowed, assertEnvRefsAllowed, assertLaunchAllowed, assertPathAllowed, workerPolicyFromEnv, type WorkerPolicy } from '../common/worker-policy.js';
import { ConfigError } from '../config/errors.js';
import { ExportDestinationInputSchema } from '../core/exports.js';
import { localExportDir, type LocalSettings } from '../exporters/local.js';
import { exporterFor, exportSettings } from '../exporters/registry.js';
import { ExportError, type ExportJob, type ExportOutcome } from '../exporters/types.js';
import { flattenMetrics, readResultsFile, ResultsFormatError } from '../harness/results-schema.js';
import type { ResolvedEvaluationInput, SampleCounts } from '../workflows/types.js';
import { probeEndpoint, probeHealth } from './endpoint.js';
import { createNightlyActivities } from './nightly.js';

export interface ActivityDeps {
  executors: ExecutorRegistry;
  /** This worker's host: handles of host-bound executors are routed to its task queue. */
  host: HostIdentity;
  /** Where `host:` env references and API keys are read (default: process.env). */
  env?: Record<string, string | undefined>;
  /** watchHarness poll period (after a quicker start, see FIRST_POLL_DELAY_MS); the heartbeat goes out at least this often. */
  pollIntervalMs?: number;
  /** What configs may read and write on this worker (default: from `env`, see common/worker-policy.ts). */
  policy?: WorkerPolicy;
}

export interface CollectedResults {
  resultsPath: string;
  samplesPath: string;
  metrics: Record<string, number>;
  /** Absent for a results.yml of upstream's harness containers, which does not count samples. */
  samples?: SampleCounts;
  progress?: Progress;
}

/**
 * watchHarness polls again after this, then doubles the delay up to the poll period: a short task's end is seen
 * within ~0.1 s instead of up to a whole period later, and a long one costs 3 extra polls per watch checkpoint.
 */
const FIRST_POLL_DELAY_MS = 100;

export function createActivities(deps: ActivityDeps) {
  const env = deps.env ?? process.env;
  const pollIntervalMs = deps.pollIntervalMs ?? 1000;
  const policy = deps.policy ?? workerPolicyFromEnv(env);
  const hostQueue = hostTaskQueue(deps.host.id);
  const forHandle = (raw: ExecutorHandle) => {
    const executor = executorFor(deps.executors, raw.executor);
    return { executor, handle: executor.parseHandle(raw) };
  };
  /** A handle as the workflow gets it: host-bound ones name the queue of this host's workers. */
  const routed = (executor: Executor, handle: ExecutorHandle): ExecutorHandle =>
    executor.hostBound ? { ...handle, taskQueue: hostQueue } : handle;
  const jobEnv = (ev: ResolvedEvaluationInput) => {
    assertEnvRefsAllowed(policy, ev.env);
    return resolveHostEnv(ev.env, env, `worker host ${deps.host.hostname}`);
  };

  return permanentErrorsAreFinal({
    ...createNightlyActivities({ env, policy, hostname: deps.host.hostname }),
    /**
     * Waits until the endpoint answers HTTP (any status below 500), heartbeating meanwhile. With a
     * deployed server, fails early (with the server's state) if the server ends while it is awaited.
     */
    async prepareEndpoint(input: {
      url: string;
      apiKeyName: string | null;
      readinessTimeoutS: number;
      server?: ExecutorHandle;
    }): Promise<{ readyAfterS: number }> {
      const started = Date.now();
      const deadline = started + input.readinessTimeoutS * 1000;
      if (input.apiKeyName) assertEnvAllowed(policy, input.apiKeyName, 'target.api_endpoint.api_key_name');
      const apiKey = input.apiKeyName ? env[input.apiKeyName] : undefined;
      const server = input.server ? forHandle(input.server) : undefined;
      // A deployed server is ready when its health URL answers 200 (as upstream); else the endpoint answers at all.
      const health = server?.handle.healthUrl;
      const awaited = health ?? input.url;
      let lastProblem = '';
      for (;;) {
        const problem = health ? await probeHealth(health) : await probeEndpoint(input.url, apiKey);
        if (problem === null) return { readyAfterS: (Date.now() - started) / 1000 };
        if (problem !== lastProblem) log.info('endpoint not ready yet', { url: awaited, problem });
        lastProblem = problem;
        if (server) {
          const { outcome } = await server.executor.poll(server.handle);
          if (outcome.kind !== 'running' && outcome.kind !== 'queued') {
            throw ApplicationFailure.nonRetryable(
              `the model server ${server.handle.display} ended before ${awaited} was ready (${outcome.kind}${'reason' in outcome && outcome.reason ? `: ${outcome.reason}` : ''}); last answer: ${problem}; see ${server.handle.jobDir}/logs/server_stdout.log`,
              'DeploymentFailed',
            );
          }
        }
        heartbeat({ waitingFor: awaited, problem });
        if (Date.now() >= deadline) {
          throw ApplicationFailure.nonRetryable(
            server && health
              ? `the model server ${server.handle.display} was not ready within ${input.readinessTimeoutS} s (execution.endpoint_readiness_timeout): its health check ${health} last answered ${problem}; see ${server.handle.jobDir}/logs/server_stdout.log`
              : `endpoint ${input.url} was not ready within ${input.readinessTimeoutS} s (execution.endpoint_readiness_timeout): ${problem}`,
            server ? 'DeploymentNotReady' : 'EndpointNotReady',
          );
        }
        await Context.current().sleep(Math.min(2000, Math.max(0, deadline - Date.now())));
      }
    },

    /** Starts (or adopts) the job's model server; null when the executor runs it inside the harness launch. */
    async deployServer(input: { evaluation: ResolvedEvaluationInput }): Promise<ExecutorHandle | null> {
      const ev = input.evaluation;
      const executor = executorFor(deps.executors, ev.executor.kind);
      const { deployment } = ev;
      if (!deployment) return null;
      const deploy = executor.deploy?.bind(executor);
      if (!deploy) {
        throw ApplicationFailure.nonRetryable(`the ${ev.executor.kind} executor cannot start a '${deployment.type}' deployment`, 'UnsupportedDeployment');
      }
      const jobId = jobIdOf(ev.invocationId, ev.taskIndex);
      // The server's env is its own (deployment.env_vars over env_vars, as upstream), not the task's.
      const refs = EnvRefsSchema.parse(deployment.env ?? {});
      assertEnvRefsAllowed(policy, refs);
      const { values, runtime } = resolveHostEnv(refs, env, `worker host ${deps.host.hostname}`);
      const handle = await deploy({
          jobId,
          jobDir: ev.jobDir,
          name: `${launchName(jobId, 0)}-server`,
          executor: ev.executor,
          deployment,
          env: values,
          runtimeEnv: runtime,
        });
      if (!handle) return null;
      log.info('model server started', { jobId, server: handle.display });
      return routed(executor, handle);
    },

    async launchHarness(input: { evaluation: ResolvedEvaluationInput; attempt: number }): Promise<ExecutorHandle> {
      const ev = input.evaluation;
      const executor = executorFor(deps.executors, ev.executor.kind);
      const jobId = jobIdOf(ev.invocationId, ev.taskIndex);
      const { values, runtime } = jobEnv(ev);
      assertLaunchAllowed(policy, {
        jobDir: ev.jobDir,
        runConfig: ev.runConfig,
        // Only a harness process on this host sees the run config's paths as they are written.
        harnessOnThisHost: ev.executor.kind === 'process',
        apiKeyName: ev.endpoint.apiKeyName,
        datasetDirEnv: values.NEMO_EVALUATOR_DATASET_DIR ?? env.NEMO_EVALUATOR_DATASET_DIR,
      });
      const handle = await executor.launch({
          jobId,
          jobDir: ev.jobDir,
          attempt: input.attempt,
          name: launchName(jobId, input.attempt),
          executor: ev.executor,
          builtinHarness: ev.builtinHarness,
          runConfig: ev.runConfig,
          env: values,
          runtimeEnv: runtime,
        });
      log.info('harness launched', { jobId, attempt: input.attempt, where: handle.display });
      return routed(executor, handle);
    },

    /**
     * Polls the harness until it ends or `returnAfterS` passes (then returns its current state, so the
     * workflow can record progress). Never launches anything: a retry on another worker re-attaches.
     */
    async watchHarness(input: { handle: ExecutorHandle; returnAfterS: number }): Promise<PollResult> {
      const { executor, handle } = forHandle(input.handle);
      const until = Date.now() + input.returnAfterS * 1000;
      let delay = Math.min(FIRST_POLL_DELAY_MS, pollIntervalMs);
      for (;;) {
        const result = await executor.poll(handle);
        heartbeat({ state: result.outcome.kind, progress: result.progress });
        if ((result.outcome.kind !== 'running' && result.outcome.kind !== 'queued') || Date.now() >= until) return result;
        // Context.sleep ends the wait with a CancelledFailure when the activity is cancelled.
        await (executor.untilChange ? Promise.race([executor.untilChange(handle, delay), Context.current().sleep(delay)]) : Context.current().sleep(delay));
        delay = Math.min(delay * 2, pollIntervalMs);
      }
    },

    /** Brings the artifacts home (remote executors) and reads results.yml. */
    async collectResults(input: { handle: ExecutorHandle; builtinHarness: boolean }): Promise<CollectedResults> {
      const { executor, handle } = forHandle(input.handle);
      assertPathAllowed(policy, 'output', handle.jobDir, 'execution.output_dir');
      await executor.fetchArtifacts(handle);
      const artifacts = join(handle.jobDir, 'artifacts');
      const resultsPath = join(artifacts, 'results.yml');
      if (!existsSync(resultsPath)) {
        throw ApplicationFailure.nonRetryable(`the harness wrote no ${resultsPath}; see ${handle.jobDir}/logs/client_stdout.log`, 'ResultsMissing');
      }
      try {
        const results = readResultsFile(resultsPath);
        const task = Object.keys(results.results.tasks)[0] ?? 'results';
        const counts = results.samples;
        return {
          resultsPath,
          samplesPath: join(artifacts, 'nemo-evaluator-per-sample-outputs', `${task}.jsonl`),
          // Task-level scores only: the per-subset breakdown stays in the files and the exports.
          metrics: flattenMetrics(results.results, { groups: false }),
          ...(counts
            ? {
                samples: { total: counts.total, scored: counts.scored, errors: counts.errors, cached: counts.cached },
                progress: { total: counts.total, done: counts.total, cached: counts.cached, errors: counts.errors },
              }
            : {}),
        };
      } catch (err) {
        if (err instanceof ResultsFormatError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidResults');
        throw err;
      }
    },

    /**
     * Exports one finished job to each destination through its exporter (exporters/registry.ts).
     * Idempotent: every exporter finds a job exported before by its job id and updates it in place.
     */
    async exportResults(input: {
      invocationId: string;
      jobId: string;
      taskName: string;
      jobDir: string;
      model: string;
      /** The job's executor kind (`process`, `docker`, `slurm`); absent from evalflow 0.1 workflows. */
      executor?: string;
      destinations: unknown[];
    }): Promise<ExportOutcome[]> {
      const job: ExportJob = { ...input, executor: upstreamExecutorWord(input.executor) };
      const outcomes: ExportOutcome[] = [];
      for (const raw of input.destinations) {
        const parsed = ExportDestinationInputSchema.safeParse(raw);
        if (!parsed.success) throw ApplicationFailure.nonRetryable(`invalid export destination: ${parsed.error.issues[0]?.message ?? 'invalid'}`, 'InvalidExportSettings');
        const dest = parsed.data;
        assertEnvRefsAllowed(policy, dest.env);
        const [settings, exporterEnv] = nonRetryableIfBadInput(() => [
          exportSettings(dest.kind, dest.settings),
          { ...env, ...resolveHostEnv(dest.env, env, `worker host ${deps.host.hostname}`).values },
        ]);
        if (dest.kind === 'local') {
          const local = settings as LocalSettings;
          assertPathAllowed(policy, 'output', localExportDir(local, input.jobDir), local.output_dir ? 'export.local.output_dir' : 'execution.output_dir');
        }
        let results: ExportOutcome[];
        try {
          results = await exporterFor(dest.kind).export([job], settings, { env: exporterEnv });
        } catch (err) {
          if (err instanceof ExportError && err.permanent) throw ApplicationFailure.nonRetryable(`export to ${dest.kind}: ${err.message}`, 'ExportFailed');
          throw err;
        }
        for (const outcome of results) {
          if (outcome.status === 'failed') throw ApplicationFailure.retryable(`export of ${outcome.jobId} to ${dest.kind} failed: ${outcome.message ?? outcome.where}`, 'ExportFailed');
          log.info('exported', { jobId: outcome.jobId, destination: dest.kind, status: outcome.status, where: outcome.where });
        }
        outcomes.push(...results);
      }
      return outcomes;
    },

    /**
     * Teardown: stops every handle the workflow holds, then whatever else of the job the executor finds
     * (a launch cut short by a cancellation). Safe to call at any time, any number of times.
     */
    async teardownJob(input: { evaluation: ResolvedEvaluationInput; handles: ExecutorHandle[] }): Promise<{ stopped: number }> {
      const ev = input.evaluation;
      let stopped = 0;
      // Harnesses first (newest first), the model server last: the harness may still be sending to it.
      for (const raw of [...input.handles].reverse().sort((a, b) => (a.role === b.role ? 0 : a.role === 'server' ? 1 : -1))) {
        const { executor, handle } = forHandle(raw);
        if (await executor.stop(handle)) {
          stopped++;
          log.info('stopped', { what: handle.display });
        }
      }
      stopped += await executorFor(deps.executors, ev.executor.kind).stopJob({ jobId: jobIdOf(ev.invocationId, ev.taskIndex), jobDir: ev.jobDir, executor: ev.executor });
      return { stopped };
    },
  });
}

/** Bad export settings do not get better by retrying (a missing variable is a PermanentError already). */
function nonRetryableIfBadInput<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ConfigError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidExportSettings');
    throw err;
  }
}

/** Upstream's executor word for exports (`local` for processes and containers on the worker's host). */
function upstreamExecutorWord(kind: string | undefined): string {
  return kind === undefined || kind === 'process' || kind === 'docker' ? 'local' : kind;
}

/**
 * Wraps every activity so that a PermanentError (a refused host key, a missing variable, …) fails it at
 * once, with its type, instead of being retried by the activity's retry policy.
 */
function permanentErrorsAreFinal<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] = async (...args: never[]) => {
      try {
        return await fn(...args);
      } catch (err) {
        if (err instanceof PermanentError) throw ApplicationFailure.nonRetryable(err.message, err.type);
        throw err;
      }
    };
  }
  return wrapped as T;
}
