/** Accuracy-style aggregation shared by the tasks: mean of per-sample scores plus their summary statistics. */
import type { Metrics } from '../results-schema.js';
import { scoreStats } from '../stats.js';
import type { ScoredSample } from './types.js';

export type Score = Metrics[string]['scores'][string];

/** `{value: mean, stats}` of a list of per-sample scores (value 0 and count 0 when the list is empty). */
export function meanScore(values: readonly number[]): Score {
  const stats = scoreStats(values);
  return { value: stats.mean, stats };
}

/** `{accuracy: {scores: {accuracy: {value, stats}}}}`: the metrics of a task scored 1/0 per sample. */
export function accuracyMetrics(scored: readonly ScoredSample[]): Metrics {
  return { accuracy: { scores: { accuracy: meanScore(scored.map((s) => s.score.score)) } } };
}
