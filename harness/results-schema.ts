/**
 * The harness results contract: `artifacts/results.yml` as written by the built-in harness and read back by
 * collectResults, the exporters and nightly comparisons. Field layout follows upstream nemo-evaluator
 * (tasks → metrics → scores → value + stats). `evalflow_results_version` versions the contract; a reader
 * accepts every version it knows and rejects newer ones with a clear error.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';

export const RESULTS_FORMAT_VERSION = 1;

// Written out rather than built with .partial(): zod's partial() clones the schema at import, which
// costs the harness ~15 ms of start-up.
export const ScoreStatsSchema = z.object({
  count: z.number().int().nonnegative(),
  sum: z.number().optional(),
  sum_squared: z.number().optional(),
  min: z.number().optional(),
  max: z.number().optional(),
  mean: z.number(),
  variance: z.number().optional(),
  stddev: z.number().optional(),
  stderr: z.number(),
});
export type ScoreStats = z.infer<typeof ScoreStatsSchema>;

export const ScoreSchema = z.object({ value: z.number(), stats: ScoreStatsSchema.optional() });
export const MetricSchema = z.object({ scores: z.record(z.string(), ScoreSchema) });
export const MetricsSchema = z.record(z.string(), MetricSchema);
export type Metrics = z.infer<typeof MetricsSchema>;

export const TaskResultSchema = z.object({ metrics: MetricsSchema });

export interface GroupResult {
  metrics: Metrics;
  groups?: Record<string, GroupResult> | undefined;
}
export const GroupResultSchema: z.ZodType<GroupResult> = z.lazy(() =>
  z.object({ metrics: MetricsSchema, groups: z.record(z.string(), GroupResultSchema).optional() }),
);

/** Sample accounting: every sample is scored, or counted as an error, never silently dropped. */
export const SampleCountsSchema = z.object({
  total: z.number().int().nonnegative(),
  scored: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
  cached: z.number().int().nonnegative(),
  /** Samples never sent because the run stopped early (its error budget, `max_error_rate`, was spent). */
  not_run: z.number().int().nonnegative().optional(),
});
export type SampleCounts = z.infer<typeof SampleCountsSchema>;

/**
 * evalflow's harness writes `evalflow_results_version` and `samples`; upstream's harness containers write
 * neither (their file is `{git_hash, command, config, target, results, metadata}`), and are read as well:
 * their sample counts are then unknown, never invented.
 */
export const ResultsFileSchema = z
  .object({
    evalflow_results_version: z.number().int().positive().optional(),
    command: z.string().optional(),
    git_hash: z.string().nullish(),
    config: z.record(z.string(), z.unknown()).optional(),
    target: z.record(z.string(), z.unknown()).optional(),
    results: z.object({
      tasks: z.record(z.string(), TaskResultSchema),
      groups: z.record(z.string(), GroupResultSchema).optional(),
    }),
    samples: SampleCountsSchema.optional(),
    metadata: z.record(z.string(), z.unknown()).nullish(),
  })
  .superRefine((file, ctx) => {
    if (file.evalflow_results_version !== undefined && file.samples === undefined) {
      ctx.addIssue({ code: 'custom', path: ['samples'], message: 'required in evalflow results (evalflow_results_version is set)' });
    }
  });
export type ResultsFile = z.infer<typeof ResultsFileSchema>;
/** What evalflow's own harness writes: versioned, with its sample counts. */
export type EvalflowResultsFile = ResultsFile & { evalflow_results_version: number; samples: SampleCounts };

export class ResultsFormatError extends Error {
  override name = 'ResultsFormatError';
}

/** Validates a parsed results.yml; rejects versions newer than this reader. */
export function parseResultsFile(data: unknown, source = 'results.yml'): ResultsFile {
  const parsed = ResultsFileSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? issue.path.join('.') || '(root)' : '(root)';
    throw new ResultsFormatError(`${source}: invalid at ${where}: ${issue?.message ?? 'unknown error'}`);
  }
  if ((parsed.data.evalflow_results_version ?? 0) > RESULTS_FORMAT_VERSION) {
    throw new ResultsFormatError(
      `${source}: results format version ${parsed.data.evalflow_results_version} is newer than this evalflow understands (${RESULTS_FORMAT_VERSION}); upgrade evalflow`,
    );
  }
  return parsed.data;
}

/** Reads and validates a results.yml file. */
export function readResultsFile(path: string): ResultsFile {
  return parseResultsFile(parse(readFileSync(path, 'utf8')), path);
}

/**
 * Flattens task metrics to `<task>_<metric>[_<score>]` keys, as upstream's exporters do (the score name is
 * dropped when it equals the metric name). Groups (e.g. MMLU's per-subject breakdown) are flattened the same
 * way under their own names unless `groups: false`.
 */
export function flattenMetrics(results: ResultsFile['results'], opts: { groups?: boolean } = {}): Record<string, number> {
  const flat: Record<string, number> = {};
  const put = (key: string, value: number) => {
    if (key in flat && flat[key] !== value) throw new ResultsFormatError(`metric key collision: ${key}`);
    flat[key] = value;
  };
  const visit = (prefix: string, metrics: Metrics) => {
    for (const [metric, { scores }] of Object.entries(metrics)) {
      for (const [score, { value }] of Object.entries(scores)) {
        put(score === metric ? `${prefix}_${metric}` : `${prefix}_${metric}_${score}`, value);
      }
    }
  };
  for (const [task, { metrics }] of Object.entries(results.tasks)) visit(task, metrics);
  const visitGroup = (name: string, group: GroupResult) => {
    visit(name, group.metrics);
    for (const [sub, g] of Object.entries(group.groups ?? {})) visitGroup(`${name}_${sub}`, g);
  };
  if (opts.groups !== false) for (const [name, group] of Object.entries(results.groups ?? {})) visitGroup(name, group);
  return flat;
}
