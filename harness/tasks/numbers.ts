/**
 * Numbers in model output and reference answers: finding numeric tokens in free text and normalising them
 * (`$1,234.50` → 1234.5, `18.00` → 18, `−7` → -7) so answers compare numerically. Used by gsm8k and by the
 * custom task's `numeric` scorer.
 */

/**
 * One numeric token: optional sign directly before the number (not a hyphen between words or digits as in
 * `16-3`, nor a spaced operator as in `10 - 3`), optional `$`, digits with optional thousands separators, optional decimals; or a bare `.5`.
 */
const NUMBER_SOURCE =
  String.raw`(?<![\w.])(?:[-−](?=[\d$.]))?(?:\$\s?)?(?:(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)`;

/** A fresh global regex matching numeric tokens (fresh: global regexes carry lastIndex state). */
export function numberRegex(): RegExp {
  return new RegExp(NUMBER_SOURCE, 'g');
}

/** The numeric-token pattern source, for composing larger patterns (it has no capture groups). */
export const NUMBER_PATTERN = NUMBER_SOURCE;

/**
 * Parses one numeric string as written by people or models: strips `$`, `\`, thousands commas, whitespace,
 * a trailing `.` and a leading `+`; accepts the Unicode minus. Returns null when it is not a finite number.
 */
export function parseNumber(raw: string): number | null {
  let s = raw.trim().replace(/[$\\,\s]/g, '').replace(/^−/, '-');
  s = s.replace(/\.+$/, '');
  if (s.startsWith('+')) s = s.slice(1);
  if (!/^-?(?:\d+(?:\.\d*)?|\.\d+)$/.test(s)) return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
}

/** The canonical text of a number: `18`, `-3`, `1234.5` (no exponent for ordinary magnitudes, no `-0`). */
export function formatNumber(n: number): string {
  if (Object.is(n, -0)) return '0';
  return String(n);
}

/** parseNumber + formatNumber: the canonical text of a numeric string, or null. */
export function normalizeNumber(raw: string): string | null {
  const n = parseNumber(raw);
  return n === null ? null : formatNumber(n);
}

/** All numeric tokens of a text, as written (`$1,234.50`, `-3`), in order. */
export function findNumbers(text: string): string[] {
  return Array.from(text.matchAll(numberRegex()), (m) => m[0]);
}

/** The canonical text of the first number in a text, or null when there is none. */
export function firstNumber(text: string): string | null {
  const m = numberRegex().exec(text);
  return m ? normalizeNumber(m[0]) : null;
}

/** The canonical text of the last number in a text, or null when there is none. */
export function lastNumber(text: string): string | null {
  const all = findNumbers(text);
  const last = all[all.length - 1];
  return last === undefined ? null : normalizeNumber(last);
}

/** Numeric equality within an absolute tolerance (0: exact). */
export function numbersEqual(a: number, b: number, tolerance = 0): boolean {
  return a === b || Math.abs(a - b) <= tolerance;
}
