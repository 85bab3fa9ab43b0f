/**
 * Local exporter, in two layouts, both upserts (re-exports and retried activities never duplicate):
 * - `jobs` (evalflow's, the default): one row per job, keyed by job id, in `processed_results.json`
 *   (and `.csv` on request) in the run directory;
 * - `upstream` (nemo-evaluator-launcher's): each job's files copied to `<output_dir>/<inv>/<job id>/`
 *   with `job_metadata.json`, and `<output_dir>/<inv>/processed_results.<fmt>` as upstream writes it:
 *   JSON `{export_timestamp, benchmarks: {<task>: {models: {<model>: [entry]}}}}`, CSV with the columns
 *   Model Name, Harness, Task Name, Executor, Container, Invocation ID, Job ID and one per metric.
 */
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic, writeJsonAtomic } from '../common/files.js';
import { flattenMetrics, readResultsFile } from '../harness/results-schema.js';
import { CommonExportSettingsSchema, jobFiles, jobMetrics } from './common.js';
import type { ExportJob, ExportOutcome, Exporter } from './types.js';

export interface ExportRow {
  invocation_id: string;
  job_id: string;
  task: string;
  model: string;
  results_path: string;
  /** null: the harness did not count its samples (upstream's containers). */
  samples: { total: number; scored: number; errors: number; cached: number } | null;
  metrics: Record<string, number>;
}

/** One job's row, from its `artifacts/results.yml` (all metrics, per-subset groups included). */
export function exportRow(job: Pick<ExportJob, 'invocationId' | 'jobId' | 'taskName' | 'model' | 'jobDir'>): ExportRow {
  const resultsPath = join(job.jobDir, 'artifacts', 'results.yml');
  const results = readResultsFile(resultsPath);
  return {
    invocation_id: job.invocationId,
    job_id: job.jobId,
    task: job.taskName,
    model: job.model,
    results_path: resultsPath,
    samples: results.samples ?? null,
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
      [r.invocation_id, r.job_id, r.task, r.model, r.samples?.total ?? '', r.samples?.errors ?? '', ...metricNames.map((m) => r.metrics[m] ?? '')]
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

export const LocalSettingsSchema = CommonExportSettingsSchema.extend({
  /** Default: the run directory (`jobs`), the execution's output_dir (`upstream`). */
  output_dir: z.string().min(1).optional(),
  format: z.enum(['json', 'csv']).default('json'),
  output_filename: z.string().min(1).optional(),
  layout: z.enum(['jobs', 'upstream']).default('jobs'),
}).strict();
export type LocalSettings = z.output<typeof LocalSettingsSchema>;

/** Where the local exporter writes a job's export: the run directory (`jobs`) or the execution's output_dir (`upstream`), unless set. */
export function localExportDir(settings: LocalSettings, jobDir: string): string {
  return settings.output_dir ?? (settings.layout === 'upstream' ? dirname(dirname(jobDir)) : dirname(jobDir));
}

export const localExporter: Exporter<LocalSettings> = {
  name: 'local',
  settingsSchema: LocalSettingsSchema,
  async export(jobs, settings) {
    const outcomes: ExportOutcome[] = [];
    if (settings.layout === 'upstream') {
      for (const job of jobs) outcomes.push(await exportUpstreamLayout(job, settings));
      return outcomes;
    }
    // One file per run directory (jobs of one invocation share it).
    const byDir = new Map<string, ExportJob[]>();
    for (const job of jobs) {
      const dir = localExportDir(settings, job.jobDir);
      byDir.set(dir, [...(byDir.get(dir) ?? []), job]);
    }
    for (const [outputDir, group] of byDir) {
      const file = await exportLocal(group.map(exportRow), { outputDir, format: settings.format, filename: settings.output_filename });
      outcomes.push(...group.map((job) => ({ jobId: job.jobId, status: 'exported' as const, where: file })));
    }
    return outcomes;
  },
};

const UPSTREAM_CSV_COLUMNS = ['Model Name', 'Harness', 'Task Name', 'Executor', 'Container', 'Invocation ID', 'Job ID'];

interface UpstreamSummary {
  export_timestamp: string;
  benchmarks: Record<string, { models: Record<string, Array<Record<string, unknown>>> }>;
}

async function exportUpstreamLayout(job: ExportJob, settings: LocalSettings): Promise<ExportOutcome> {
  const outputDir = localExportDir(settings, job.jobDir);
  const invocationDir = join(outputDir, job.invocationId);
  const jobExportDir = join(invocationDir, job.jobId);
  for (const file of jobFiles(job.jobDir, settings)) {
    mkdirSync(dirname(join(jobExportDir, file.relativePath)), { recursive: true });
    copyFileSync(file.path, join(jobExportDir, file.relativePath));
  }
  const now = new Date().toISOString();
  writeJsonAtomic(join(jobExportDir, 'job_metadata.json'), { invocation_id: job.invocationId, job_id: job.jobId, executor: job.executor, timestamp: now });
  const metrics = jobMetrics(job.jobDir, settings.log_metrics);
  const dot = job.taskName.indexOf('.');
  const harness = dot > 0 ? job.taskName.slice(0, dot) : 'unknown';
  const benchmark = dot > 0 ? job.taskName.slice(dot + 1) : job.taskName;
  const base = join(invocationDir, settings.output_filename ?? `processed_results.${settings.format}`);
  const file = await withFileLock(`${base}.lock`, () => {
    if (settings.format === 'json') {
      const data: UpstreamSummary = existsSync(base) ? (JSON.parse(readFileSync(base, 'utf8')) as UpstreamSummary) : { export_timestamp: now, benchmarks: {} };
      const entries = ((data.benchmarks[benchmark] ??= { models: {} }).models[job.model] ??= []);
      const entry = { invocation_id: job.invocationId, job_id: job.jobId, harness, container: null, scores: metrics, timestamp: now, executor: job.executor };
      const index = entries.findIndex((e) => e.invocation_id === job.invocationId && e.job_id === job.jobId);
      if (index < 0) entries.push(entry);
      else entries[index] = entry;
      data.export_timestamp = now;
      writeJsonAtomic(base, data);
    } else {
      writeFileAtomic(base, upsertUpstreamCsv(existsSync(base) ? readFileSync(base, 'utf8') : '', job, harness, benchmark, metrics));
    }
    return base;
  });
  return { jobId: job.jobId, status: 'exported', where: file };
}

/** Upstream's CSV: metric columns named without the `<task>_` prefix, rows keyed by (invocation, job). */
export function upsertUpstreamCsv(existing: string, job: ExportJob, harness: string, benchmark: string, metrics: Record<string, number>): string {
  const lines = existing.split(/\r?\n/).filter((l) => l !== '').map(parseCsvLine);
  let header = lines[0] ?? [...UPSTREAM_CSV_COLUMNS];
  const rows = lines.slice(1);
  const prefix = `${benchmark}_`;
  const columnOf = (key: string) => (key.startsWith(prefix) ? key.slice(prefix.length) : key);
  const newColumns = [...new Set(Object.keys(metrics).map(columnOf))].filter((c) => !header.includes(c)).sort();
  header = [...header, ...newColumns];
  for (const row of rows) while (row.length < header.length) row.push('');
  const byColumn = new Map(Object.entries(metrics).map(([k, v]) => [columnOf(k), v]));
  const row = [job.model, harness, benchmark, job.executor, '', job.invocationId, job.jobId, ...header.slice(UPSTREAM_CSV_COLUMNS.length).map((c) => String(byColumn.get(c) ?? ''))];
  const index = rows.findIndex((r) => r[5] === job.invocationId && r[6] === job.jobId);
  if (index < 0) rows.push(row);
  else rows[index] = row;
  return `${[header, ...rows].map((r) => r.map(csvField).join(',')).join('\n')}\n`;
}

function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(field);
      field = '';
    } else field += c;
  }
  out.push(field);
  return out;
}
