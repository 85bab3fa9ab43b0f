/** Starting an InvocationWorkflow: one place for its id, task queue, search attributes and memo. */
import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { InvocationWorkflow } from '../workflows/invocation.js';
import { INVOCATION_WORKFLOW, invocationWorkflowId, SEARCH_ATTRIBUTES, TASK_QUEUE, type InvocationInput } from '../workflows/types.js';

export function startInvocation(
  client: Client,
  input: InvocationInput,
  endpointUrl: string,
  link: { resumeOf?: string } = {},
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof InvocationWorkflow>> {
  return client.workflow.start<typeof InvocationWorkflow>(INVOCATION_WORKFLOW, {
    workflowId: invocationWorkflowId(input.invocationId),
    taskQueue: TASK_QUEUE,
    args: [input],
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTES.invocation, value: input.invocationId },
      { key: SEARCH_ATTRIBUTES.model, value: input.model },
      { key: SEARCH_ATTRIBUTES.backend, value: input.backend },
      { key: SEARCH_ATTRIBUTES.stage, value: 'pending' },
    ],
    memo: {
      runDir: input.runDir,
      endpoint: endpointUrl,
      tasks: input.tasks.map((t) => `${t.jobName} (${t.taskName})`).join(', '),
      ...(link.resumeOf ? { resumeOf: link.resumeOf } : {}),
    },
  });
}
