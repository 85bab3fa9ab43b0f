/**
 * How an InvocationWorkflow is started, whoever starts it (the CLI, or a nightly as its child): its id,
 * search attributes and memo. Pure, so the workflow sandbox can use it too.
 */
import { invocationWorkflowId } from '../core/ids.js';
import { SEARCH_ATTRIBUTES } from '../core/search-attributes.js';
import type { InvocationInput } from './types.js';

export function invocationStartOptions(input: InvocationInput & { confidential: boolean }, link: { resumeOf?: string; nightly?: string } = {}) {
  return {
    workflowId: invocationWorkflowId(input.invocationId),
    args: [input] as [InvocationInput],
    // Search attributes are never encrypted: with the codec on, they carry no config value (memo and input are encrypted).
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTES.invocation, value: input.invocationId },
      ...(input.confidential
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
      ...(link.nightly ? { nightly: link.nightly } : {}),
    },
  };
}
