/**
 * Aggregation shared by the tasks: mean of per-sample scores plus their summary statistics, and pass@k. A sample's
 * score is the mean over its generations (`n_samples`; with one generation, that generation's score).
 */
import type { GroupResult, Metrics } from '../results-schema.js';
import { scoreStats } from '../stats.js';
import { passAtK } from './pass-at-k.js';
import type { SampleScore, ScoredSample, TaskAggregate } from './types.js';

export type Score = Metrics[string]['scores'][string];

/** `{value: mean, stats}` of a list of per-sample scores (value 0 and count 0 when the list is empty). */
export function meanScore(values: readonly number[]): Score {
  const stats = scoreStats(values);
  return { value: stats.mean, stats };
}

/** A sample's score: the mean of its generations' scores. */
export function sampleMean(scored: ScoredSample): number {
  return sampleMeanOf(scored, (g) => g.score);
}

/** The mean over a sample's generations of `scoreOf` (a second verdict kept in `details`, say). */
export function sampleMeanOf(scored: ScoredSample, scoreOf: (generation: SampleScore) => number): number {
  const { generations } = scored;
  if (generations.length === 1) return scoreOf(generations[0] as SampleScore);
  let sum = 0;
  for (const g of generations) sum += scoreOf(g);
  return generations.length === 0 ? 0 : sum / generations.length;
}

/** `{accuracy: {scores: {accuracy: {value, stats}}}}`: the metrics of a task scored 1/0 per generation. */
export function accuracyMetrics(scored: readonly ScoredSample[]): Metrics {
  return { accuracy: { scores: { accuracy: meanScore(scored.map(sampleMean)) } } };
}

/**
 * `pass@k` for each k of `ks` that every sample has enough generations for (as HumanEval's code_eval does): the mean
 * over samples of the unbiased estimator, with n = the sample's generations and c = those that scored 1. Metric and
 * score are both named `pass@k`, as bigcode-evaluation-harness reports them.
 */
export function passAtKMetrics(scored: readonly ScoredSample[], ks: readonly number[]): Metrics {
  const metrics: Metrics = {};
  const fewest = scored.length === 0 ? 0 : Math.min(...scored.map((s) => s.generations.length));
  for (const k of [...new Set(ks)].sort((a, b) => a - b)) {
    if (k > fewest) continue;
    const values = scored.map((s) => passAtK(s.generations.length, s.generations.filter((g) => g.score === 1).length, k));
    metrics[`pass@${k}`] = { scores: { [`pass@${k}`]: meanScore(values) } };
  }
  return metrics;
}

/**
 * Accuracy over all samples (micro) plus one group per subset (`sample.subset`, e.g. an MMLU subject or a MATH
 * subject), sorted by name. With `macro`, the task's accuracy metric also carries `macro`: the mean of the
 * per-subset accuracies.
 */
export function accuracyBySubset(scored: readonly ScoredSample[], options: { macro: boolean }): TaskAggregate {
  const all: number[] = [];
  const bySubset = new Map<string, number[]>();
  for (const s of scored) {
    const score = sampleMean(s);
    all.push(score);
    const subset = s.sample.subset ?? '';
    let list = bySubset.get(subset);
    if (!list) bySubset.set(subset, (list = []));
    list.push(score);
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
