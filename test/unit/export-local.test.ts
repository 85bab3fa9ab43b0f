import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportLocal, toCsv, type ExportRow } from '../../exporters/local.js';

const root = mkdtempSync(join(tmpdir(), 'evalflow-export-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `out-${n++}`);

const INV = '0123456789abcdef';

function row(index: number, metrics: Record<string, number>, over: Partial<ExportRow> = {}): ExportRow {
  return {
    invocation_id: INV,
    job_id: `${INV}.${index}`,
    task: 'evalflow.gsm8k',
    model: 'tiny',
    results_path: `/runs/x/gsm8k.${index}/artifacts/results.yml`,
    samples: { total: 10, scored: 9, errors: 1, cached: 0 },
    metrics,
    ...over,
  };
}

const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as { jobs: Record<string, ExportRow> };

/** Minimal RFC 4180 parser: enough to check that our quoting round-trips. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let field = '';
  let rowCells: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      rowCells.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      rowCells.push(field);
      rows.push(rowCells);
      rowCells = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || rowCells.length > 0) rows.push([...rowCells, field]);
  return rows;
}

describe('exportLocal (json)', () => {
  it('writes processed_results.json keyed by job id and returns its path', async () => {
    const dir = freshDir();
    const file = await exportLocal([row(0, { gsm8k_accuracy: 0.5 })], { outputDir: dir, format: 'json' });
    expect(file).toBe(join(dir, 'processed_results.json'));
    expect(readJson(file)).toEqual({ jobs: { [`${INV}.0`]: row(0, { gsm8k_accuracy: 0.5 }) } });
    expect(existsSync(join(dir, 'processed_results.csv'))).toBe(false);
  });

  it('upserts by job id: exporting the same job twice leaves one updated row', async () => {
    const dir = freshDir();
    await exportLocal([row(0, { gsm8k_accuracy: 0.5 })], { outputDir: dir, format: 'json' });
    await exportLocal([row(1, { gsm8k_accuracy: 0.7 })], { outputDir: dir, format: 'json' });
    const file = await exportLocal([row(0, { gsm8k_accuracy: 0.9 }, { samples: { total: 10, scored: 10, errors: 0, cached: 4 } })], { outputDir: dir, format: 'json' });
    const data = readJson(file);
    expect(Object.keys(data.jobs).sort()).toEqual([`${INV}.0`, `${INV}.1`]);
    expect(data.jobs[`${INV}.0`]?.metrics).toEqual({ gsm8k_accuracy: 0.9 });
    expect(data.jobs[`${INV}.0`]?.samples?.cached).toBe(4);
    expect(data.jobs[`${INV}.1`]?.metrics).toEqual({ gsm8k_accuracy: 0.7 });
  });

  it('uses a custom filename and leaves no lock or temp files behind', async () => {
    const dir = freshDir();
    const file = await exportLocal([row(0, { a: 1 })], { outputDir: dir, format: 'json', filename: 'nightly' });
    expect(file).toBe(join(dir, 'nightly.json'));
    expect(readdirSync(dir)).toEqual(['nightly.json']);
  });
});

describe('exportLocal (csv)', () => {
  it('writes both files; CSV columns are the fixed ones then the union of metric names, sorted', async () => {
    const dir = freshDir();
    await exportLocal([row(0, { gsm8k_accuracy: 0.5, b_metric: 2 })], { outputDir: dir, format: 'csv' });
    const csvFile = await exportLocal([row(1, { a_metric: 1, gsm8k_accuracy: 0.25 }, { task: 'evalflow.mmlu' })], { outputDir: dir, format: 'csv' });
    expect(csvFile).toBe(join(dir, 'processed_results.csv'));
    expect(existsSync(join(dir, 'processed_results.json'))).toBe(true);
    const text = readFileSync(csvFile, 'utf8');
    expect(text).toBe(
      [
        'invocation_id,job_id,task,model,samples_total,samples_errors,a_metric,b_metric,gsm8k_accuracy',
        `${INV},${INV}.0,evalflow.gsm8k,tiny,10,1,,2,0.5`,
        `${INV},${INV}.1,evalflow.mmlu,tiny,10,1,1,,0.25`,
        '',
      ].join('\n'),
    );
  });

  it('sorts rows by job id numerically (job 10 after job 2)', () => {
    const text = toCsv([row(10, {}), row(2, {}), row(1, {})]);
    expect(parseCsv(text).slice(1).map((r) => r[1])).toEqual([`${INV}.1`, `${INV}.2`, `${INV}.10`]);
  });

  it('quotes commas, quotes and newlines so the CSV round-trips', () => {
    const nasty = row(0, { 'acc,strict': 0.5 }, { model: 'org/model, "v2"\nfinal', task: 'plain' });
    const text = toCsv([nasty]);
    expect(text.split('\n')[0]).toBe('invocation_id,job_id,task,model,samples_total,samples_errors,"acc,strict"');
    expect(text).toContain('"org/model, ""v2""\nfinal"');
    const parsed = parseCsv(text);
    expect(parsed).toEqual([
      ['invocation_id', 'job_id', 'task', 'model', 'samples_total', 'samples_errors', 'acc,strict'],
      [INV, `${INV}.0`, 'plain', 'org/model, "v2"\nfinal', '10', '1', '0.5'],
    ]);
  });

  it('quotes a carriage return too (RFC 4180: CR is a line break)', () => {
    const text = toCsv([row(0, {}, { model: 'a\rb' })]);
    expect(text).toContain('"a\rb"');
    expect(parseCsv(text)[1]?.[3]).toBe('a\rb');
  });

  it('writes only a header for no rows', () => {
    expect(toCsv([])).toBe('invocation_id,job_id,task,model,samples_total,samples_errors\n');
  });
});

describe('exportLocal concurrency', () => {
  it('10 concurrent exports of different jobs into the same file all land', async () => {
    const dir = freshDir();
    const files = await Promise.all(
      Array.from({ length: 10 }, (_, i) => exportLocal([row(i, { [`m${i % 3}`]: i / 10 })], { outputDir: dir, format: 'csv' })),
    );
    expect(new Set(files)).toEqual(new Set([join(dir, 'processed_results.csv')]));
    const data = readJson(join(dir, 'processed_results.json'));
    expect(Object.keys(data.jobs)).toHaveLength(10);
    for (let i = 0; i < 10; i++) expect(data.jobs[`${INV}.${i}`]?.metrics).toEqual({ [`m${i % 3}`]: i / 10 });
    const csv = parseCsv(readFileSync(join(dir, 'processed_results.csv'), 'utf8'));
    expect(csv[0]?.slice(6)).toEqual(['m0', 'm1', 'm2']);
    expect(csv.slice(1).map((r) => r[1])).toEqual(Array.from({ length: 10 }, (_, i) => `${INV}.${i}`));
    expect(readdirSync(dir).sort()).toEqual(['processed_results.csv', 'processed_results.json']);
  });

  it('a json and a csv export racing on the same base name both keep their rows', async () => {
    const dir = freshDir();
    await Promise.all([
      exportLocal([row(0, { a: 1 })], { outputDir: dir, format: 'json' }),
      exportLocal([row(1, { a: 2 })], { outputDir: dir, format: 'csv' }),
      exportLocal([row(2, { a: 3 })], { outputDir: dir, format: 'json' }),
    ]);
    expect(Object.keys(readJson(join(dir, 'processed_results.json')).jobs).sort()).toEqual([`${INV}.0`, `${INV}.1`, `${INV}.2`]);
  });
});
