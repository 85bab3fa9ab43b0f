/**
 * The paired statistics against values computed independently with SciPy 1.17.1 and statsmodels 0.15.0
 * (test/fixtures/stats/reference.py, which says how to re-create reference.json), plus the properties
 * SciPy cannot check (fixed-seed determinism, stratified bootstrap).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  binomialCdfHalf,
  mcnemarExact,
  mcnemarFromPairs,
  normalCdf,
  pairedBootstrap,
  quantile,
  seededRandom,
  wilcoxonSignedRank,
} from '../../compare/stats.js';
import { packageRoot } from '../../common/paths.js';

interface Reference {
  mcnemar: Array<{ aOnly: number; bOnly: number; pValue: number; binomtest: number }>;
  binomialCdfHalf: Array<{ k: number; n: number; cdf: number }>;
  normalCdf: Array<{ x: number; cdf: number }>;
  wilcoxon: Array<{ name: string; a: number[]; b: number[]; method: string; statistic: number; pValue: number }>;
  bootstrap: Array<{ name: string; a: number[]; b: number[]; delta: number; low: number; high: number; standardError: number }>;
}

const reference = JSON.parse(readFileSync(join(packageRoot(), 'test', 'fixtures', 'stats', 'reference.json'), 'utf8')) as Reference;

function relativeError(actual: number, expected: number): number {
  return expected === 0 ? Math.abs(actual) : Math.abs(actual - expected) / Math.abs(expected);
}

describe('exact McNemar', () => {
  it.each(reference.mcnemar)('b=$aOnly c=$bOnly matches statsmodels and scipy.binomtest', ({ aOnly, bOnly, pValue, binomtest }) => {
    const result = mcnemarExact(aOnly, bOnly);
    expect(relativeError(result.pValue, pValue)).toBeLessThan(1e-10);
    expect(relativeError(result.pValue, binomtest)).toBeLessThan(1e-10);
  });

  it('counts discordant pairs from 0/1 scores and refuses other scores', () => {
    expect(mcnemarFromPairs([1, 1, 0, 0, 1, 0], [1, 0, 1, 1, 0, 0])).toMatchObject({ aOnly: 2, bOnly: 2, pValue: 1 });
    expect(mcnemarFromPairs([1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0, 1])).toMatchObject({ aOnly: 7, bOnly: 0 });
    expect(() => mcnemarFromPairs([0.5], [1])).toThrow(/0\/1/);
    expect(() => mcnemarExact(-1, 2)).toThrow(/non-negative/);
  });
});

describe('binomial and normal CDFs', () => {
  it.each(reference.binomialCdfHalf)('P(X <= $k), X ~ Bin($n, 1/2)', ({ k, n, cdf }) => {
    expect(relativeError(binomialCdfHalf(k, n), cdf)).toBeLessThan(1e-9);
  });

  it.each(reference.normalCdf)('Phi($x)', ({ x, cdf }) => {
    expect(relativeError(normalCdf(x), cdf)).toBeLessThan(1e-12);
  });
});

describe('Wilcoxon signed-rank', () => {
  it.each(reference.wilcoxon)('$name matches scipy.stats.wilcoxon', ({ a, b, method, statistic, pValue }) => {
    const result = wilcoxonSignedRank(a, b);
    expect(result.method).toBe(method === 'exact' ? 'exact' : 'normal');
    expect(result.statistic).toBe(statistic);
    expect(relativeError(result.pValue, pValue)).toBeLessThan(1e-9);
  });

  it('has p = 1 when nothing changed and is symmetric in A and B', () => {
    expect(wilcoxonSignedRank([0.1, 0.2], [0.1, 0.2])).toMatchObject({ n: 0, pValue: 1 });
    const { a, b } = reference.wilcoxon[0] as Reference['wilcoxon'][number];
    expect(wilcoxonSignedRank(b, a).pValue).toBe(wilcoxonSignedRank(a, b).pValue);
  });
});

describe('paired bootstrap', () => {
  it.each(reference.bootstrap)('$name: percentile interval agrees with scipy.stats.bootstrap', ({ a, b, delta, low, high, standardError }) => {
    const result = pairedBootstrap(a, b, { resamples: 20_000 });
    expect(result.delta).toBeCloseTo(delta, 12);
    // Different PRNGs: the end points agree up to Monte Carlo error (a fraction of the standard error).
    expect(Math.abs(result.interval.low - low)).toBeLessThan(0.1 * standardError);
    expect(Math.abs(result.interval.high - high)).toBeLessThan(0.1 * standardError);
    expect(result.interval.level).toBe(0.95);
  });

  it('is deterministic for a seed and changes with it', () => {
    const { a, b } = reference.bootstrap[1] as Reference['bootstrap'][number];
    const first = pairedBootstrap(a, b, { resamples: 2000, seed: 42 });
    expect(pairedBootstrap(a, b, { resamples: 2000, seed: 42 })).toEqual(first);
    expect(pairedBootstrap(a, b, { resamples: 2000, seed: 43 }).interval.low).not.toBe(first.interval.low);
  });

  it('gives a small p-value for a clear shift and p = 1 for none', () => {
    const a = Array.from({ length: 100 }, (_, i) => (i % 10) / 10);
    expect(pairedBootstrap(a, a.map((x) => x + 0.1)).pValue).toBeLessThan(0.001);
    expect(pairedBootstrap(a, a).pValue).toBe(1);
    // 0/1 scores, 40 of 100 flipped from right to wrong: far outside the interval of no change.
    const right = Array.from({ length: 100 }, () => 1);
    const worse = right.map((_, i) => (i < 40 ? 0 : 1));
    const result = pairedBootstrap(right, worse);
    expect(result.delta).toBeCloseTo(-0.4, 12);
    expect(result.interval.high).toBeLessThan(0);
    expect(result.pValue).toBeLessThan(0.001);
  });

  it('stratified: the statistic is the macro mean over strata, resampled within each stratum', () => {
    // Stratum x: 2 pairs, difference +1 each; stratum y: 8 pairs, difference 0. Micro mean 0.2, macro 0.5.
    const a = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    const b = [1, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    const strata = ['x', 'x', 'y', 'y', 'y', 'y', 'y', 'y', 'y', 'y'];
    expect(pairedBootstrap(a, b).delta).toBeCloseTo(0.2, 12);
    const macro = pairedBootstrap(a, b, { strata, resamples: 500 });
    expect(macro.delta).toBeCloseTo(0.5, 12);
    // Every stratum's differences are constant, so every resample gives exactly 0.5.
    expect(macro.interval.low).toBeCloseTo(0.5, 12);
    expect(macro.interval.high).toBeCloseTo(0.5, 12);
  });

  it('rejects unpaired or empty input', () => {
    expect(() => pairedBootstrap([1], [1, 0])).toThrow(/length/);
    expect(() => pairedBootstrap([], [])).toThrow(/no paired/);
    expect(() => pairedBootstrap([1], [1], { level: 1 })).toThrow(/level/);
  });
});

describe('helpers', () => {
  it('seeded PRNG: uniform-looking floats in [0, 1), reproducible', () => {
    const random = seededRandom(1);
    const values = Array.from({ length: 10_000 }, random);
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values)).toBeLessThan(1);
    expect(values.reduce((s, v) => s + v, 0) / values.length).toBeCloseTo(0.5, 1);
    expect(seededRandom(1)()).toBe(values[0]);
  });

  it('quantile interpolates linearly like numpy', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4], 0.025)).toBeCloseTo(1.075, 12);
    expect(quantile([5], 0.9)).toBe(5);
  });
});
