/**
 * Reading a run's state: the invocation's `status` query (stages, handles, metrics), made live with
 * the progress each task's watcher reports in its heartbeats (visible without growing any history).
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { decodePayload } from '../common/codec.js';
import { ConfigError } from '../config/errors.js';
import { evaluationWorkflowId, invocationWorkflowId, type InvocationStatus, type Progress, type Stage, type TaskStatus } from '../workflows/types.js';

export async function invocationStatus(client: Client, invocationId: string): Promise<InvocationStatus> {
  const handle = client.workflow.getHandle(invocationWorkflowId(invocationId));
  let status: InvocationStatus;
  try {
    status = await handle.query<InvocationStatus>('status');
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new ConfigError(`no run ${invocationId}`);
    throw err;
  }
  await Promise.all(
    status.tasks.map(async (task) => {
      if (task.stage !== 'running') return;
      const live = await heartbeatProgress(client, task.jobId);
      if (live && live.done >= (task.progress?.done ?? 0)) task.progress = live;
    }),
  );
  return status;
}

/** The latest progress the task's watchHarness heartbeat carried, if it is running now. */
async function heartbeatProgress(client: Client, jobId: string): Promise<Progress | undefined> {
  try {
    const description = await client.workflow.getHandle(evaluationWorkflowId(jobId)).describe();
    for (const activity of description.raw.pendingActivities ?? []) {
      if (activity.activityType?.name !== 'watchHarness') continue;
      const payload = activity.heartbeatDetails?.payloads?.[0];
      if (!payload) continue;
      const details = await decodePayload<{ progress?: Progress }>(client.options.loadedDataConverter, payload);
      return details.progress;
    }
  } catch {
    // Progress is a nicety; the query result stands on its own.
  }
  return undefined;
}

/** Upstream's status words (SUCCESS, FAILED, …) for a stage. */
export function statusWord(stage: Stage): string {
  switch (stage) {
    case 'succeeded':
      return 'SUCCESS';
    case 'failed':
      return 'FAILED';
    case 'cancelled':
      return 'KILLED';
    case 'pending':
      return 'PENDING';
    default:
      return 'RUNNING';
  }
}

export function progressText(task: TaskStatus): string {
  if (!task.progress) return '-';
  const { done, total } = task.progress;
  const pct = total > 0 ? Math.floor((100 * done) / total) : 0;
  return `${done}/${total} (${pct}%)`;
}
