/**
 * Local exporter: upserts one row per job into `processed_results.json` (and `.csv` on request) in an
 * output directory, keyed by job id so re-exports and retried activities never duplicate rows.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../common/files.js';
import { flattenMetrics, readResultsFile } from '../harness/results-schema.js';

export interface ExportRow {
  invocation_id: string;
  job_id: string;
  task: string;
  model: string;
  results_path: string;
  samples: { total: number; scored: number; errors: number; cached: number };
  metrics: Record<string, number>;
}

/** One job's row, from its `artifacts/results.yml` (all metrics, per-subset groups included). */
export function exportRow(job: { invocationId: string; jobId: string; taskName: string; model: string; jobDir: string }): ExportRow {
  const resultsPath = join(job.jobDir, 'artifacts', 'results.yml');
  const results = readResultsFile(resultsPath);
  return {
    invocation_id: job.invocationId,
    job_id: job.jobId,
    task: job.taskName,
    model: job.model,
    results_path: resultsPath,
    samples: results.samples,
    metrics: flattenMetrics(results.results),
  };
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
  return withFileLock(`${base}.lock`, () => {
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
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/**
 * An exclusive lock file (parallel tasks of one invocation export into the same file). It records its
 * owner's pid, so a lock left by a killed worker is broken instead of blocking every later export.
 */
async function withFileLock<T>(lockFile: string, fn: () => T): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const fd = openSync(lockFile, 'wx');
      writeSync(fd, `${process.pid} ${Date.now()}\n`);
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (lockIsStale(lockFile)) {
        rmSync(lockFile, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for export lock ${lockFile}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lockFile, { force: true });
  }
}

function lockIsStale(lockFile: string): boolean {
  let content: string;
  try {
    content = readFileSync(lockFile, 'utf8').trim();
  } catch {
    return false; // just released: try again
  }
  if (!content) return false; // being written
  const [owner = Number.NaN, since = Number.NaN] = content.split(' ').map(Number);
  if (!Number.isInteger(owner) || owner <= 0 || !(Date.now() - since <= 120_000)) return true;
  try {
    process.kill(owner, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
