/**
 * What every exporter shares, as upstream defines it: the common keys (`copy_logs`, `copy_artifacts`,
 * `only_required`, `log_metrics`), which files of a job count as its artifacts, and the job's metrics
 * flattened to `<task>_<metric>[_<score>]`.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { z } from 'zod';
import { flattenMetrics, readResultsFile } from '../harness/results-schema.js';

export const CommonExportSettingsSchema = z.object({
  copy_logs: z.boolean().default(false),
  copy_artifacts: z.boolean().default(true),
  only_required: z.boolean().default(true),
  /** Keep only metrics whose flattened name contains one of these (empty: all). */
  log_metrics: z.array(z.string().min(1)).default([]),
});
export type CommonExportSettings = z.output<typeof CommonExportSettingsSchema>;

/** The files upstream calls required; with `only_required` only these are exported. */
export const REQUIRED_ARTIFACTS = ['results.yml', 'eval_factory_metrics.json', 'run_config.yml', 'metadata.yaml'] as const;
/** Never exported: the response cache and lock or database files. */
const EXCLUDED = [/(^|\/)cache(\/|$)/, /\.db$/, /\.lock$/, /\.tmp$/];

export interface JobFile {
  path: string;
  /** `artifacts/results.yml`, `logs/client_stdout.log`, … */
  relativePath: string;
}

/** The job's files to export under the common keys. */
export function jobFiles(jobDir: string, settings: CommonExportSettings): JobFile[] {
  const files: JobFile[] = [];
  const artifacts = join(jobDir, 'artifacts');
  if (settings.copy_artifacts) {
    if (settings.only_required) {
      for (const name of REQUIRED_ARTIFACTS) {
        const path = join(artifacts, name);
        if (existsSync(path)) files.push({ path, relativePath: `artifacts/${name}` });
      }
    } else {
      files.push(...walk(artifacts, jobDir));
    }
  }
  // Upstream: logs go along when asked, or whenever everything is exported.
  if (settings.copy_logs || (settings.copy_artifacts && !settings.only_required)) files.push(...walk(join(jobDir, 'logs'), jobDir));
  return files;
}

function walk(dir: string, root: string): JobFile[] {
  if (!existsSync(dir)) return [];
  const out: JobFile[] = [];
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    const relativePath = relative(root, path);
    if (EXCLUDED.some((re) => re.test(relativePath))) continue;
    if (statSync(path).isDirectory()) out.push(...walk(path, root));
    else out.push({ path, relativePath });
  }
  return out;
}

/** All metrics of the job's results.yml (per-subset groups included), filtered by `log_metrics`. */
export function jobMetrics(jobDir: string, logMetrics: readonly string[]): Record<string, number> {
  const results = readResultsFile(join(jobDir, 'artifacts', 'results.yml'));
  const all = flattenMetrics(results.results);
  if (logMetrics.length === 0) return all;
  return Object.fromEntries(Object.entries(all).filter(([key]) => logMetrics.some((m) => key.includes(m))));
}
