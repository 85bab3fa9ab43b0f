/** Medians of repeated measurements (a shared machine is noisy: one run proves little). */

/** Runs `measure` `repeat` times and keeps the run with the median of `key` (the lower middle one for even counts). */
export async function medianRun<T>(repeat: number, key: (r: T) => number, measure: () => Promise<T>): Promise<T> {
  const runs: T[] = [];
  for (let i = 0; i < repeat; i++) runs.push(await measure());
  runs.sort((a, b) => key(a) - key(b));
  return runs[Math.floor((runs.length - 1) / 2)] as T;
}

/** The median of numbers that are there, or null when none is. */
export function median(values: Array<number | null | undefined>): number | null {
  const xs = values.filter((x): x is number => x !== null && x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = Math.floor(xs.length / 2);
  return xs.length % 2 === 1 ? (xs[mid] as number) : ((xs[mid - 1] as number) + (xs[mid] as number)) / 2;
}

export const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined || b === 0 || !Number.isFinite(a) || !Number.isFinite(b) ? null : a / b;
