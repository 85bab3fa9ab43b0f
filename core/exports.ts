/**
 * Where a finished job's results go (`execution.auto_export.destinations`), as workflows carry it: the
 * destination, its upstream `export.<dest>` settings as plain JSON, and the env the exporter reads
 * (`export.env_vars`: names of variables, resolved by the export activity on the worker). The settings
 * belong to the destination's exporter (exporters/), which validates them where the config is loaded and
 * again in the activity; they never hold a secret (credentials come from env vars). Pure zod.
 */
import { z } from 'zod';
import { EnvRefsSchema } from './env-refs.js';

/** The destinations evalflow exports to (upstream's wandb and gsheets are not implemented). */
export const EXPORT_DESTINATION_KINDS = ['local', 'mlflow'] as const;
export type ExportDestinationKind = (typeof EXPORT_DESTINATION_KINDS)[number];

export const ExportDestinationSchema = z
  .object({
    kind: z.enum(EXPORT_DESTINATION_KINDS),
    settings: z.record(z.string(), z.unknown()).default({}),
    env: EnvRefsSchema.default({}),
  })
  .strict();
export type ExportDestination = z.input<typeof ExportDestinationSchema>;
export type ResolvedExportDestination = z.output<typeof ExportDestinationSchema>;

/**
 * A destination as the export activity may receive it: today's shape, or the local destination of
 * evaluation workflows started by evalflow 0.1 (`{kind: 'local', format, outputDir?, outputFilename?}`),
 * which still call the activity while they finish.
 */
export const ExportDestinationInputSchema = z.union([
  ExportDestinationSchema,
  z
    .object({
      kind: z.literal('local'),
      format: z.enum(['json', 'csv']).default('json'),
      outputDir: z.string().min(1).optional(),
      outputFilename: z.string().min(1).optional(),
    })
    .strict()
    .transform(
      (v1): ResolvedExportDestination => ({
        kind: 'local',
        settings: { format: v1.format, ...(v1.outputDir ? { output_dir: v1.outputDir } : {}), ...(v1.outputFilename ? { output_filename: v1.outputFilename } : {}) },
        env: {},
      }),
    ),
]);
