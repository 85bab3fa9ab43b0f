/** How comparison numbers are shown, in the terminal table and the HTML report alike. */

export function fixed(v: number | null): string {
  return v === null ? '-' : v.toFixed(4);
}

/** A difference with its sign (`+0.0500`, `-0.1000`, `0.0000`). */
export function signed(v: number | null): string {
  if (v === null) return '-';
  const s = v.toFixed(4);
  return v > 0 ? `+${s}` : s === '-0.0000' ? '0.0000' : s;
}

export function pValueText(p: number | null): string {
  if (p === null) return '-';
  return p < 1e-4 ? p.toExponential(1) : p.toFixed(4);
}
