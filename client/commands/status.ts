/** `evalflow status ID… [--json]`: per job, its state, progress and where it runs. */
import type { Client } from '@temporalio/client';
import { isSelected, resolveId } from '../ids.js';
import { json, table, type Output } from '../output.js';
import { invocationStatus, progressText, statusWord } from '../status.js';

export async function statusCommand(client: Client, ids: string[], opts: { json?: boolean }, io: Output): Promise<number> {
  const rows: Array<Record<string, unknown>> = [];
  for (const raw of ids) {
    const id = await resolveId(client, raw);
    const status = await invocationStatus(client, id.invocationId);
    for (const task of status.tasks) {
      if (!isSelected(task, id)) continue;
      rows.push({
        job_id: task.jobId,
        task: task.taskName,
        status: statusWord(task.stage),
        stage: task.stage,
        progress: task.progress ?? null,
        attempt: task.attempt,
        location: task.jobDir,
        where: task.handle?.display ?? null,
        handle: task.handle ?? null,
        metrics: task.metrics ?? {},
        error: task.error ?? null,
      });
    }
  }
  if (opts.json) {
    io.out(json(rows));
    return 0;
  }
  io.out(
    table(
      ['JOB ID', 'TASK', 'STATUS', 'STAGE', 'PROGRESS', 'RUNS AS', 'LOCATION'],
      rows.map((r) => [
        String(r.job_id),
        String(r.task),
        String(r.status),
        String(r.stage),
        progressText({ progress: r.progress } as Parameters<typeof progressText>[0]),
        r.where === null ? '-' : String(r.where),
        String(r.location),
      ]),
    ),
  );
  for (const r of rows) if (r.error) io.out(`${String(r.job_id)}: ${String(r.error)}\n`);
  return 0;
}
