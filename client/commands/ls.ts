/** `evalflow ls [tasks]` (the catalogue), `ls task NAME` (one task) and `ls runs` (a Temporal visibility query). */
import type { Client } from '@temporalio/client';
import { listingClient } from '../../common/codec.js';
import { ConfigError } from '../../config/errors.js';
import { stringify } from 'yaml';
import { listTasks, resolveTaskName } from '../../config/registry.js';
import { INVOCATION_WORKFLOW, SEARCH_ATTRIBUTES } from '../../workflows/types.js';
import { json, table, type Output } from '../output.js';

export function lsTasksCommand(opts: { json?: boolean }, io: Output): number {
  const tasks = listTasks();
  if (opts.json) {
    io.out(json(tasks));
    return 0;
  }
  io.out(
    table(
      ['TASK', 'ENDPOINT TYPES', 'RUNS IN'],
      tasks.map((t) => [t.fullName, t.supportedEndpointTypes.join(','), t.builtin ? 'built-in harness (process or docker)' : (t.container ?? '-')]),
    ),
  );
  io.out(`${tasks.length} tasks (${tasks.filter((t) => t.builtin).length} built-in)\n`);
  return 0;
}

/** `evalflow ls task NAME`: one catalogue task, as upstream shows it: where it runs, its endpoint types and default params. */
export function lsTaskCommand(name: string, opts: { json?: boolean }, io: Output): number {
  const task = resolveTaskName(name);
  if (opts.json) {
    io.out(json(task));
    return 0;
  }
  const params = stringify(task.defaultParams, { lineWidth: 0 }).trimEnd();
  io.out(
    `${task.fullName}\n` +
      `  description:    ${task.description.replace(/\s+/g, ' ').trim() || '-'}\n` +
      `  runs in:        ${task.builtin ? 'the built-in harness (runtime process, or its docker image)' : (task.container ?? '-')}\n` +
      `  endpoint types: ${task.supportedEndpointTypes.join(', ')}\n` +
      `  default params (config.params):${Object.keys(task.defaultParams).length ? `\n${params.replace(/^/gm, '    ')}` : ' (none)'}\n`,
  );
  return 0;
}

/** `--since`: an ISO date/time, or a duration back from now such as 6h, 1d, 30m. */
export function parseSince(since: string, now = new Date()): Date {
  const rel = /^(\d+)([smhdw])$/.exec(since.trim());
  if (rel) {
    const unit = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[rel[2] as 's' | 'm' | 'h' | 'd' | 'w'];
    return new Date(now.getTime() - Number(rel[1]) * unit * 1000);
  }
  // Only date-like input: `new Date('6')` would silently mean June 2001.
  const date = /^\d{4}-\d{2}-\d{2}/.test(since.trim()) ? new Date(since) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) throw new ConfigError(`--since: expected a date (2026-01-31, 2026-01-31T12:00:00) or a duration (6h, 1d), got '${since}'`, '--since');
  return date;
}

export async function lsRunsCommand(client: Client, opts: { since?: string; limit?: number; json?: boolean }, io: Output): Promise<number> {
  let query = `WorkflowType = '${INVOCATION_WORKFLOW}'`;
  if (opts.since) query += ` AND StartTime > '${parseSince(opts.since).toISOString()}'`;
  const limit = opts.limit ?? 50;
  const runs: Array<Record<string, unknown>> = [];
  for await (const wf of listingClient(client).workflow.list({ query, pageSize: Math.min(limit, 100) })) {
    const sa = wf.typedSearchAttributes;
    runs.push({
      invocation_id: sa.get(SEARCH_ATTRIBUTES.invocation) ?? wf.workflowId.replace(/^evalflow-/, ''),
      started: wf.startTime.toISOString(),
      status: wf.status.name,
      stage: sa.get(SEARCH_ATTRIBUTES.stage) ?? null,
      // Runs started with the codec on have no EvalModel search attribute; their (encrypted) memo has it.
      model: sa.get(SEARCH_ATTRIBUTES.model) ?? (wf.memo?.model as string | undefined) ?? null,
      tasks: (wf.memo?.tasks as string | undefined) ?? null,
      run_dir: (wf.memo?.runDir as string | undefined) ?? null,
      resume_of: (wf.memo?.resumeOf as string | undefined) ?? null,
    });
    if (runs.length >= limit) break;
  }
  if (opts.json) {
    io.out(json(runs));
    return 0;
  }
  io.out(
    table(
      ['INVOCATION', 'STARTED', 'STATUS', 'MODEL', 'TASKS'],
      runs.map((r) => [String(r.invocation_id), String(r.started), `${String(r.status)}${r.resume_of ? ' (resume)' : ''}`, String(r.model ?? '-'), String(r.tasks ?? '-')]),
    ),
  );
  return 0;
}
