/**
 * `evalflow export ID… --dest local|mlflow [-o export.<dest>.<key>=<value>]…`: each finished job of the
 * named invocations or jobs through the destination's exporter (exporters/registry.ts), with
 * upstream's flags (`--format`, `--output-dir`, `--output-filename`, `--copy-logs`, `--copy-artifacts`,
 * `--only-required`, `--log-metrics`). Exporting again never duplicates.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { parse } from 'yaml';
import { ConfigError } from '../../config/errors.js';
import { exporterFor, exportSettings } from '../../exporters/registry.js';
import type { ExportJob } from '../../exporters/types.js';
import { isSelected, resolveId } from '../ids.js';
import type { Output } from '../output.js';
import { invocationStatus } from '../status.js';

export interface ExportOptions {
  dest: string;
  format?: 'json' | 'csv';
  outputDir?: string;
  outputFilename?: string;
  copyLogs?: boolean;
  copyArtifacts?: boolean;
  onlyRequired?: boolean;
  logMetrics?: string[];
  /** `export.<dest>.<key>=<value>` (value parsed as YAML). */
  override?: string[];
}

/** The destination's settings from the flags and `-o` overrides, validated by its exporter. */
export function settingsFromOptions(opts: ExportOptions): unknown {
  const raw: Record<string, unknown> = {};
  const prefix = `export.${opts.dest}.`;
  for (const item of opts.override ?? []) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? '' : item.slice(0, eq);
    if (!key.startsWith(prefix) || key.length === prefix.length) throw new ConfigError(`-o ${item}: expected ${prefix}<key>=<value>`, '-o');
    raw[key.slice(prefix.length)] = parse(item.slice(eq + 1)) as unknown;
  }
  if (opts.format !== undefined) raw.format = opts.format;
  if (opts.outputDir !== undefined) raw.output_dir = opts.outputDir;
  if (opts.outputFilename !== undefined) raw.output_filename = opts.outputFilename;
  if (opts.copyLogs) raw.copy_logs = true;
  if (opts.copyArtifacts) raw.copy_artifacts = true;
  if (opts.onlyRequired) raw.only_required = true;
  if (opts.logMetrics?.length) raw.log_metrics = opts.logMetrics;
  return exportSettings(opts.dest, raw);
}

export async function exportCommand(client: Client, ids: string[], opts: ExportOptions, io: Output): Promise<number> {
  const exporter = exporterFor(opts.dest);
  const settings = settingsFromOptions(opts);
  const jobs: ExportJob[] = [];
  for (const raw of ids) {
    const id = await resolveId(client, raw);
    const status = await invocationStatus(client, id.invocationId);
    for (const task of status.tasks) {
      if (!isSelected(task, id)) continue;
      if (!existsSync(join(task.jobDir, 'artifacts', 'results.yml'))) {
        io.err(`${task.jobId}: no results yet (${task.stage}); skipped\n`);
        continue;
      }
      jobs.push({ invocationId: id.invocationId, jobId: task.jobId, taskName: task.taskName, model: status.model, jobDir: task.jobDir, executor: 'local' });
    }
  }
  if (jobs.length === 0) return 1;
  const outcomes = await exporter.export(jobs, settings, { env: process.env });
  for (const o of outcomes) io.out(`${o.jobId}: ${o.status} → ${o.where}${o.message ? ` (${o.message})` : ''}\n`);
  return outcomes.some((o) => o.status === 'failed') ? 1 : 0;
}
