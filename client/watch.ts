/**
 * `run --wait`: live per-task progress bars until the invocation ends, then the results table.
 * On a terminal the bars redraw in place; otherwise a line is printed when a task's stage changes
 * or it advances by a tenth.
 */
import type { Client } from '@temporalio/client';
import { invocationWorkflowId, TERMINAL_STAGES, type InvocationStatus, type TaskStatus } from '../workflows/types.js';
import { formatNumber, json, table, type Output } from './output.js';
import { invocationStatus, statusWord } from './status.js';

export async function watchInvocation(
  client: Client,
  invocationId: string,
  io: Output,
  opts: { json: boolean; intervalMs?: number },
): Promise<number> {
  const handle = client.workflow.getHandle(invocationWorkflowId(invocationId));
  const render = opts.json ? undefined : new ProgressRenderer(io);
  let finished = false;
  const closed = handle.result().then(
    () => (finished = true),
    () => (finished = true),
  );
  let status: InvocationStatus | undefined;
  while (!finished) {
    status = await invocationStatus(client, invocationId).catch(() => status);
    if (status) render?.update(status);
    let timer: NodeJS.Timeout | undefined;
    // Cleared once the run ends: a pending timer would keep the process alive for up to an interval.
    await Promise.race([closed, new Promise((r) => (timer = setTimeout(r, opts.intervalMs ?? 1000)))]);
    clearTimeout(timer);
  }
  status = await invocationStatus(client, invocationId);
  render?.update(status);
  render?.done();
  const ok = status.tasks.every((t) => t.stage === 'succeeded');
  if (opts.json) io.out(json(status));
  else io.out(`\n${resultsTable(status)}\n${summaryLine(status)}\n`);
  return ok ? 0 : 1;
}

export function resultsTable(status: InvocationStatus): string {
  const rows: Array<Array<string | number>> = [];
  for (const task of status.tasks) {
    const metrics = Object.entries(task.metrics ?? {});
    if (metrics.length === 0) rows.push([task.jobId, task.taskName, statusWord(task.stage), '-', '-']);
    for (const [name, value] of metrics) rows.push([task.jobId, task.taskName, statusWord(task.stage), name, formatNumber(value)]);
  }
  const errors = status.tasks.filter((t) => t.error).map((t) => `${t.jobId}: ${t.error}\n`);
  return table(['JOB', 'TASK', 'STATUS', 'METRIC', 'VALUE'], rows) + (errors.length ? `\n${errors.join('')}` : '');
}

function summaryLine(status: InvocationStatus): string {
  const failed = status.tasks.filter((t) => t.stage !== 'succeeded');
  const verdict = failed.length === 0 ? 'all tasks succeeded' : `${failed.length} of ${status.tasks.length} task(s) did not succeed`;
  return `${verdict}; files under ${status.runDir}`;
}

export class ProgressRenderer {
  private drawnLines = 0;
  private readonly lastPrinted = new Map<string, string>();
  /** Live progress comes from the watcher's heartbeat, absent between two watch checkpoints: keep the last. */
  private readonly lastProgress = new Map<string, { stage: string; progress: NonNullable<TaskStatus['progress']> }>();

  constructor(private readonly io: Output) {}

  update(fresh: InvocationStatus): void {
    const status = { ...fresh, tasks: fresh.tasks.map((t) => this.withKnownProgress(t)) };
    if (this.io.isTTY) {
      const lines = status.tasks.map((t) => this.line(t));
      const up = this.drawnLines > 0 ? `\x1b[${this.drawnLines}A` : '';
      this.io.out(`${up}${lines.map((l) => `\x1b[2K${l}\n`).join('')}`);
      this.drawnLines = lines.length;
      return;
    }
    for (const task of status.tasks) {
      const tenth = task.progress && task.progress.total > 0 ? Math.floor((10 * task.progress.done) / task.progress.total) : -1;
      const key = `${task.stage}:${tenth}`;
      if (this.lastPrinted.get(task.jobId) === key) continue;
      this.lastPrinted.set(task.jobId, key);
      this.io.out(`${this.line(task)}\n`);
    }
  }

  done(): void {
    this.drawnLines = 0;
  }

  private withKnownProgress(task: TaskStatus): TaskStatus {
    const known = this.lastProgress.get(task.jobId);
    if (task.progress) {
      this.lastProgress.set(task.jobId, { stage: task.stage, progress: task.progress });
      return task;
    }
    return known && known.stage === task.stage ? { ...task, progress: known.progress } : task;
  }

  private line(task: TaskStatus): string {
    const width = 24;
    const p = task.progress;
    const fraction = p && p.total > 0 ? p.done / p.total : TERMINAL_STAGES.includes(task.stage) && task.stage === 'succeeded' ? 1 : 0;
    const filled = Math.round(fraction * width);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
    const counts = p ? ` ${p.done}/${p.total}${p.cached ? ` (${p.cached} cached)` : ''}${p.errors ? ` ${p.errors} errors` : ''}` : '';
    const attempt = task.attempt > 1 ? ` attempt ${task.attempt}` : '';
    return `  ${task.jobName.padEnd(14)} ${bar} ${task.stage}${counts}${attempt}`;
  }
}
