import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseCsv } from '../../harness/tasks/csv.js';
import { readJsonl } from '../../harness/tasks/dataset-io.js';
import { DatasetError, TaskConfigError } from '../../harness/tasks/errors.js';
import { extraParser } from '../../harness/tasks/extra.js';
import { findNumbers, firstNumber, formatNumber, lastNumber, normalizeNumber, numbersEqual, parseNumber } from '../../harness/tasks/numbers.js';

describe('parseCsv', () => {
  it('parses plain and quoted fields', () => {
    expect(parseCsv('a,b,c\n1,"two, 2","say ""hi"""\n')).toEqual([
      ['a', 'b', 'c'],
      ['1', 'two, 2', 'say "hi"'],
    ]);
  });

  it('keeps newlines inside quoted fields and accepts CRLF, no final newline and a BOM', () => {
    expect(parseCsv('\uFEFF"line 1\nline 2",x\r\ny,"z\r\nz"')).toEqual([
      ['line 1\nline 2', 'x'],
      ['y', 'z\r\nz'],
    ]);
  });

  it('handles empty fields, a trailing comma and blank lines', () => {
    expect(parseCsv(',a,,\n\n"",b\n\r\nc,')).toEqual([
      ['', 'a', '', ''],
      ['', 'b'],
      ['c', ''],
    ]);
    expect(parseCsv('')).toEqual([]);
  });

  it('treats a lone CR as a line end, with or without quotes on the line', () => {
    expect(parseCsv('a,b\rc,d\n"e",f\rg,h')).toEqual([
      ['a', 'b'],
      ['c', 'd'],
      ['e', 'f'],
      ['g', 'h'],
    ]);
  });

  it('gives the same rows for lines with and without quotes', () => {
    expect(parseCsv('x,y,z\r\n"x","y","z"\r\n"x",y,z\n')).toEqual([
      ['x', 'y', 'z'],
      ['x', 'y', 'z'],
      ['x', 'y', 'z'],
    ]);
  });

  it('treats a quote inside an unquoted field as text, as Python csv does', () => {
    expect(parseCsv('5" tall,x\n')).toEqual([['5" tall', 'x']]);
  });

  it('reports malformed quoting with the line', () => {
    expect(() => parseCsv('a,b\nc,"unterminated\nmore', 'f.csv')).toThrow(new DatasetError('f.csv:2: malformed or unterminated quoted field'));
    expect(() => parseCsv('"a"b,c', 'f.csv')).toThrow('f.csv:1: malformed or unterminated quoted field');
  });
});

describe('readJsonl', () => {
  const dir = mkdtempSync(join(tmpdir(), 'evalflow-jsonl-'));
  const file = (name: string, text: string | Buffer) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('skips blank lines and records row index and line number (BOM, CRLF and a last line without newline)', async () => {
    expect(await readJsonl(file('a.jsonl', '\ufeff{"a":1}\n\n  \n{"a":2}\r\n{"a":"é"}'), 'test')).toEqual([
      { index: 0, line: 1, value: { a: 1 } },
      { index: 1, line: 4, value: { a: 2 } },
      { index: 2, line: 5, value: { a: 'é' } },
    ]);
  });

  it('rejects invalid JSON and non-objects with the file and line', async () => {
    const bad = file('bad.jsonl', '{"a":1}\n{oops}\n');
    await expect(readJsonl(bad, 'test')).rejects.toThrow(new RegExp(`^${bad}:2: invalid JSON`));
    await expect(readJsonl(file('null.jsonl', 'null\n'), 'test')).rejects.toThrow(`${join(dir, 'null.jsonl')}:1: each line must be a JSON object`);
    await expect(readJsonl(file('text.jsonl', '{"a":1}\n"text"\n'), 'test')).rejects.toThrow(`${join(dir, 'text.jsonl')}:2: each line must be a JSON object`);
  });

  it('names a missing file, and reads lines across its 1 MiB read chunks (multi-byte characters split between them)', async () => {
    await expect(readJsonl(join(dir, 'nope.jsonl'), 'my dataset')).rejects.toThrow(`my dataset: file not found: ${join(dir, 'nope.jsonl')}`);
    const long = 'é'.repeat(700_000); // 1.4 MB of 2-byte characters per line
    const rows = await readJsonl(file('long.jsonl', `{"t":"${long}"}\n{"t":"x"}\n{"t":"${long}"}`), 'test');
    expect(rows.map((r) => [r.line, (r.value.t as string).length])).toEqual([[1, 700_000], [2, 1], [3, 700_000]]);
    expect(rows[2]?.value.t).toBe(long);
  });
});

describe('numbers', () => {
  it('parses numbers as people and models write them', () => {
    const cases: [string, number | null][] = [
      ['18', 18],
      ['18.00', 18],
      ['18.', 18],
      ['$1,234.50', 1234.5],
      ['-10', -10],
      ['−7', -7],
      ['-$5', -5],
      ['+3', 3],
      ['.5', 0.5],
      [' 1 000 ', 1000],
      ['\\$18', 18],
      ['twelve', null],
      ['1.2.3', null],
      ['', null],
      ['-', null],
    ];
    for (const [raw, expected] of cases) expect(parseNumber(raw), raw).toBe(expected);
  });

  it('formats canonically', () => {
    expect(formatNumber(18)).toBe('18');
    expect(formatNumber(-0)).toBe('0');
    expect(formatNumber(1234.5)).toBe('1234.5');
    expect(normalizeNumber('$2,125.00')).toBe('2125');
    expect(normalizeNumber('n/a')).toBeNull();
  });

  it('finds numeric tokens without mistaking hyphens and operators for signs', () => {
    expect(findNumbers('16-3-4=9; 10 - 3 = 7; x = -2; $1,234.50 and 1,2345; US$5; v2 .5')).toEqual([
      '16', '3', '4', '9', '10', '3', '7', '-2', '$1,234.50', '1', '2345', '5', '.5',
    ]);
    expect(firstNumber('between 3 and 4')).toBe('3');
    expect(lastNumber('between 3 and 4.50.')).toBe('4.5');
    expect(lastNumber('none')).toBeNull();
  });

  it('compares with an absolute tolerance', () => {
    expect(numbersEqual(18, 18)).toBe(true);
    expect(numbersEqual(0.1 + 0.2, 0.3)).toBe(false);
    expect(numbersEqual(0.1 + 0.2, 0.3, 1e-9)).toBe(true);
    expect(numbersEqual(3.1416, 3.14159, 1e-6)).toBe(false);
  });
});

describe('extraParser', () => {
  const parse = extraParser(z.object({ n: z.number().int().default(1), name: z.string().optional() }).strict(), 'demo');

  it('applies defaults, names key paths in errors, lists valid keys for unknown ones', () => {
    expect(parse(undefined)).toEqual({ n: 1 });
    expect(parse({ n: 3, name: 'x' })).toEqual({ n: 3, name: 'x' });
    expect(() => parse({ n: 1.5 })).toThrow(TaskConfigError);
    expect(() => parse({ n: 'x' })).toThrow(/^task demo: config\.params\.extra\.n: /);
    expect(() => parse({ m: 1, k: 2 })).toThrow(
      'task demo: config.params.extra.m, config.params.extra.k: unknown keys (valid keys: n, name)',
    );
  });

  it('caches results per extra object', () => {
    const extra = { n: 2 };
    expect(parse(extra)).toBe(parse(extra));
    expect(parse({ n: 2 })).not.toBe(parse(extra));
  });
});
