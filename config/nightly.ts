/**
 * `nightly:` (ours): how `evalflow schedule` judges each night of a suite. The baseline (the last night
 * that passed, or a pinned run), the gate rules of `evalflow compare` (compare/rules.ts), the trend window
 * of the report, and the webhook called when a night does not pass. `evalflow run` ignores the section
 * (with a warning): it belongs to scheduled nightlies.
 */
import { z } from 'zod';
import { GateRulesSchema } from '../compare/rules.js';
import { NIGHTLY_VERDICTS } from '../core/nightly.js';
import { envValueProblem } from './env.js';

const WebhookUrlSchema = z.string().superRefine((value, ctx) => {
  const problem = envValueProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: `${problem} (the URL, or the variable holding it on the worker)` });
  else if (value.startsWith('runtime:')) ctx.addIssue({ code: 'custom', message: "the worker calls the webhook: use 'host:VAR' or 'lit:URL'" });
});

export const NightlyConfigSchema = z
  .object({
    /** `last_pass`: compare with the last night that passed (or `baseline_run` until one has); `pinned`: always with `baseline_run`. */
    baseline: z.enum(['last_pass', 'pinned']).default('last_pass'),
    /** An invocation id (or unique prefix) or a run directory; resolved to its run directory by `schedule create`. */
    baseline_run: z.string().min(1).optional(),
    /** `pinned`: a night that passes becomes the pinned baseline. */
    update_baseline: z.boolean().default(false),
    rules: GateRulesSchema.prefault({}),
    /** Nights shown in the report's trend plots (this one included). */
    trend_nights: z.number().int().min(2).max(365).default(14),
    /** Reports, the nights' history and the pinned baseline; default `<output_dir>/nightly-<schedule name>`. */
    output_dir: z.string().min(1).optional(),
    webhook: z
      .object({
        /** `host:VAR` (read on the worker: webhook URLs are secrets) or `lit:URL`. */
        url: WebhookUrlSchema,
        /** `json`: the whole verdict (with a Slack-compatible `text`); `slack`: `{text}` only. */
        format: z.enum(['json', 'slack']).default('json'),
        on: z.array(z.enum(NIGHTLY_VERDICTS)).min(1).default(['regression', 'incomplete', 'failed']),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((n, ctx) => {
    if (n.baseline === 'pinned' && n.baseline_run === undefined) ctx.addIssue({ code: 'custom', path: ['baseline_run'], message: "required with baseline: pinned (an invocation id or a run directory)" });
    if (n.update_baseline && n.baseline !== 'pinned') ctx.addIssue({ code: 'custom', path: ['update_baseline'], message: 'only with baseline: pinned (last_pass moves the baseline on every pass)' });
  });
export type NightlyConfig = z.output<typeof NightlyConfigSchema>;
