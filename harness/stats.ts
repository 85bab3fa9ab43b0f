import type { ScoreStats } from './results-schema.js';

/** Summary statistics of per-sample scores (sample variance, standard error of the mean). */
export function scoreStats(values: readonly number[]): ScoreStats {
  const count = values.length;
  let sum = 0;
  let sumSquared = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    sum += v;
    sumSquared += v * v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (count === 0) return { count: 0, sum: 0, sum_squared: 0, min: 0, max: 0, mean: 0, variance: 0, stddev: 0, stderr: 0 };
  const mean = sum / count;
  const variance = count > 1 ? Math.max(0, (sumSquared - count * mean * mean) / (count - 1)) : 0;
  const stddev = Math.sqrt(variance);
  return { count, sum, sum_squared: sumSquared, min, max, mean, variance, stddev, stderr: stddev / Math.sqrt(count) };
}
