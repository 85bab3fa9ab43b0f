/**
 * `evalflow resume ID [--all] [--wait]`: re-runs the failed or killed jobs of a finished invocation (or the
 * one job named) as a new run of the same workflow id, in their own job directories, so the harness's
 * response cache answers every sample it already has and only the missing ones are requested. Jobs that
 * succeeded stay as they are unless `--all`. The new run links to the old one in its memo (`resumeOf`).
 */
import type { Client } from '@temporalio/client';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { ConfigError } from '../../config/errors.js';
import {
  InvocationInputSchema,
  invocationWorkflowId,
  jobIdOf,
  type CarriedTask,
  type InvocationInput,
  type TaskStatus,
} from '../../workflows/types.js';
import { resolveId } from '../ids.js';
import { json, type Output } from '../output.js';
import { startInvocation } from '../start-invocation.js';
import { invocationStatus } from '../status.js';
import { watchInvocation } from '../watch.js';

export interface ResumeOptions {
  all?: boolean;
  wait?: boolean;
  json?: boolean;
}

export async function resumeCommand(client: Client, id: string, opts: ResumeOptions, io: Output): Promise<number> {
  const resolved = await resolveId(client, id);
  const { invocationId } = resolved;
  const handle = client.workflow.getHandle(invocationWorkflowId(invocationId));
  const description = await handle.describe();
  if (description.status.name === 'RUNNING') {
    throw new ConfigError(`invocation ${invocationId} is still running; resume it once it has ended (or \`evalflow kill\` it first)`);
  }
  const previous = await startInput(client, invocationId);
  const status = await invocationStatus(client, invocationId);

  const wanted = (task: TaskStatus) =>
    resolved.taskIndex !== undefined ? task.jobId === jobIdOf(invocationId, resolved.taskIndex) : opts.all || task.stage !== 'succeeded';
  const rerun = status.tasks.filter(wanted);
  if (resolved.taskIndex !== undefined && rerun.length === 0) throw new ConfigError(`invocation ${invocationId} has no job ${jobIdOf(invocationId, resolved.taskIndex)}`);
  if (rerun.length === 0) {
    io.out(opts.json ? json({ invocation_id: invocationId, resumed: [] }) : `every job of ${invocationId} succeeded; nothing to resume (--all re-runs them too)\n`);
    return 0;
  }
  const rerunIds = new Set(rerun.map((t) => t.jobId));
  // Every job's input: run by the latest run, or carried through it from an earlier one.
  const inputs = [...previous.tasks, ...(previous.resume?.carried ?? []).map((c) => c.evaluation)];
  const inputOf = (jobId: string) => inputs.find((t) => jobIdOf(t.invocationId, t.taskIndex) === jobId);
  const tasks = rerun.flatMap((t) => {
    const evaluation = inputOf(t.jobId);
    return evaluation ? [{ ...evaluation, attemptOffset: t.attempt }] : [];
  });
  const carried: CarriedTask[] = status.tasks.flatMap((t) => {
    const evaluation = inputOf(t.jobId);
    return rerunIds.has(t.jobId) || !evaluation ? [] : [carry(t, evaluation, previous)];
  });
  const input: InvocationInput = { ...previous, tasks, resume: { previousRunId: description.runId, carried } };

  const started = await startInvocation(client, input, { resumeOf: description.runId });
  const names = rerun.map((t) => t.jobName).join(', ');
  if (opts.json && !opts.wait) {
    io.out(json({ invocation_id: invocationId, workflow_id: started.workflowId, run_id: started.firstExecutionRunId, resumed: rerun.map((t) => t.jobId), resume_of: description.runId }));
    return 0;
  }
  if (!opts.json) {
    io.out(
      `resumed invocation ${invocationId} (workflow ${started.workflowId}, run ${started.firstExecutionRunId}): ${names}\n` +
        `  finished samples come from each job's response cache; only the missing ones are requested\n` +
        `  status:   npx evalflow status ${invocationId}\n`,
    );
  }
  return opts.wait ? watchInvocation(client, invocationId, io, { json: Boolean(opts.json) }) : 0;
}

/** The input the invocation's latest run was started with, from its history (decoded like any payload). */
async function startInput(client: Client, invocationId: string): Promise<InvocationInput> {
  const history = await client.workflow.getHandle(invocationWorkflowId(invocationId)).fetchHistory();
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  const raw = await decodeFromPayloadsAtIndex(client.options.loadedDataConverter, 0, started?.input?.payloads);
  const parsed = InvocationInputSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(`invocation ${invocationId} was started by an older evalflow whose runs cannot be resumed; run its config again`);
  }
  return parsed.data;
}

function carry(task: TaskStatus, evaluation: CarriedTask['evaluation'], previous: InvocationInput): CarriedTask {
  const samples = previous.resume?.carried.find((c) => c.evaluation === evaluation)?.samples;
  const progress = task.progress;
  return {
    evaluation,
    stage: task.stage,
    attempt: task.attempt,
    ...(task.metrics ? { metrics: task.metrics } : {}),
    ...(task.error ? { error: task.error } : {}),
    ...(samples ? { samples } : progress ? { samples: { total: progress.total, scored: progress.total - progress.errors, errors: progress.errors, cached: progress.cached } } : {}),
  };
}

