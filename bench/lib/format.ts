/** Number formatting and plain-text tables for the bench output. */

const missing = (x: number | null | undefined): x is null | undefined => x === null || x === undefined || !Number.isFinite(x);

export const f0 = (x: number | null | undefined): string => (missing(x) ? 'n/a' : Math.round(x).toLocaleString('en-US'));
export const f2 = (x: number | null | undefined): string => (missing(x) ? 'n/a' : x.toFixed(2));
export const f3 = (x: number | null | undefined): string => (missing(x) ? 'n/a' : x.toFixed(3));
export const pct = (x: number | null | undefined): string => (missing(x) ? 'n/a' : `${(x * 100).toFixed(1)}%`);
/** A ratio as `2.35x`. */
export const times = (x: number | null | undefined): string => (missing(x) ? 'n/a' : `${x.toFixed(2)}x`);

/** Columns right-aligned except the first, a dashed rule under the headers, two spaces of indent. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].map((l) => `  ${l}`.trimEnd()).join('\n');
}

export function print(text = ''): void {
  process.stdout.write(`${text}\n`);
}

export interface Target {
  target: string;
  measured: string;
  /** null: not measurable in this run (a figure is missing). */
  met: boolean | null;
}

export const atLeast = (x: number | null | undefined, min: number): boolean | null => (missing(x) ? null : x >= min);
export const atMost = (x: number | null | undefined, max: number): boolean | null => (missing(x) ? null : x <= max);

export function printTargets(title: string, targets: Target[]): void {
  print(`\n== targets (${title})`);
  if (targets.length === 0) print('  (none of the selected measurements checks a target on its own)');
  else print(table(['target', 'measured', ''], targets.map((t) => [t.target, t.measured, t.met === null ? 'n/a' : t.met ? 'met' : 'NOT MET'])));
}
