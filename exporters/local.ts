/**
 * Local exporter: upserts one row per job into `processed_results.json` (and `.csv` on request) in an
 * output directory, keyed by job id so re-exports and retried activities never duplicate rows.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../common/files.js';

export interface ExportRow {
  invocation_id: string;
  job_id: string;
  task: string;
  model: string;
  results_path: string;
  samples: { total: number; scored: number; errors: number; cached: number };
  metrics: Record<string, number>;
}

export interface LocalExportOptions {
  outputDir: string;
  format: 'json' | 'csv';
  /** Base name without extension; default `processed_results`. */
  filename?: string | undefined;
}

interface ProcessedResults {
  jobs: Record<string, ExportRow>;
}

export async function exportLocal(rows: ExportRow[], opts: LocalExportOptions): Promise<string> {
  mkdirSync(opts.outputDir, { recursive: true });
  const base = join(opts.outputDir, opts.filename ?? 'processed_results');
  return withDirLock(`${base}.lock`, () => {
    const jsonFile = `${base}.json`;
    const data: ProcessedResults = existsSync(jsonFile)
      ? (JSON.parse(readFileSync(jsonFile, 'utf8')) as ProcessedResults)
      : { jobs: {} };
    for (const row of rows) data.jobs[row.job_id] = row;
    writeJsonAtomic(jsonFile, data);
    if (opts.format === 'json') return jsonFile;
    const csvFile = `${base}.csv`;
    writeFileAtomic(csvFile, toCsv(Object.values(data.jobs)));
    return csvFile;
  });
}

export function toCsv(rows: ExportRow[]): string {
  const metricNames = [...new Set(rows.flatMap((r) => Object.keys(r.metrics)))].sort();
  const header = ['invocation_id', 'job_id', 'task', 'model', 'samples_total', 'samples_errors', ...metricNames];
  const lines = rows
    .sort((a, b) => a.job_id.localeCompare(b.job_id, 'en', { numeric: true }))
    .map((r) =>
      [r.invocation_id, r.job_id, r.task, r.model, r.samples.total, r.samples.errors, ...metricNames.map((m) => r.metrics[m] ?? '')]
        .map(csvField)
        .join(','),
    );
  return `${[header.map(csvField).join(','), ...lines].join('\n')}\n`;
}

function csvField(value: unknown): string {
  const s = String(value);
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** A mkdir-based lock: parallel tasks of one invocation export into the same file. */
async function withDirLock<T>(lockDir: string, fn: () => T): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      mkdirSync(lockDir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (Date.now() > deadline) throw new Error(`timed out waiting for export lock ${lockDir} (remove it if no export is running)`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return fn();
  } finally {
    rmdirSync(lockDir);
  }
}
