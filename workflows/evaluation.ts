/**
 * EvaluationWorkflow: one benchmark task, end to end. deployServer (when the job starts its own model
 * server) → prepareEndpoint → launchHarness → watchHarness (re-attaches by handle) → on an unfinished end,
 * relaunch within the budgets of relaunch-policy.ts (the harness resumes from its response cache) →
 * collectResults → exportResults, and teardownJob on every exit path, in a non-cancellable scope.
 *
 * Executors are opaque here: handles are JSON that the workflow passes back to activities. A handle of a
 * host-bound executor (a local process or container) names its host's task queue, and every later
 * activity of the job runs there.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';
import { EXECUTOR_TIMING, type ExecutorHandle } from '../core/executor.js';
import { jobIdOf } from '../core/ids.js';
import { isActive, type PollResult } from '../core/outcome.js';
import type { Progress } from '../core/progress.js';
import { SEARCH_ATTRIBUTES } from '../core/search-attributes.js';
import { evaluationWorkflowV1 } from './legacy/evaluation-v1.js';
import { taskStageSignal, taskStatusQuery } from './messages.js';
import { decideAfterEnd, type RelaunchState } from './relaunch-policy.js';
import {
  EvaluationInputSchema,
  type EvaluationResult,
  type ResolvedEvaluationInput,
  type SampleCounts,
  type Stage,
  type TaskFailureDetails,
  type TaskStatus,
} from './types.js';
import { parseWorkflowInput } from './validate.js';
import { watchCheckpointSeconds } from './watch-policy.js';

type Activities = ReturnType<typeof createActivities>;

/** Executions started before executors (evalflow 0.1) replay through the frozen v1 code. */
export const EXECUTORS_PATCH = 'evalflow-v2-executors';

export async function EvaluationWorkflow(rawInput: unknown): Promise<EvaluationResult> {
  if (!patched(EXECUTORS_PATCH)) return (await evaluationWorkflowV1(rawInput)) as EvaluationResult;
  const input = parseWorkflowInput(EvaluationInputSchema, rawInput);
  const jobId = jobIdOf(input.invocationId, input.taskIndex);
  const status: TaskStatus = {
    jobId,
    jobName: input.jobName,
    taskName: input.taskName,
    jobDir: input.jobDir,
    stage: 'pending',
    attempt: 0,
  };
  setHandler(taskStatusQuery, () => status);
  const acts = new JobActivities(input);

  const setStage = (stage: Stage, change: Partial<TaskStatus> = {}) => {
    Object.assign(status, change, { stage });
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.stage, value: stage }]);
    log.info('stage', { jobId, stage, attempt: status.attempt });
    setCurrentDetails(describe(status));
    notifyParent(status);
  };
  const setProgress = (progress: Progress) => {
    status.progress = progress;
    setCurrentDetails(describe(status));
  };

  const handles: ExecutorHandle[] = [];
  let samples: SampleCounts | undefined;
  try {
    if (input.deployment) {
      setStage('deploying');
      const server = await launchUninterrupted(() => acts.onJobHost().deployServer({ evaluation: input }));
      if (server) {
        handles.push(server);
        acts.bindToHost(server);
        status.server = server;
      }
    }
    // A server the executor runs inside the harness launch (a Slurm job) is awaited there, not from here.
    const serverInLaunch = input.deployment !== undefined && status.server === undefined;
    if (!serverInLaunch) {
      setStage('preparing_endpoint');
      await acts.onJobHost().prepareEndpoint({
        url: input.endpoint.url,
        apiKeyName: input.endpoint.apiKeyName ?? null,
        readinessTimeoutS: input.endpoint.readinessTimeoutS,
        ...(status.server ? { server: status.server } : {}),
      });
    }

    let relaunch: RelaunchState = { unproductiveEnds: 0, walltimeUsedS: 0 };
    let failAfterCollect: { type: string; reason: string } | undefined;
    for (let attempt = input.attemptOffset + 1; ; attempt++) {
      status.attempt = attempt;
      setStage('launching');
      const handle = await launchUninterrupted(() => acts.launchHarness(input, attempt));
      handles.push(handle);
      acts.bindToHost(handle);
      setStage('running', { handle });

      const doneBefore = status.progress?.done ?? 0;
      const launchedAt = Date.now();
      const end = await watchUntilEnd(acts, handle, (result) => {
        if (result.progress) setProgress(result.progress);
        const stage = result.outcome.kind === 'queued' ? 'queued' : 'running';
        if (stage !== status.stage) setStage(stage);
      });
      const decision = decideAfterEnd(end.outcome, {
        madeProgress: (status.progress?.done ?? 0) > doneBefore,
        launchWalltimeS: end.elapsedS ?? (Date.now() - launchedAt) / 1000,
        state: relaunch,
        budget: { maxAttempts: input.limits.maxAttempts, ...(input.limits.maxWalltimeS ? { maxWalltimeS: input.limits.maxWalltimeS } : {}) },
      });
      if (decision.action === 'collect') break;
      if (decision.action === 'collectThenFail') {
        failAfterCollect = decision;
        break;
      }
      if (decision.action === 'fail') {
        throw ApplicationFailure.nonRetryable(`${decision.reason}; see ${input.jobDir}/logs/client_stdout.log`, decision.type);
      }
      relaunch = decision.state;
      log.warn('relaunching the harness; finished samples come from its response cache', { jobId, why: decision.why, attempt, delayS: decision.delayS });
      await sleep(decision.delayS * 1000);
    }

    setStage('collecting');
    const handle = handles[handles.length - 1] as ExecutorHandle;
    const collected = await acts.onJobHost().collectResults({ handle, builtinHarness: input.builtinHarness });
    samples = collected.samples;
    Object.assign(status, { metrics: collected.metrics, progress: collected.progress });
    if (failAfterCollect) {
      throw ApplicationFailure.nonRetryable(
        `${collected.samples?.errors ?? 'some'} of ${collected.samples?.total ?? 'the'} samples failed after retries, more than config.params.extra.max_error_rate allows (${failAfterCollect.reason}); per-sample errors in ${collected.samplesPath}`,
        failAfterCollect.type,
      );
    }

    if (input.exports.length > 0) {
      setStage('exporting');
      await acts.exporting().exportResults({
        invocationId: input.invocationId,
        jobId,
        taskName: input.taskName,
        jobDir: input.jobDir,
        model: input.endpoint.modelId,
        executor: input.executor.kind,
        destinations: input.exports,
      });
    }
    setStage('succeeded');
    return {
      jobId,
      jobName: input.jobName,
      taskName: input.taskName,
      jobDir: input.jobDir,
      resultsPath: collected.resultsPath,
      attempts: status.attempt,
      metrics: collected.metrics,
      ...(collected.samples ? { samples: collected.samples } : {}),
    };
  } catch (err) {
    const cancelled = isCancellation(err);
    const message = errorMessage(err);
    await CancellationScope.nonCancellable(async () => setStage(cancelled ? 'cancelled' : 'failed', { error: message }));
    if (cancelled) throw err;
    const details: TaskFailureDetails = {
      jobId,
      stage: 'failed',
      attempts: status.attempt,
      ...(status.metrics ? { metrics: status.metrics } : {}),
      ...(samples ? { samples } : {}),
    };
    throw ApplicationFailure.create({
      nonRetryable: true,
      message,
      type: failureType(err),
      details: [details],
    });
  } finally {
    await CancellationScope.nonCancellable(() => acts.teardown(input, handles));
  }
}

/**
 * A launch runs to completion even when the workflow is cancelled meanwhile: its handle is what teardown
 * needs to stop what the launch started. The cancellation surfaces at the next await.
 */
function launchUninterrupted<T>(launch: () => Promise<T>): Promise<T> {
  return CancellationScope.nonCancellable(launch);
}

/** Calls watchHarness in checkpoints until the launch ends; each call re-attaches by handle. */
async function watchUntilEnd(acts: JobActivities, handle: ExecutorHandle, onPoll: (r: PollResult) => void): Promise<PollResult> {
  const started = Date.now();
  for (;;) {
    const returnAfterS = watchCheckpointSeconds((Date.now() - started) / 1000);
    const result = await acts.watch(handle, returnAfterS);
    onPoll(result);
    if (!isActive(result.outcome)) return result;
  }
}

/**
 * The job's activities with their options and routing: on the shared queue until something of the job
 * runs on a host, then on that host's queue. A host whose workers are gone for longer than
 * `hostWaitS` counts as lost (its processes and containers went with it).
 */
class JobActivities {
  private hostQueue: string | undefined;
  private readonly heartbeatTimeoutS: number;
  private readonly hostWaitS: number;

  constructor(private readonly input: ResolvedEvaluationInput) {
    this.heartbeatTimeoutS = input.limits.heartbeatTimeoutS;
    this.hostWaitS = Math.max(60, 5 * this.heartbeatTimeoutS);
  }

  bindToHost(handle: ExecutorHandle): void {
    if (handle.taskQueue) this.hostQueue = handle.taskQueue;
  }

  /** Short activities (endpoint wait, deploy, collect, export), on the job's host once it has one. */
  onJobHost(): Activities {
    return proxyActivities<Activities>({
      ...(this.hostQueue ? { taskQueue: this.hostQueue, scheduleToStartTimeout: `${this.hostWaitS} seconds` } : {}),
      // prepareEndpoint waits up to the readiness timeout itself and heartbeats meanwhile.
      startToCloseTimeout: `${this.input.endpoint.readinessTimeoutS + EXECUTOR_TIMING[this.input.executor.kind].launchTimeoutS} seconds`,
      heartbeatTimeout: `${this.heartbeatTimeoutS} seconds`,
      retry: { maximumAttempts: 5, initialInterval: '1 second', maximumInterval: '30 seconds' },
    });
  }

  /** Exports, with timeouts of their own: an upload to a tracking server is neither a launch nor a probe. */
  exporting(): Activities {
    return proxyActivities<Activities>({
      ...(this.hostQueue ? { taskQueue: this.hostQueue, scheduleToStartTimeout: `${this.hostWaitS} seconds` } : {}),
      startToCloseTimeout: '10 minutes',
      retry: { maximumAttempts: 5, initialInterval: '5 seconds', maximumInterval: '1 minute' },
    });
  }

  async launchHarness(evaluation: ResolvedEvaluationInput, attempt: number): Promise<ExecutorHandle> {
    const launch = (queue: string | undefined) =>
      proxyActivities<Activities>({
        ...(queue ? { taskQueue: queue, scheduleToStartTimeout: `${this.hostWaitS} seconds` } : {}),
        startToCloseTimeout: `${EXECUTOR_TIMING[evaluation.executor.kind].launchTimeoutS} seconds`,
        heartbeatTimeout: `${this.heartbeatTimeoutS} seconds`,
        retry: { maximumAttempts: 5, initialInterval: '1 second', maximumInterval: '30 seconds' },
      }).launchHarness({ evaluation, attempt });
    if (!this.hostQueue) return launch(undefined);
    try {
      return await launch(this.hostQueue);
    } catch (err) {
      if (!isScheduleToStartTimeout(err)) throw err;
      log.warn('the job host has no worker; launching elsewhere', { hostQueue: this.hostQueue });
      this.hostQueue = undefined;
      return launch(undefined);
    }
  }

  async watch(handle: ExecutorHandle, returnAfterS: number): Promise<PollResult> {
    const acts = proxyActivities<Activities>({
      ...(handle.taskQueue ? { taskQueue: handle.taskQueue, scheduleToStartTimeout: `${this.hostWaitS} seconds` } : {}),
      startToCloseTimeout: `${returnAfterS + 600} seconds`,
      heartbeatTimeout: `${this.heartbeatTimeoutS} seconds`,
      // A dead worker shows up as a heartbeat timeout; the retry re-attaches from another worker.
      retry: { maximumAttempts: 50, initialInterval: '1 second', maximumInterval: '1 minute' },
    });
    try {
      return await acts.watchHarness({ handle, returnAfterS });
    } catch (err) {
      if (!isScheduleToStartTimeout(err)) throw err;
      return { outcome: { kind: 'lost', reason: `no worker on its host (${handle.taskQueue}) for ${this.hostWaitS} s` } };
    }
  }

  /** Stops everything of the job; a host that is gone took its processes with it. */
  async teardown(evaluation: ResolvedEvaluationInput, handles: ExecutorHandle[]): Promise<void> {
    const queue = this.hostQueue;
    try {
      await proxyActivities<Activities>({
        ...(queue ? { taskQueue: queue, scheduleToStartTimeout: `${this.hostWaitS} seconds` } : {}),
        startToCloseTimeout: '5 minutes',
        retry: { maximumAttempts: 5, initialInterval: '1 second', maximumInterval: '30 seconds' },
      }).teardownJob({ evaluation, handles });
    } catch (err) {
      if (!isScheduleToStartTimeout(err)) throw err;
      log.warn('teardown skipped: the job host has no worker', { hostQueue: queue });
    }
  }
}

function isScheduleToStartTimeout(err: unknown): boolean {
  return err instanceof ActivityFailure && err.cause instanceof TimeoutFailure && err.cause.timeoutType === 'SCHEDULE_TO_START';
}

function notifyParent(status: TaskStatus): void {
  const parent = workflowInfo().parent;
  if (!parent) return;
  getExternalWorkflowHandle(parent.workflowId, parent.runId)
    .signal(taskStageSignal, { jobId: status.jobId, stage: status.stage, attempt: status.attempt, ...(status.handle ? { handle: status.handle } : {}) })
    .catch((err: unknown) => log.warn('could not notify the invocation workflow', { error: errorMessage(err) }));
}

function describe(status: TaskStatus): string {
  const progress = status.progress ? ` ${status.progress.done}/${status.progress.total}` : '';
  const where = status.handle ? ` (${status.handle.display})` : '';
  return `**${status.jobName}** (${status.taskName}): ${status.stage}${progress}, attempt ${status.attempt}${where}`;
}

/** The type of the innermost ApplicationFailure (an activity's `EndpointNotReady`, our `HarnessFailed`, …). */
function failureType(err: unknown): string {
  let type = 'TaskFailed';
  for (let e: unknown = err; e instanceof Error; e = (e as { cause?: unknown }).cause) {
    if (e instanceof ApplicationFailure && e.type) type = e.type;
  }
  return type;
}

function errorMessage(err: unknown): string {
  // An activity's own error, without the SDK's wrapper ("Activity task failed") in front.
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) return errorMessage(err.cause);
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error && cause.message !== err.message ? `${err.message}: ${cause.message}` : err.message;
  }
  return String(err);
}
