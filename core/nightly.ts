/**
 * Nightly regression runs: schedule and workflow names, the verdicts a night can end with, and the
 * shapes the nightly workflow and its activities exchange. Pure: imported by workflows, activities and the CLI.
 */
import { z } from 'zod';

export const NIGHTLY_WORKFLOW = 'NightlyRegressionWorkflow';

/** A schedule's name: part of its id, its workflow ids and its directory. */
export const SCHEDULE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const SCHEDULE_PREFIX = 'evalflow-nightly-';

export const scheduleIdOf = (name: string): string => `${SCHEDULE_PREFIX}${name}`;
/** Temporal appends the scheduled time to this id for each night it starts. */
export const nightlyWorkflowIdOf = (name: string): string => `${SCHEDULE_PREFIX}${name}`;
export const scheduleNameOf = (scheduleId: string): string | null => (scheduleId.startsWith(SCHEDULE_PREFIX) ? scheduleId.slice(SCHEDULE_PREFIX.length) : null);

/** What a night can end as: `no_baseline` is a complete night with nothing to compare with (it becomes the baseline). */
export const NIGHTLY_VERDICTS = ['pass', 'regression', 'incomplete', 'failed', 'no_baseline'] as const;
export type NightlyVerdict = (typeof NIGHTLY_VERDICTS)[number];

/** A run to compare with: its run directory, and its invocation id when known. */
export const BaselineRefSchema = z
  .object({
    label: z.string().min(1),
    invocationId: z.string().nullable(),
    runDir: z.string().startsWith('/'),
  })
  .strict();
export type BaselineRef = z.infer<typeof BaselineRefSchema>;

/** The input of every night (the schedule's action): the same each night; ids and directories come from the night itself. */
export const NightlyInputSchema = z
  .object({
    schedule: z.string().regex(SCHEDULE_NAME_PATTERN),
    /** The resolved launcher config (`run --dry-run --json` shows the same); validated again by the planning activity. */
    config: z.record(z.string(), z.unknown()),
    /** `nightly.baseline_run`, resolved to its run directory when the schedule was created. */
    baseline: BaselineRefSchema.optional(),
    /** Payloads are encrypted: the child invocation's search attributes then carry no config value. */
    confidential: z.boolean().default(false),
  })
  .strict();
export type NightlyInput = z.input<typeof NightlyInputSchema>;

/** One regressed metric, as the gate reports it. */
export interface NightlyRegression {
  job: string;
  metric: string;
  a: number | null;
  b: number | null;
  delta: number | null;
  pValue: number | null;
}

/** What the gate decided about a night, and where its report is. */
export interface NightlyGate {
  verdict: NightlyVerdict;
  baseline: BaselineRef | null;
  regressions: NightlyRegression[];
  reportJson: string;
  reportHtml: string;
  /** One line for people (the webhook's Slack `text`, the workflow's details). */
  text: string;
  /** The config's webhook wants to hear about this verdict. */
  notify: boolean;
}

export interface NightlyResult extends NightlyGate {
  schedule: string;
  invocationId: string;
  runDir: string;
}
