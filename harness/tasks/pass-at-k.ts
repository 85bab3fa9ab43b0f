/**
 * The unbiased pass@k estimator of Chen et al. 2021 (HumanEval): with n generations of which c pass,
 * pass@k = 1 - C(n-c, k) / C(n, k), computed as a running product so that large n does not overflow.
 */
export function passAtK(n: number, c: number, k: number): number {
  if (!Number.isInteger(n) || !Number.isInteger(c) || !Number.isInteger(k) || n < 1 || k < 1 || c < 0 || c > n || k > n) {
    throw new RangeError(`pass@k needs integers 0 <= c <= n and 1 <= k <= n (n=${n}, c=${c}, k=${k})`);
  }
  if (n - c < k) return 1;
  let allFail = 1;
  for (let i = n - c + 1; i <= n; i++) allFail *= 1 - k / i;
  return 1 - allFail;
}
