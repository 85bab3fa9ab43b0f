/**
 * Paired statistics for comparing two runs of the same samples (pure; no I/O).
 *
 * - `pairedBootstrap`: percentile interval and p-value of the mean difference B − A, resampling pairs
 *   (within strata when given, so a macro average over subsets keeps each subset's size) with a
 *   fixed-seed PRNG: the same inputs always give the same interval.
 * - `mcnemarExact`: the exact paired test for 0/1 scores (a two-sided binomial test on the discordant
 *   pairs), as statsmodels' `mcnemar(exact=True)`.
 * - `wilcoxonSignedRank`: the paired rank test for continuous scores, as scipy's `wilcoxon` (zeros
 *   dropped; exact null distribution up to 50 pairs without ties, else the normal approximation with
 *   the tie correction and no continuity correction).
 */

/** xoshiro128** seeded through splitmix32: a small, fast, well-mixed PRNG returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  const splitmix32 = () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix32();
  let b = splitmix32();
  let c = splitmix32();
  let d = splitmix32();
  return () => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result / 4294967296;
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export interface Interval {
  low: number;
  high: number;
  /** Confidence level, e.g. 0.95. */
  level: number;
}

export interface BootstrapOptions {
  /** Number of resamples (default 10,000). */
  resamples?: number;
  /** PRNG seed (default 20261130). */
  seed?: number;
  /** Confidence level of the interval (default 0.95). */
  level?: number;
  /** Stratum of each pair (e.g. MMLU subject): the statistic becomes the mean over strata of the stratum means. */
  strata?: readonly string[];
}

export interface BootstrapResult {
  /** The statistic on the data: mean of B − A (or the macro mean over strata). */
  delta: number;
  interval: Interval;
  /**
   * Two-sided p-value of "no difference": the share of resampled deltas, shifted to a null mean of 0,
   * at least as far from 0 as the observed delta ((1 + k) / (1 + R), so never exactly 0).
   */
  pValue: number;
  resamples: number;
}

export const DEFAULT_SEED = 20261130;

/** Paired bootstrap of the mean difference `b[i] − a[i]` (a and b aligned by index). */
export function pairedBootstrap(a: readonly number[], b: readonly number[], opts: BootstrapOptions = {}): BootstrapResult {
  if (a.length !== b.length) throw new Error(`paired samples differ in length: ${a.length} vs ${b.length}`);
  if (opts.strata && opts.strata.length !== a.length) throw new Error(`strata length ${opts.strata.length} differs from ${a.length} pairs`);
  if (a.length === 0) throw new Error('no paired samples');
  const resamples = opts.resamples ?? 10_000;
  const level = opts.level ?? 0.95;
  if (!(level > 0 && level < 1)) throw new Error(`confidence level must be in (0, 1), got ${level}`);
  if (!Number.isInteger(resamples) || resamples < 1) throw new Error(`resamples must be a positive integer, got ${resamples}`);
  const random = seededRandom(opts.seed ?? DEFAULT_SEED);

  const diffs = a.map((x, i) => (b[i] as number) - x);
  const groups = groupByStratum(diffs, opts.strata);
  const statistic = (draw: (group: Float64Array) => number) => {
    let total = 0;
    for (const group of groups) total += draw(group);
    return total / groups.length;
  };
  const delta = statistic(mean);
  const deltas = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    deltas[r] = statistic((group) => {
      let sum = 0;
      for (let i = 0; i < group.length; i++) sum += group[Math.floor(random() * group.length)] as number;
      return sum / group.length;
    });
  }
  deltas.sort();
  const alpha = 1 - level;
  let extreme = 0;
  const observed = Math.abs(delta);
  // A small tolerance so that deltas equal to the observed one up to rounding count as "as extreme".
  const tolerance = 1e-12 * Math.max(1, observed);
  for (const d of deltas) if (Math.abs(d - delta) >= observed - tolerance) extreme++;
  return {
    delta,
    interval: { low: quantile(deltas, alpha / 2), high: quantile(deltas, 1 - alpha / 2), level },
    pValue: observed === 0 ? 1 : (1 + extreme) / (1 + resamples),
    resamples,
  };
}

function groupByStratum(values: readonly number[], strata: readonly string[] | undefined): Float64Array[] {
  if (!strata) return [Float64Array.from(values)];
  const byName = new Map<string, number[]>();
  values.forEach((v, i) => {
    const name = strata[i] as string;
    let list = byName.get(name);
    if (!list) byName.set(name, (list = []));
    list.push(v);
  });
  return [...byName.keys()].sort().map((k) => Float64Array.from(byName.get(k) ?? []));
}

function mean(values: Float64Array): number {
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Linear interpolation between order statistics (numpy's default "linear" method) of sorted data. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  const lo = sorted[lower] as number;
  return lo + ((sorted[upper] as number) - lo) * (position - lower);
}

export interface McNemarResult {
  /** Pairs where A was right (1) and B wrong (0). */
  aOnly: number;
  /** Pairs where B was right and A wrong. */
  bOnly: number;
  pValue: number;
}

/** Exact McNemar test: two-sided binomial test of the discordant pairs against p = 1/2. */
export function mcnemarExact(aOnly: number, bOnly: number): McNemarResult {
  for (const [name, v] of [['aOnly', aOnly], ['bOnly', bOnly]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
  }
  const n = aOnly + bOnly;
  const pValue = n === 0 ? 1 : Math.min(1, 2 * binomialCdfHalf(Math.min(aOnly, bOnly), n));
  return { aOnly, bOnly, pValue };
}

/** McNemar on 0/1 paired scores (anything else is an error). */
export function mcnemarFromPairs(a: readonly number[], b: readonly number[]): McNemarResult {
  let aOnly = 0;
  let bOnly = 0;
  a.forEach((x, i) => {
    const y = b[i];
    if (!isBinary(x) || y === undefined || !isBinary(y)) throw new Error(`McNemar needs 0/1 scores, got ${x} and ${y} at pair ${i}`);
    if (x === 1 && y === 0) aOnly++;
    else if (x === 0 && y === 1) bOnly++;
  });
  return mcnemarExact(aOnly, bOnly);
}

export function isBinary(x: number): boolean {
  return x === 0 || x === 1;
}

/** P(X ≤ k) for X ~ Binomial(n, 1/2), summed in log space (exact for any n, no underflow). */
export function binomialCdfHalf(k: number, n: number): number {
  if (k < 0) return 0;
  if (k >= n) return 1;
  const logHalfN = n * Math.log(0.5);
  let logCoefficient = 0; // log C(n, 0)
  let maxLog = logHalfN;
  const logs: number[] = [logHalfN];
  for (let i = 1; i <= k; i++) {
    logCoefficient += Math.log((n - i + 1) / i);
    const term = logCoefficient + logHalfN;
    logs.push(term);
    if (term > maxLog) maxLog = term;
  }
  let sum = 0;
  for (const l of logs) sum += Math.exp(l - maxLog);
  return Math.min(1, Math.exp(maxLog) * sum);
}

export interface WilcoxonResult {
  /** min(W+, W−), scipy's statistic for the two-sided test. */
  statistic: number;
  /** Pairs with a non-zero difference (zeros are dropped). */
  n: number;
  method: 'exact' | 'normal';
  pValue: number;
}

/** Two-sided Wilcoxon signed-rank test of the paired differences `b[i] − a[i]`. */
export function wilcoxonSignedRank(a: readonly number[], b: readonly number[]): WilcoxonResult {
  if (a.length !== b.length) throw new Error(`paired samples differ in length: ${a.length} vs ${b.length}`);
  const diffs = a.map((x, i) => (b[i] as number) - x).filter((d) => d !== 0);
  const n = diffs.length;
  if (n === 0) return { statistic: 0, n: 0, method: 'exact', pValue: 1 };
  const { ranks, tieCorrection } = averageRanks(diffs.map(Math.abs));
  let plus = 0;
  diffs.forEach((d, i) => {
    if (d > 0) plus += ranks[i] as number;
  });
  const total = (n * (n + 1)) / 2;
  const statistic = Math.min(plus, total - plus);
  if (n <= 50 && tieCorrection === 0) {
    const counts = signedRankCounts(n);
    const all = 2 ** n;
    let tail = 0;
    for (let w = 0; w <= statistic; w++) tail += counts[w] as number;
    return { statistic, n, method: 'exact', pValue: Math.min(1, (2 * tail) / all) };
  }
  const expected = total / 2;
  const variance = (n * (n + 1) * (2 * n + 1)) / 24 - tieCorrection / 48;
  const z = variance > 0 ? (statistic - expected) / Math.sqrt(variance) : 0;
  return { statistic, n, method: 'normal', pValue: Math.min(1, 2 * normalCdf(-Math.abs(z))) };
}

/** Average ranks (1-based) of values, and Σ(t³ − t) over groups of tied values. */
function averageRanks(values: readonly number[]): { ranks: number[]; tieCorrection: number } {
  const order = values.map((v, i) => [v, i] as const).sort((x, y) => x[0] - y[0]);
  const ranks = new Array<number>(values.length);
  let tieCorrection = 0;
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && (order[end + 1] as readonly [number, number])[0] === (order[start] as readonly [number, number])[0]) end++;
    const rank = (start + end) / 2 + 1;
    for (let k = start; k <= end; k++) ranks[(order[k] as readonly [number, number])[1]] = rank;
    const t = end - start + 1;
    tieCorrection += t * t * t - t;
    start = end + 1;
  }
  return { ranks, tieCorrection };
}

/** counts[w] = number of subsets of {1..n} whose sum is w (the null distribution of W+ times 2^n). */
function signedRankCounts(n: number): Float64Array {
  const max = (n * (n + 1)) / 2;
  const counts = new Float64Array(max + 1);
  counts[0] = 1;
  for (let k = 1; k <= n; k++) {
    for (let w = (k * (k + 1)) / 2; w >= k; w--) counts[w] = (counts[w] as number) + (counts[w - k] as number);
  }
  return counts;
}

/** Standard normal CDF via erfc (relative error below 1e-14 over the range that matters for p-values). */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

function erfc(x: number): number {
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) {
    // erf by its Taylor series: converges fast for small x.
    let term = x;
    let sum = x;
    const x2 = x * x;
    for (let k = 1; k < 200; k++) {
      term *= -x2 / k;
      const next = term / (2 * k + 1);
      sum += next;
      if (Math.abs(next) < 1e-17 * Math.abs(sum)) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  // Continued fraction (Lentz's method): accurate in the tail where 1 − erf would cancel.
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < 500; k++) {
    const ak = k / 2;
    d = x + ak * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = x + ak / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / (f * Math.sqrt(Math.PI));
}
