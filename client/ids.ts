/**
 * Invocation and job ids as users type them: full (`3f2a…9c` / `3f2a…9c.1`) or any unique prefix,
 * resolved with a Temporal visibility query (no local job database).
 */
import type { Client } from '@temporalio/client';
import { listingClient } from '../common/codec.js';
import { ConfigError } from '../config/errors.js';
import { INVOCATION_WORKFLOW, invocationWorkflowId } from '../workflows/types.js';

export interface ResolvedId {
  invocationId: string;
  /** Set when a single job (`<inv>.<n>`) was named. */
  taskIndex?: number;
}

const ID_PATTERN = /^([0-9a-f]{1,16})(?:\.(\d+))?$/;

export async function resolveId(client: Client, raw: string): Promise<ResolvedId> {
  const id = raw.trim().toLowerCase().replace(/^evalflow-/, '');
  const match = ID_PATTERN.exec(id);
  if (!match) throw new ConfigError(`'${raw}' is not an invocation or job id (16 hex digits, optionally .<task index>; a unique prefix is enough)`);
  const [, prefix = '', index] = match;
  const taskIndex = index === undefined ? undefined : Number(index);
  const withIndex = (invocationId: string): ResolvedId => (taskIndex === undefined ? { invocationId } : { invocationId, taskIndex });
  if (prefix.length === 16) return withIndex(prefix);

  const matches: string[] = [];
  const query = `WorkflowType = '${INVOCATION_WORKFLOW}' AND WorkflowId STARTS_WITH '${invocationWorkflowId(prefix)}'`;
  for await (const wf of listingClient(client).workflow.list({ query, pageSize: 20 })) {
    const invocationId = wf.workflowId.slice('evalflow-'.length);
    if (!matches.includes(invocationId)) matches.push(invocationId);
    if (matches.length > 10) break;
  }
  if (matches.length === 0) throw new ConfigError(`no run matches '${raw}' (see \`evalflow ls runs\`)`);
  if (matches.length > 1) throw new ConfigError(`'${raw}' is ambiguous: it matches ${matches.join(', ')}`);
  return withIndex(matches[0] as string);
}

/** Whether a task belongs to what the user named: the whole invocation, or that one job. */
export function isSelected(task: { jobId: string }, id: ResolvedId): boolean {
  return id.taskIndex === undefined || task.jobId === `${id.invocationId}.${id.taskIndex}`;
}
