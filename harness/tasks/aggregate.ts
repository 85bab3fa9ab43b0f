/** Accuracy-style aggregation shared by the tasks: mean of per-sample scores plus their summary statistics. */
import type { GroupResult, Metrics } from '../results-schema.js';
import { scoreStats } from '../stats.js';
import type { ScoredSample, TaskAggregate } from './types.js';

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

/**
 * Accuracy over all samples (micro) plus one group per subset (`sample.subset`, e.g. an MMLU subject or a MATH
 * subject), sorted by name. With `macro`, the task's accuracy metric also carries `macro`: the mean of the
 * per-subset accuracies.
 */
export function accuracyBySubset(scored: readonly ScoredSample[], options: { macro: boolean }): TaskAggregate {
  const all: number[] = [];
  const bySubset = new Map<string, number[]>();
  for (const { sample, score } of scored) {
    all.push(score.score);
    const subset = sample.subset ?? '';
    let list = bySubset.get(subset);
    if (!list) bySubset.set(subset, (list = []));
    list.push(score.score);
  }
  const groups: Record<string, GroupResult> = {};
  const subsetAccuracies: number[] = [];
  for (const subset of [...bySubset.keys()].sort()) {
    const accuracy = meanScore(bySubset.get(subset) ?? []);
    groups[subset] = { metrics: { accuracy: { scores: { accuracy } } } };
    subsetAccuracies.push(accuracy.value);
  }
  const scores: Metrics[string]['scores'] = { accuracy: meanScore(all) };
  if (options.macro) {
    const macro = subsetAccuracies.length === 0 ? 0 : subsetAccuracies.reduce((a, b) => a + b, 0) / subsetAccuracies.length;
    scores.macro = { value: macro };
  }
  const metrics: Metrics = { accuracy: { scores } };
  return { metrics, group: { metrics, groups } };
}
