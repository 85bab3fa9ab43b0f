/**
 * Frozen v1 of EvaluationWorkflow (evalflow 0.1): kept only so that executions started by 0.1 replay
 * deterministically (the current workflow branches here when the `evalflow-v2` patch marker is absent).
 * Do not change. Original summary: one benchmark task, end to end. prepareEndpoint → launchHarness → watchHarness
 * (re-attaches by handle; relaunches a lost harness, which resumes from its response cache) →
 * collectResults → exportResults, with the harness always stopped in a non-cancellable scope.
 */
import {
  ApplicationFailure,
  CancellationScope,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  EvaluationInputSchema,
  SEARCH_ATTRIBUTES,
  watchCheckpointSeconds,
  type EvaluationResult,
  type HarnessHandle,
  type ResolvedEvaluationInput,
  type Stage,
  type TaskStatus,
  type TaskUpdate,
  type V1Activities,
} from './types-v1.js';
import { taskStatusQuery, taskUpdateSignal } from './messages-v1.js';
import { parseWorkflowInput } from '../validate.js';

type Activities = V1Activities;

/** Harness exit codes (harness/cli.ts) that a relaunch cannot fix. */
const EXIT_CONFIG = 2;
const EXIT_TOO_MANY_ERRORS = 3;

export async function evaluationWorkflowV1(rawInput: unknown): Promise<EvaluationResult> {
  const input = parseWorkflowInput(EvaluationInputSchema, rawInput);
  const jobId = `${input.invocationId}.${input.taskIndex}`;
  const status: TaskStatus = {
    jobId,
    jobName: input.jobName,
    taskName: input.taskName,
    jobDir: input.jobDir,
    stage: 'pending',
    attempt: 0,
  };
  setHandler(taskStatusQuery, () => status);
  const acts = activities(input);

  const update = (change: Omit<TaskUpdate, 'jobId'>) => {
    Object.assign(status, change);
    if (change.stage) {
      upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.stage, value: change.stage }]);
      log.info('stage', { jobId, stage: change.stage, attempt: status.attempt });
    }
    setCurrentDetails(describe(status));
    notifyParent({ jobId, ...change });
  };

  let handle: HarnessHandle | undefined;
  try {
    update({ stage: 'preparing_endpoint' });
    await acts.short.prepareEndpoint({
      url: input.endpoint.url,
      apiKeyName: input.endpoint.apiKeyName ?? null,
      readinessTimeoutS: input.endpoint.readinessTimeoutS,
    });

    let exitCode: number | undefined;
    for (let attempt = 1; ; attempt++) {
      update({ stage: 'launching', attempt });
      handle = await acts.short.launchHarness({ evaluation: input, attempt });
      update({ stage: 'running', handle });
      const outcome = await watchUntilEnd(acts, handle, (progress) => update({ progress }));
      if (outcome.state === 'exited' && (outcome.exitCode === 0 || outcome.exitCode === EXIT_TOO_MANY_ERRORS)) {
        exitCode = outcome.exitCode;
        break;
      }
      const why =
        outcome.state === 'lost'
          ? 'the harness process disappeared'
          : `the harness exited with code ${outcome.exitCode}`;
      if (outcome.state === 'exited' && outcome.exitCode === EXIT_CONFIG) {
        throw ApplicationFailure.nonRetryable(`${why} (invalid run config); see ${input.jobDir}/logs/client_stdout.log`, 'HarnessConfigError');
      }
      if (attempt >= input.limits.maxAttempts) {
        throw ApplicationFailure.nonRetryable(
          `${why} on attempt ${attempt} of ${input.limits.maxAttempts}; see ${input.jobDir}/logs/client_stdout.log`,
          'HarnessFailed',
        );
      }
      log.warn('relaunching harness; finished samples come from its response cache', { jobId, why, attempt });
    }

    update({ stage: 'collecting' });
    const collected = await acts.short.collectResults({ jobDir: input.jobDir });
    update({ metrics: collected.metrics, progress: collected.progress });
    if (exitCode === EXIT_TOO_MANY_ERRORS) {
      throw ApplicationFailure.nonRetryable(
        `${collected.samples.errors} of ${collected.samples.total} samples failed after retries, more than config.params.extra.max_error_rate allows; per-sample errors in ${collected.samplesPath}`,
        'TooManySampleErrors',
      );
    }

    if (input.exports.length > 0) {
      update({ stage: 'exporting' });
      await acts.short.exportResults({
        invocationId: input.invocationId,
        jobId,
        taskName: input.taskName,
        jobDir: input.jobDir,
        model: input.endpoint.modelId,
        destinations: input.exports,
      });
    }
    update({ stage: 'succeeded' });
    return {
      jobId,
      jobName: input.jobName,
      taskName: input.taskName,
      jobDir: input.jobDir,
      resultsPath: collected.resultsPath,
      attempts: status.attempt,
      metrics: collected.metrics,
      samples: collected.samples,
    };
  } catch (err) {
    const stage: Stage = isCancellation(err) ? 'cancelled' : 'failed';
    await CancellationScope.nonCancellable(async () => update({ stage, error: errorMessage(err) }));
    throw err;
  } finally {
    const lastHandle = handle;
    if (lastHandle) await CancellationScope.nonCancellable(() => acts.short.stopHarness({ handle: lastHandle }));
  }
}

/** Calls watchHarness in checkpoints until the harness ends; each call re-attaches by handle. */
async function watchUntilEnd(
  acts: ReturnType<typeof activities>,
  handle: HarnessHandle,
  onProgress: (p: NonNullable<TaskStatus['progress']>) => void,
) {
  const started = Date.now();
  for (;;) {
    const returnAfterS = watchCheckpointSeconds((Date.now() - started) / 1000);
    const result = await acts.watch.watchHarness({ handle, returnAfterS });
    if (result.progress) onProgress(result.progress);
    if (result.state !== 'running') return result;
  }
}

function activities(input: ResolvedEvaluationInput) {
  const heartbeatTimeoutS = input.limits.heartbeatTimeoutS;
  return {
    short: proxyActivities<Activities>({
      // prepareEndpoint waits up to the readiness timeout itself and heartbeats meanwhile.
      startToCloseTimeout: `${input.endpoint.readinessTimeoutS + 120} seconds`,
      heartbeatTimeout: `${heartbeatTimeoutS} seconds`,
      retry: { maximumAttempts: 5, initialInterval: '1 second', maximumInterval: '30 seconds' },
    }),
    watch: proxyActivities<Activities>({
      startToCloseTimeout: '2 hours',
      heartbeatTimeout: `${heartbeatTimeoutS} seconds`,
      // A dead worker shows up as a heartbeat timeout; the retry re-attaches from another worker.
      retry: { maximumAttempts: 50, initialInterval: '1 second', maximumInterval: '1 minute' },
    }),
  };
}

function notifyParent(update: TaskUpdate): void {
  const parent = workflowInfo().parent;
  if (!parent) return;
  getExternalWorkflowHandle(parent.workflowId, parent.runId)
    .signal(taskUpdateSignal, update)
    .catch((err: unknown) => log.warn('could not notify the invocation workflow', { error: errorMessage(err) }));
}

function describe(status: TaskStatus): string {
  const progress = status.progress ? ` ${status.progress.done}/${status.progress.total}` : '';
  return `**${status.jobName}** (${status.taskName}): ${status.stage}${progress}, attempt ${status.attempt}`;
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error && cause.message !== err.message ? `${err.message}: ${cause.message}` : err.message;
  }
  return String(err);
}
