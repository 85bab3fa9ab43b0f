/**
 * The rules that turn a metric's difference into a verdict (shared by `evalflow compare` and the
 * nightly gate): the smallest drop that matters, the significance level, which metrics gate.
 */
import { z } from 'zod';
import { DEFAULT_SEED } from './stats.js';

export const GateRulesSchema = z
  .object({
    /** Smallest drop (absolute, in the metric's units: 0.02 = 2 points of accuracy) that counts as a regression. */
    min_drop: z.number().nonnegative().default(0.02),
    /** Significance level of the paired test; a drop whose p-value is not below it is noise. */
    alpha: z.number().gt(0).lt(1).default(0.05),
    /** Confidence level of the bootstrap interval. */
    confidence: z.number().gt(0).lt(1).default(0.95),
    /** Metrics (flattened `<task>_<metric>[_<score>]` names; `*` matches any run of characters) that decide the verdict. */
    gate: z.array(z.string().min(1)).min(1).default(['*']),
    /** Metrics where lower is better (error rates, latencies); all others: higher is better. */
    lower_is_better: z.array(z.string().min(1)).default([]),
    bootstrap_resamples: z.number().int().min(100).max(1_000_000).default(10_000),
    seed: z.number().int().nonnegative().default(DEFAULT_SEED),
  })
  .strict();
export type GateRules = z.output<typeof GateRulesSchema>;
export type GateRulesInput = z.input<typeof GateRulesSchema>;

/** Whether `name` matches one of the patterns (`*` = any characters; everything else literal). */
export function matchesAny(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => globRegExp(p).test(name));
}

function globRegExp(pattern: string): RegExp {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`);
}
