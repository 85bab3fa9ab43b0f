/** Reading dataset files: one place for "file missing" errors and for JSON Lines. */
import { readFile } from 'node:fs/promises';
import { forEachLine } from '../lines.js';
import { DatasetError } from './errors.js';

/** Reads a dataset file as UTF-8 (BOM removed); a missing or unreadable file is a DatasetError naming it. */
export async function readDatasetText(path: string, what: string): Promise<string> {
  let text: string;
  try {
    // One decode of the whole buffer: faster than readFile's streaming decoder for many files at once.
    text = (await readFile(path)).toString('utf8');
  } catch (err) {
    throw unreadable(err, path, what);
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function unreadable(err: unknown, path: string, what: string): DatasetError {
  const code = (err as NodeJS.ErrnoException).code;
  const reason = code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? String(err)})`;
  return new DatasetError(`${what}: ${reason}: ${path}`);
}

export interface JsonlRow {
  /** 0-based index among the non-blank lines (the row number). */
  index: number;
  /** 1-based line number in the file, for error messages. */
  line: number;
  value: Record<string, unknown>;
}

/** One JSON Lines row: blank lines are skipped; every other line must be a JSON object. */
function addJsonlRow(rows: JsonlRow[], text: string, line: number, source: string): void {
  const raw = (line === 1 && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).trim();
  if (raw === '') return;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new DatasetError(`${source}:${line}: invalid JSON (${(err as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new DatasetError(`${source}:${line}: each line must be a JSON object`);
  }
  rows.push({ index: rows.length, line, value: value as Record<string, unknown> });
}

/** Reads and parses a JSON Lines dataset file line by line (no string holds the whole file). */
export async function readJsonl(path: string, what: string): Promise<JsonlRow[]> {
  const rows: JsonlRow[] = [];
  try {
    forEachLine(path, (text, { line }) => addJsonlRow(rows, text, line, path));
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    throw unreadable(err, path, what);
  }
  return rows;
}

/**
 * Round-robin over groups sorted by key (row 0 of every group, then row 1, …), each group keeping its order: a
 * task whose samples fall into subsets orders them so, and `limit_samples` then takes a representative prefix.
 */
export function interleave<T>(groups: ReadonlyMap<string, readonly T[]>): T[] {
  const lists = [...groups.keys()].sort().map((k) => groups.get(k) ?? []);
  const out: T[] = [];
  const longest = Math.max(0, ...lists.map((l) => l.length));
  for (let row = 0; row < longest; row++) {
    for (const list of lists) {
      const item = list[row];
      if (item !== undefined) out.push(item);
    }
  }
  return out;
}
