/**
 * The exporters by destination name (`--dest`, `execution.auto_export.destinations`). A destination
 * upstream has and evalflow does not (wandb, gsheets: nothing real to test them against here) is
 * refused by name, with the ones that exist.
 */
import { ConfigError } from '../config/errors.js';
import { localExporter } from './local.js';
import { mlflowExporter } from './mlflow.js';
import type { Exporter } from './types.js';

const EXPORTERS: Record<string, Exporter<unknown>> = {
  local: localExporter as Exporter<unknown>,
  mlflow: mlflowExporter as Exporter<unknown>,
};

export const EXPORTER_NAMES = Object.keys(EXPORTERS);

export function exporterFor(name: string): Exporter<unknown> {
  const exporter = EXPORTERS[name];
  if (!exporter) throw new ConfigError(`export destination '${name}' is not supported (supported: ${EXPORTER_NAMES.join(', ')})`, '--dest');
  return exporter;
}

/** Validates `export.<name>` settings with the exporter's schema; errors name the key path (exit 2). */
export function exportSettings(name: string, raw: unknown): unknown {
  const parsed = exporterFor(name).settingsSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const keys = issue?.code === 'unrecognized_keys' ? `.${issue.keys.join(',')}` : '';
    const path = `export.${name}${issue?.path.length ? `.${issue.path.join('.')}` : ''}${keys}`;
    throw new ConfigError(`${path}: ${issue?.message ?? 'invalid'}`, path);
  }
  return parsed.data;
}
