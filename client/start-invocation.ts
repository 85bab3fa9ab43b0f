/** Starting an InvocationWorkflow: one place for its id, task queue, search attributes and memo. */
import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { encrypts } from '../common/codec.js';
import type { InvocationWorkflow } from '../workflows/invocation.js';
import { INVOCATION_WORKFLOW, invocationWorkflowId, SEARCH_ATTRIBUTES, TASK_QUEUE, type InvocationInput } from '../workflows/types.js';

export function startInvocation(
  client: Client,
  input: InvocationInput,
  link: { resumeOf?: string } = {},
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof InvocationWorkflow>> {
  // Search attributes are never encrypted: with the codec on, they carry no config value (memo and input are encrypted).
  const confidential = encrypts(client.options.loadedDataConverter);
  return client.workflow.start<typeof InvocationWorkflow>(INVOCATION_WORKFLOW, {
    workflowId: invocationWorkflowId(input.invocationId),
    taskQueue: TASK_QUEUE,
    args: [{ ...input, confidential }],
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTES.invocation, value: input.invocationId },
      ...(confidential
        ? []
        : [
            { key: SEARCH_ATTRIBUTES.model, value: input.model },
            { key: SEARCH_ATTRIBUTES.backend, value: input.backend },
          ]),
      { key: SEARCH_ATTRIBUTES.stage, value: 'pending' },
    ],
    memo: {
      model: input.model,
      runDir: input.runDir,
      endpoint: input.tasks[0]?.endpoint.url ?? '',
      tasks: input.tasks.map((t) => `${t.jobName} (${t.taskName})`).join(', '),
      ...(link.resumeOf ? { resumeOf: link.resumeOf } : {}),
    },
  });
}
