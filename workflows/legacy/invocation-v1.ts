/**
 * Frozen v1 of InvocationWorkflow (evalflow 0.1), kept for the replay of executions started by 0.1;
 * see evaluation-v1.ts. Do not change. Original summary: one `evalflow run`. Starts a child EvaluationWorkflow per task (sequentially, or
 * in a window of `maxParallel` in parallel mode), keeps every task's stage for the `status` query, and
 * fails at the end, with the failed tasks named, if any task failed.
 */
import {
  ApplicationFailure,
  ChildWorkflowCancellationType,
  isCancellation,
  ParentClosePolicy,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { invocationStatusQuery, taskUpdateSignal } from './messages-v1.js';
import {
  EVALUATION_WORKFLOW,
  evaluationWorkflowId,
  InvocationInputSchema,
  jobIdOf,
  SEARCH_ATTRIBUTES,
  TERMINAL_STAGES,
  type EvaluationResult,
  type InvocationStatus,
  type TaskStatus,
} from './types-v1.js';
import { parseWorkflowInput } from '../validate.js';

export interface InvocationResult {
  invocationId: string;
  runDir: string;
  tasks: EvaluationResult[];
}

export async function invocationWorkflowV1(rawInput: unknown): Promise<InvocationResult> {
  const input = parseWorkflowInput(InvocationInputSchema, rawInput);
  const status: InvocationStatus = {
    invocationId: input.invocationId,
    runDir: input.runDir,
    model: input.model,
    stage: 'running',
    tasks: input.tasks.map(
      (t): TaskStatus => ({
        jobId: jobIdOf(t.invocationId, t.taskIndex),
        jobName: t.jobName,
        taskName: t.taskName,
        jobDir: t.jobDir,
        stage: 'pending',
        attempt: 0,
      }),
    ),
  };
  const byJobId = new Map(status.tasks.map((t) => [t.jobId, t]));
  setHandler(invocationStatusQuery, () => status);
  setHandler(taskUpdateSignal, (update) => {
    const task = byJobId.get(update.jobId);
    // A late update (e.g. a retried signal) must not move a finished task back.
    if (!task || (TERMINAL_STAGES.includes(task.stage) && update.stage !== undefined && !TERMINAL_STAGES.includes(update.stage))) return;
    Object.assign(task, update);
    setCurrentDetails(summarize(status));
  });
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.stage, value: 'running' }]);

  const results: EvaluationResult[] = [];
  const failures: string[] = [];
  const window = input.mode === 'parallel' ? (input.maxParallel ?? input.tasks.length) : 1;

  const runTask = async (index: number) => {
    const task = input.tasks[index];
    if (!task) return;
    const taskStatus = status.tasks[index] as TaskStatus;
    try {
      const child = await startChild<(input: unknown) => Promise<EvaluationResult>>(EVALUATION_WORKFLOW, {
        workflowId: evaluationWorkflowId(taskStatus.jobId),
        args: [task],
        // Cancelling the invocation cancels its tasks, which stop their harness before they end.
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
        typedSearchAttributes: [
          { key: SEARCH_ATTRIBUTES.invocation, value: input.invocationId },
          { key: SEARCH_ATTRIBUTES.task, value: task.taskName },
          { key: SEARCH_ATTRIBUTES.model, value: input.model },
          { key: SEARCH_ATTRIBUTES.backend, value: input.backend },
          { key: SEARCH_ATTRIBUTES.stage, value: 'pending' },
        ],
        memo: { jobName: task.jobName, jobDir: task.jobDir, taskName: task.taskName },
      });
      results.push(await child.result());
    } catch (err) {
      if (isCancellation(err)) throw err;
      const message = causeMessage(err);
      Object.assign(taskStatus, { stage: TERMINAL_STAGES.includes(taskStatus.stage) ? taskStatus.stage : 'failed', error: message });
      failures.push(`${taskStatus.jobName}: ${message}`);
    }
  };

  try {
    let next = 0;
    const lane = async () => {
      while (next < input.tasks.length) await runTask(next++);
    };
    await Promise.all(Array.from({ length: Math.min(window, input.tasks.length) }, lane));
  } catch (err) {
    if (isCancellation(err)) {
      status.stage = 'cancelled';
      upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.stage, value: 'cancelled' }]);
    }
    throw err;
  }

  results.sort((a, b) => a.jobId.localeCompare(b.jobId, 'en', { numeric: true }));
  status.stage = failures.length > 0 ? 'failed' : 'succeeded';
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.stage, value: status.stage }]);
  setCurrentDetails(summarize(status));
  if (failures.length > 0) {
    throw ApplicationFailure.create({
      nonRetryable: true,
      type: 'TasksFailed',
      message: `${failures.length} of ${input.tasks.length} tasks failed: ${failures.join('; ')}`,
      details: [{ invocationId: input.invocationId, runDir: input.runDir, tasks: results }],
    });
  }
  return { invocationId: input.invocationId, runDir: input.runDir, tasks: results };
}

function summarize(status: InvocationStatus): string {
  const lines = status.tasks.map((t) => {
    const p = t.progress ? ` ${t.progress.done}/${t.progress.total}` : '';
    return `- ${t.jobName}: ${t.stage}${p}`;
  });
  return [`**${status.invocationId}** ${status.model}: ${status.stage}`, ...lines].join('\n');
}

/** The innermost message: a ChildWorkflowFailure wraps the child's own ApplicationFailure. */
function causeMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && (e as { cause?: unknown }).cause instanceof Error) e = (e as { cause: Error }).cause;
  return e instanceof Error ? e.message : String(err);
}
