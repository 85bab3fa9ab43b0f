/**
 * The exporter plug-in contract: an exporter takes finished jobs (their directories on this machine)
 * and its own settings (validated by its zod schema, upstream's `export.<dest>` keys), and reports per
 * job whether it exported, skipped (already there) or failed. Exporting twice never duplicates.
 */
import type { z } from 'zod';

export interface ExportJob {
  invocationId: string;
  jobId: string;
  /** Full task name, e.g. `evalflow.gsm8k`. */
  taskName: string;
  model: string;
  /** `<run dir>/<task>.<n>`, holding `artifacts/` and `logs/`. */
  jobDir: string;
  /** Upstream's executor word (`local`, `slurm`, …). */
  executor: string;
}

export interface ExportOutcome {
  jobId: string;
  status: 'exported' | 'skipped' | 'failed';
  /** Where it went: a file, a run URL. */
  where: string;
  message?: string;
}

export interface ExportContext {
  /** Where credentials are read (MLFLOW_TRACKING_TOKEN, …): the worker's or the CLI's environment. */
  env: Record<string, string | undefined>;
}

export interface Exporter<Settings> {
  readonly name: string;
  /** Upstream's `export.<name>` keys (snake_case), with their defaults. */
  readonly settingsSchema: z.ZodType<Settings, unknown>;
  export(jobs: ExportJob[], settings: Settings, ctx: ExportContext): Promise<ExportOutcome[]>;
}

/**
 * An export that failed. `permanent`: retrying cannot help (bad settings, a server that refuses the
 * request); otherwise (a server down or overloaded) a retry may succeed.
 */
export class ExportError extends Error {
  override name = 'ExportError';
  constructor(
    message: string,
    readonly permanent = true,
  ) {
    super(message);
  }
}
