/** `evalflow export ID… --dest local [--format json|csv]`: rows from each job's results.yml. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { ConfigError } from '../../config/errors.js';
import { exportLocal, exportRow, type ExportRow } from '../../exporters/local.js';
import { isSelected, resolveId } from '../ids.js';
import type { Output } from '../output.js';
import { invocationStatus } from '../status.js';

export interface ExportOptions {
  dest: string;
  format?: 'json' | 'csv';
  outputDir?: string;
  outputFilename?: string;
}

export async function exportCommand(client: Client, ids: string[], opts: ExportOptions, io: Output): Promise<number> {
  if (opts.dest !== 'local') throw new ConfigError(`--dest ${opts.dest} is not supported yet (supported: local)`, '--dest');
  const format = opts.format ?? 'json';
  if (format !== 'json' && format !== 'csv') throw new ConfigError(`--format must be json or csv, got '${String(format)}'`, '--format');
  let written = 0;
  for (const raw of ids) {
    const { invocationId, taskIndex } = await resolveId(client, raw);
    const status = await invocationStatus(client, invocationId);
    const rows: ExportRow[] = [];
    for (const task of status.tasks) {
      if (!isSelected(task, { invocationId, taskIndex })) continue;
      if (!existsSync(join(task.jobDir, 'artifacts', 'results.yml'))) {
        io.err(`${task.jobId}: no results yet (${task.stage}); skipped\n`);
        continue;
      }
      rows.push(exportRow({ invocationId, jobId: task.jobId, taskName: task.taskName, model: status.model, jobDir: task.jobDir }));
    }
    if (rows.length === 0) continue;
    const file = await exportLocal(rows, { outputDir: opts.outputDir ?? status.runDir, format, filename: opts.outputFilename });
    io.out(`exported ${rows.length} job(s) of ${invocationId} to ${file}\n`);
    written += rows.length;
  }
  return written > 0 ? 0 : 1;
}
