/** Starting an InvocationWorkflow from the CLI (its options: workflows/start-options.ts). */
import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { encrypts } from '../common/codec.js';
import type { InvocationWorkflow } from '../workflows/invocation.js';
import { invocationStartOptions } from '../workflows/start-options.js';
import { INVOCATION_WORKFLOW, TASK_QUEUE, type InvocationInput } from '../workflows/types.js';

export function startInvocation(
  client: Client,
  input: InvocationInput,
  link: { resumeOf?: string } = {},
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof InvocationWorkflow>> {
  const confidential = encrypts(client.options.loadedDataConverter);
  return client.workflow.start<typeof InvocationWorkflow>(INVOCATION_WORKFLOW, {
    taskQueue: TASK_QUEUE,
    ...invocationStartOptions({ ...input, confidential }, link),
  });
}
