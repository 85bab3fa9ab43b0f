/**
 * InvocationWorkflow: one `evalflow run`. Starts a child EvaluationWorkflow per task (sequentially, or
 * in a window of `maxParallel` in parallel mode) and keeps every task's stage for the `status` query.
 * A task's final stage, metrics and error come from its child's own result or failure; the children
 * signal stage changes only, so this history stays small however long the tasks run.
 *
 * Killing one job (cancelling its child) ends that job KILLED and lets the others go on; the invocation
 * then ends failed, naming it. Cancelling the invocation cancels every task.
 */
import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowCancellationType,
  isCancellation,
  ParentClosePolicy,
  patched,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { SEARCH_ATTRIBUTES } from '../core/search-attributes.js';
import { EXECUTORS_PATCH, type EvaluationWorkflow } from './evaluation.js';
import { invocationWorkflowV1 } from './legacy/invocation-v1.js';
import { invocationStatusQuery, taskStageSignal } from './messages.js';
import {
  EVALUATION_WORKFLOW,
  evaluationWorkflowId,
  InvocationInputSchema,
  jobIdOf,
  TERMINAL_STAGES,
  type CarriedTask,
  type EvaluationResult,
  type InvocationStatus,
  type SampleCounts,
  type Stage,
  type TaskFailureDetails,
  type TaskStatus,
} from './types.js';
import { parseWorkflowInput } from './validate.js';

export interface InvocationResult {
  invocationId: string;
  runDir: string;
  tasks: EvaluationResult[];
}

export async function InvocationWorkflow(rawInput: unknown): Promise<InvocationResult> {
  if (!patched(EXECUTORS_PATCH)) return (await invocationWorkflowV1(rawInput)) as InvocationResult;
  const input = parseWorkflowInput(InvocationInputSchema, rawInput);
  const carried = input.resume?.carried ?? [];
  const status: InvocationStatus = {
    invocationId: input.invocationId,
    runDir: input.runDir,
    model: input.model,
    stage: 'running',
    tasks: [
      ...carried.map(
        (c): TaskStatus => ({
          ...taskIdentity(c.evaluation),
          stage: c.stage,
          attempt: c.attempt,
          ...(c.metrics ? { metrics: c.metrics } : {}),
          ...(c.error ? { error: c.error } : {}),
        }),
      ),
      ...input.tasks.map((t): TaskStatus => ({ ...taskIdentity(t), stage: 'pending', attempt: t.attemptOffset })),
    ].sort(byJobIndex),
  };
  const byJobId = new Map(status.tasks.map((t) => [t.jobId, t]));
  setHandler(invocationStatusQuery, () => status);
  setHandler(taskStageSignal, (update) => {
    const task = byJobId.get(update.jobId);
    // Final stages come from the child's result; a late signal must not move a finished task back.
    if (!task || TERMINAL_STAGES.includes(task.stage) || TERMINAL_STAGES.includes(update.stage)) return;
    Object.assign(task, { stage: update.stage, attempt: update.attempt }, update.handle ? { handle: update.handle } : {});
    setCurrentDetails(summarize(status));
  });
  const setStage = (stage: Stage) => {
    status.stage = stage;
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.stage, value: stage }]);
    setCurrentDetails(summarize(status));
  };
  setStage('running');

  const results: EvaluationResult[] = carried.flatMap((t) => (t.stage === 'succeeded' && t.samples ? [carriedResult(t, t.samples)] : []));
  const failures: string[] = carried.filter((t) => t.stage !== 'succeeded').map((t) => `${t.evaluation.jobName}: ${t.error ?? t.stage} (not resumed)`);
  const finish = (task: TaskStatus, change: Partial<TaskStatus>) => {
    Object.assign(task, change);
    setCurrentDetails(summarize(status));
  };

  const runTask = async (index: number) => {
    const task = input.tasks[index];
    const taskStatus = task && byJobId.get(jobIdOf(task.invocationId, task.taskIndex));
    if (!task || !taskStatus) return;
    try {
      const child = await startChild<typeof EvaluationWorkflow>(EVALUATION_WORKFLOW, {
        workflowId: evaluationWorkflowId(taskStatus.jobId),
        args: [task],
        // Cancelling the invocation cancels its tasks, which stop their harness before they end.
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
        typedSearchAttributes: [
          { key: SEARCH_ATTRIBUTES.invocation, value: input.invocationId },
          ...(input.confidential
            ? []
            : [
                { key: SEARCH_ATTRIBUTES.task, value: task.taskName },
                { key: SEARCH_ATTRIBUTES.model, value: input.model },
                { key: SEARCH_ATTRIBUTES.backend, value: input.backend },
              ]),
          { key: SEARCH_ATTRIBUTES.stage, value: 'pending' },
        ],
        memo: { jobName: task.jobName, jobDir: task.jobDir, taskName: task.taskName },
      });
      const result = await child.result();
      results.push(result);
      const counts = result.samples;
      const progress = counts ? { total: counts.total, done: counts.total, cached: counts.cached, errors: counts.errors } : undefined;
      finish(taskStatus, { stage: 'succeeded', attempt: result.attempts, metrics: result.metrics, ...(progress ? { progress } : {}) });
    } catch (err) {
      if (CancellationScope.current().consideredCancelled) throw err;
      if (isCancellation(err)) {
        finish(taskStatus, { stage: 'cancelled', error: 'killed' });
        failures.push(`${taskStatus.jobName}: killed`);
        return;
      }
      const details = failureDetails(err);
      const message = causeMessage(err);
      finish(taskStatus, {
        stage: 'failed',
        error: message,
        ...(details?.attempts ? { attempt: details.attempts } : {}),
        ...(details?.metrics ? { metrics: details.metrics } : {}),
      });
      failures.push(`${taskStatus.jobName}: ${message}`);
    }
  };

  let next = 0;
  const lane = async () => {
    while (next < input.tasks.length) await runTask(next++);
  };
  const window = input.mode === 'parallel' ? (input.maxParallel ?? input.tasks.length) : 1;
  // allSettled: when the invocation is cancelled, wait until every task has stopped its harness.
  const lanes = await Promise.allSettled(Array.from({ length: Math.min(window, input.tasks.length) }, lane));
  const cancelled = lanes.find((l): l is PromiseRejectedResult => l.status === 'rejected');
  if (cancelled) {
    await CancellationScope.nonCancellable(async () => {
      for (const task of status.tasks) if (!TERMINAL_STAGES.includes(task.stage)) task.stage = 'cancelled';
      setStage('cancelled');
    });
    throw cancelled.reason;
  }

  results.sort(byJobIndex);
  setStage(failures.length > 0 ? 'failed' : 'succeeded');
  if (failures.length > 0) {
    throw ApplicationFailure.create({
      nonRetryable: true,
      type: 'TasksFailed',
      message: `${failures.length} of ${status.tasks.length} tasks failed: ${failures.join('; ')}`,
      details: [{ invocationId: input.invocationId, runDir: input.runDir, tasks: results }],
    });
  }
  return { invocationId: input.invocationId, runDir: input.runDir, tasks: results };
}

function byJobIndex(a: { jobId: string }, b: { jobId: string }): number {
  return a.jobId.localeCompare(b.jobId, 'en', { numeric: true });
}

function taskIdentity(t: { invocationId: string; taskIndex: number; jobName: string; taskName: string; jobDir: string }) {
  return { jobId: jobIdOf(t.invocationId, t.taskIndex), jobName: t.jobName, taskName: t.taskName, jobDir: t.jobDir };
}

function carriedResult(task: CarriedTask, samples: SampleCounts): EvaluationResult {
  return {
    ...taskIdentity(task.evaluation),
    resultsPath: `${task.evaluation.jobDir}/artifacts/results.yml`,
    attempts: task.attempt,
    metrics: task.metrics ?? {},
    samples,
  };
}

function summarize(status: InvocationStatus): string {
  const lines = status.tasks.map((t) => `- ${t.jobName}: ${t.stage}${t.handle ? ` (${t.handle.display})` : ''}`);
  return [`**${status.invocationId}** ${status.model}: ${status.stage}`, ...lines].join('\n');
}

/** What the child reported about its failure (TaskFailureDetails), if it got that far. */
function failureDetails(err: unknown): TaskFailureDetails | undefined {
  for (let e: unknown = err; e instanceof Error; e = (e as { cause?: unknown }).cause) {
    if (e instanceof ApplicationFailure && e.details?.[0] && typeof e.details[0] === 'object') return e.details[0] as TaskFailureDetails;
  }
  return undefined;
}

/** The innermost message: a ChildWorkflowFailure wraps the child's own ApplicationFailure. */
function causeMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && (e as { cause?: unknown }).cause instanceof Error) e = (e as { cause: Error }).cause;
  return e instanceof Error ? e.message : String(err);
}
