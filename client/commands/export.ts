/** `evalflow export ID… --dest local [--format json|csv]`: rows from each job's results.yml. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { parse } from 'yaml';
import { ConfigError } from '../../config/errors.js';
import { exportLocal, type ExportRow } from '../../exporters/local.js';
import { flattenMetrics, parseResultsFile } from '../../harness/results-schema.js';
import { resolveId } from '../ids.js';
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
      if (taskIndex !== undefined && task.jobId !== `${invocationId}.${taskIndex}`) continue;
      const resultsPath = join(task.jobDir, 'artifacts', 'results.yml');
      if (!existsSync(resultsPath)) {
        io.err(`${task.jobId}: no results yet (${task.stage}); skipped\n`);
        continue;
      }
      const results = parseResultsFile(parse(readFileSync(resultsPath, 'utf8')), resultsPath);
      rows.push({
        invocation_id: invocationId,
        job_id: task.jobId,
        task: task.taskName,
        model: status.model,
        results_path: resultsPath,
        samples: results.samples,
        metrics: flattenMetrics(results.results),
      });
    }
    if (rows.length === 0) continue;
    const file = await exportLocal(rows, { outputDir: opts.outputDir ?? status.runDir, format, filename: opts.outputFilename });
    io.out(`exported ${rows.length} job(s) of ${invocationId} to ${file}\n`);
    written += rows.length;
  }
  return written > 0 ? 0 : 1;
}
