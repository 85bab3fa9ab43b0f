import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetricsSchema } from '../../harness/results-schema.js';
import { custom, extractByRegex, parseCustomExtra, renderTemplate } from '../../harness/tasks/custom.js';
import { DatasetError, TaskConfigError } from '../../harness/tasks/errors.js';
import type { ScoredSample, TaskSample } from '../../harness/tasks/types.js';

let dir: string;
let qaPath: string;

function jsonl(name: string, rows: unknown[] | string): string {
  const path = join(dir, name);
  writeFileSync(path, typeof rows === 'string' ? rows : rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return path;
}

const QA = [
  { qid: 'q-capital', question: 'What is the capital of France?', answer: 'Paris', meta: { topic: 'geography' } },
  { qid: 'q-sum', question: 'What is 2 + 2?', answer: 4, meta: { topic: 'math' } },
  { qid: 'q-price', question: 'How much is it?', answer: '$1,234.50', meta: { topic: 'money' } },
];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'evalflow-custom-'));
  qaPath = jsonl('qa.jsonl', QA);
  mkdirSync(join(dir, 'sets'));
  writeFileSync(join(dir, 'sets', 'rel.jsonl'), `${JSON.stringify({ q: 'relative?', answer: 'yes' })}\n\n`);
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function load(extra: Record<string, unknown>): Promise<TaskSample[]> {
  return custom.loadSamples({ datasetDir: dir, extra });
}

async function loadError(extra: Record<string, unknown>): Promise<Error> {
  const err = await load(extra).catch((e: unknown) => e);
  if (!(err instanceof Error)) throw new Error('expected loadSamples to fail');
  return err;
}

function scoreWith(extra: Record<string, unknown>, generation: string, answer: string) {
  const sample: TaskSample = { id: 'x', groundTruth: answer, data: { row: {}, line: 1 } };
  return custom.score(sample, generation, { extra: { dataset_path: 'd.jsonl', prompt_template: '{{q}}', ...extra } });
}

describe('custom loading', () => {
  it('loads rows in order with row-index ids and string references', async () => {
    const samples = await load({ dataset_path: qaPath, prompt_template: 'Q: {{question}}' });
    expect(samples.map((s) => [s.id, s.groundTruth])).toEqual([
      ['custom-0', 'Paris'],
      ['custom-1', '4'],
      ['custom-2', '$1,234.50'],
    ]);
    expect(samples[0]?.data).toEqual({ row: QA[0], line: 1 });
    expect(samples[0]?.subset).toBeUndefined();
  });

  it('uses id_field and answer_field, and resolves a relative dataset_path against the dataset dir', async () => {
    const samples = await load({ dataset_path: qaPath, prompt_template: '{{question}}', id_field: 'qid', answer_field: 'meta.topic' });
    expect(samples.map((s) => [s.id, s.groundTruth])).toEqual([
      ['q-capital', 'geography'],
      ['q-sum', 'math'],
      ['q-price', 'money'],
    ]);
    const rel = await load({ dataset_path: 'sets/rel.jsonl', prompt_template: '{{q}}' });
    expect(rel.map((s) => [s.id, s.groundTruth])).toEqual([['custom-0', 'yes']]);
  });

  it('fails on a template field missing from a row, naming the field and the row', async () => {
    const path = jsonl('missing-field.jsonl', [{ question: 'a', answer: '1' }, { answer: '2' }]);
    const err = await loadError({ dataset_path: path, prompt_template: 'Q: {{ question }}' });
    expect(err).toBeInstanceOf(DatasetError);
    expect(err.message).toBe(`custom: row 2 (${path}:2) has no field "question" (used in config.params.extra.prompt_template)`);
  });

  it('fails on a missing answer, a non-numeric answer for "numeric", duplicate and missing ids', async () => {
    const noAnswer = jsonl('no-answer.jsonl', [{ question: 'a', answer: '1' }, { question: 'b', answer: null }]);
    expect((await loadError({ dataset_path: noAnswer, prompt_template: '{{question}}' })).message).toBe(
      `custom: row 2 (${noAnswer}:2) has no answer field "answer" (config.params.extra.answer_field)`,
    );
    const words = jsonl('words.jsonl', [{ question: 'a', answer: '12' }, { question: 'b', answer: 'twelve' }]);
    expect((await loadError({ dataset_path: words, prompt_template: '{{question}}', scorer: 'numeric' })).message).toBe(
      `custom: row 2 (${words}:2): answer "twelve" is not a number (scorer "numeric")`,
    );
    const dup = jsonl('dup.jsonl', [{ id: 'a', q: '1', answer: '1' }, { id: 'b', q: '2', answer: '2' }, { id: 'a', q: '3', answer: '3' }]);
    expect((await loadError({ dataset_path: dup, prompt_template: '{{q}}', id_field: 'id' })).message).toBe(
      `custom: row 3 (${dup}:3): id "a" already used by row 1`,
    );
    expect((await loadError({ dataset_path: dup, prompt_template: '{{q}}', id_field: 'uuid' })).message).toBe(
      `custom: row 1 (${dup}:1) has no id field "uuid" (config.params.extra.id_field)`,
    );
  });

  it('fails on a missing file, invalid JSON, a non-object line and an empty file', async () => {
    const missing = await loadError({ dataset_path: 'nope.jsonl', prompt_template: '{{q}}' });
    expect(missing).toBeInstanceOf(DatasetError);
    expect(missing.message).toBe(`custom dataset (config.params.extra.dataset_path): file not found: ${join(dir, 'nope.jsonl')}`);
    const bad = jsonl('bad.jsonl', '{"q": "fine", "answer": "1"}\n{"q": broken}\n');
    expect((await loadError({ dataset_path: bad, prompt_template: '{{q}}' })).message).toMatch(new RegExp(`^${bad}:2: invalid JSON`));
    const arr = jsonl('array.jsonl', '["not", "an", "object"]\n');
    expect((await loadError({ dataset_path: arr, prompt_template: '{{q}}' })).message).toBe(`${arr}:1: each line must be a JSON object`);
    const empty = jsonl('empty.jsonl', '\n\n');
    expect((await loadError({ dataset_path: empty, prompt_template: '{{q}}' })).message).toBe(`custom: ${empty} holds no rows`);
  });
});

describe('custom extra validation', () => {
  const base = { dataset_path: 'qa.jsonl', prompt_template: '{{question}}' };
  const cases: [string, Record<string, unknown>, string][] = [
    ['dataset_path missing', { prompt_template: '{{q}}' }, 'config.params.extra.dataset_path: required'],
    ['dataset_path not a string', { ...base, dataset_path: 3 }, 'config.params.extra.dataset_path: expected a string'],
    ['prompt_template missing', { dataset_path: 'qa.jsonl' }, 'config.params.extra.prompt_template: required'],
    ['prompt_template without placeholder', { ...base, prompt_template: 'Answer this.' }, 'config.params.extra.prompt_template: has no {{field}} placeholder'],
    ['unknown key', { ...base, answer_feild: 'x' }, 'config.params.extra.answer_feild: unknown key (valid keys: answer_field, answer_regex, case_sensitive, dataset_path, id_field, prompt_template, scorer, system_prompt, tolerance)'],
    ['unknown scorer', { ...base, scorer: 'fuzzy' }, 'config.params.extra.scorer: '],
    ['regex scorer without answer_regex', { ...base, scorer: 'regex' }, 'config.params.extra.answer_regex: required when scorer is "regex"'],
    ['invalid regular expression', { ...base, scorer: 'regex', answer_regex: '(unclosed' }, 'config.params.extra.answer_regex: not a valid RE2 regular expression (linear-time matching: no lookaround, no backreferences): error parsing regexp: missing closing ): `(unclosed`'],
    ['a backreference (no linear-time match)', { ...base, scorer: 'regex', answer_regex: '(a)\\1' }, 'config.params.extra.answer_regex: not a valid RE2 regular expression (linear-time matching: no lookaround, no backreferences): error parsing regexp: invalid escape sequence: `\\1`'],
    ['a lookahead (no linear-time match)', { ...base, scorer: 'regex', answer_regex: 'x(?=y)' }, 'config.params.extra.answer_regex: not a valid RE2 regular expression (linear-time matching: no lookaround, no backreferences): error parsing regexp: invalid or unsupported Perl syntax: `(?=`'],
    ['answer_regex with another scorer', { ...base, answer_regex: '(\\d+)' }, 'config.params.extra.answer_regex: only used with scorer "regex" (scorer is "exact")'],
    ['tolerance with another scorer', { ...base, tolerance: 0.1 }, 'config.params.extra.tolerance: only used with scorer "numeric" (scorer is "exact")'],
    ['negative tolerance', { ...base, scorer: 'numeric', tolerance: -1 }, 'config.params.extra.tolerance: '],
    ['case_sensitive not a boolean', { ...base, case_sensitive: 'yes' }, 'config.params.extra.case_sensitive: '],
    ['case_sensitive with another scorer', { ...base, scorer: 'numeric', case_sensitive: true }, 'config.params.extra.case_sensitive: only used with scorer "exact" (scorer is "numeric")'],
    ['empty answer_field', { ...base, answer_field: '' }, 'config.params.extra.answer_field: must not be empty'],
    ['system_prompt not a string', { ...base, system_prompt: 42 }, 'config.params.extra.system_prompt: '],
  ];
  it.each(cases)('%s', async (_name, extra, message) => {
    const err = await loadError(extra);
    expect(err).toBeInstanceOf(TaskConfigError);
    expect(err.message).toContain(`task custom: ${message}`);
  });

  it('applies defaults and caches the parse per extra object', () => {
    const extra = { ...base };
    const parsed = parseCustomExtra(extra);
    expect(parsed).toEqual({ ...base, answer_field: 'answer', scorer: 'exact' });
    expect(parseCustomExtra(extra)).toBe(parsed);
  });
});

describe('custom prompts', () => {
  it('fills placeholders (nested fields, numbers) and adds the system prompt for chat and completions', async () => {
    const extra = { dataset_path: qaPath, prompt_template: '[{{meta.topic}}] {{question}} (expected type: {{ answer }})', system_prompt: 'Be brief.' };
    const samples = await load(extra);
    expect(custom.buildPrompt(samples[1] as TaskSample, 'chat', { extra })).toEqual({
      kind: 'chat',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: '[math] What is 2 + 2? (expected type: 4)' },
      ],
    });
    expect(custom.buildPrompt(samples[0] as TaskSample, 'completions', { extra })).toEqual({
      kind: 'completions',
      prompt: 'Be brief.\n\n[geography] What is the capital of France? (expected type: Paris)',
    });
  });

  it('omits the system prompt when none is configured', async () => {
    const extra = { dataset_path: qaPath, prompt_template: 'Q: {{question}}\nA:' };
    const [first] = await load(extra);
    expect(custom.buildPrompt(first as TaskSample, 'chat', { extra })).toEqual({
      kind: 'chat',
      messages: [{ role: 'user', content: 'Q: What is the capital of France?\nA:' }],
    });
    expect(custom.buildPrompt(first as TaskSample, 'completions', { extra })).toEqual({
      kind: 'completions',
      prompt: 'Q: What is the capital of France?\nA:',
    });
  });

  it('renders objects as JSON and a literal dotted key before a nested path', () => {
    expect(renderTemplate('{{a.b}} {{a}} {{x}}', { 'a.b': 'flat', a: { b: 'nested' }, x: true }, 'row 1')).toBe('flat {"b":"nested"} true');
    expect(() => renderTemplate('{{a.c}}', { a: { b: 1 } }, 'row 7')).toThrow('custom: row 7 has no field "a.c"');
  });
});

describe('custom scorers', () => {
  it('exact: trimmed, case-insensitive by default', () => {
    expect(scoreWith({}, '  Paris\n', 'Paris')).toEqual({ score: 1, extracted: 'Paris' });
    expect(scoreWith({}, 'PARIS', 'paris ')).toEqual({ score: 1, extracted: 'PARIS' });
    expect(scoreWith({}, 'Paris.', 'Paris')).toEqual({ score: 0, extracted: 'Paris.' });
    expect(scoreWith({ case_sensitive: true }, 'PARIS', 'Paris')).toEqual({ score: 0, extracted: 'PARIS' });
    expect(scoreWith({ case_sensitive: true }, 'Paris ', 'Paris')).toEqual({ score: 1, extracted: 'Paris' });
  });

  it('regex: first capture group, else the whole match, compared exactly', () => {
    const withGroup = { scorer: 'regex', answer_regex: 'Answer:\\s*([A-Z][a-z]+)' };
    expect(scoreWith(withGroup, 'Thinking...\nAnswer: Paris\nAnswer: Rome', 'Paris')).toEqual({ score: 1, extracted: 'Paris' });
    expect(scoreWith(withGroup, 'Answer: Rome', 'Paris')).toEqual({ score: 0, extracted: 'Rome' });
    expect(scoreWith(withGroup, 'answer: paris', 'Paris')).toEqual({ score: 0, extracted: null });
    const whole = { scorer: 'regex', answer_regex: '\\b[A-D]\\b' };
    expect(scoreWith(whole, 'I pick C.', 'C')).toEqual({ score: 1, extracted: 'C' });
    expect(scoreWith(whole, 'I pick C.', 'c')).toEqual({ score: 0, extracted: 'C' });
    expect(extractByRegex('x=1', '(y)?x=(\\d)')).toBeNull(); // group 1 did not take part
    // RE2 syntax: inline flags and named groups.
    expect(extractByRegex('ANSWER: paris', '(?i)answer:\\s*(\\w+)')).toBe('paris');
    expect(extractByRegex('id=42', 'id=(?P<n>\\d+)')).toBe('42');
  });

  it('regex: a pattern that backtracks catastrophically elsewhere matches in linear time here', () => {
    // `(a+)+$` on 50 kB of "a" followed by "!" never returns on a backtracking engine (2^50000 paths).
    const text = `${'a'.repeat(50_000)}!`;
    expect(extractByRegex(text, '(a+)+$')).toBeNull();
    expect(extractByRegex(`${'a'.repeat(50_000)}`, '(a+)+$')).toHaveLength(50_000);
    expect(scoreWith({ scorer: 'regex', answer_regex: '(x+x+)+y' }, 'x'.repeat(50_000), 'y')).toEqual({ score: 0, extracted: null });
  });

  it('numeric: the last number within the tolerance', () => {
    const numeric = { scorer: 'numeric' };
    expect(scoreWith(numeric, 'First 2, then 2 + 2 = 4', '4')).toEqual({ score: 1, extracted: '4' });
    expect(scoreWith(numeric, 'It costs $1,234.50.', '$1,234.50')).toEqual({ score: 1, extracted: '1234.5' });
    expect(scoreWith(numeric, 'about 3.1416', '3.14159')).toEqual({ score: 0, extracted: '3.1416' });
    expect(scoreWith({ scorer: 'numeric', tolerance: 0.001 }, 'about 3.1416', '3.14159')).toEqual({ score: 1, extracted: '3.1416' });
    expect(scoreWith(numeric, 'The result is -7.', '-7')).toEqual({ score: 1, extracted: '-7' });
    expect(scoreWith(numeric, 'no numbers here', '4')).toEqual({ score: 0, extracted: null });
  });

  it('scores loaded samples end to end with the configured scorer', async () => {
    const extra = { dataset_path: qaPath, prompt_template: '{{question}}', scorer: 'numeric', answer_field: 'answer' };
    const samples = (await load({ ...extra, dataset_path: jsonl('nums.jsonl', [{ question: 'a', answer: 4 }, { question: 'b', answer: '-2.5' }]) })) as [TaskSample, TaskSample];
    expect(custom.score(samples[0], 'It is 4.0', { extra })).toEqual({ score: 1, extracted: '4' });
    expect(custom.score(samples[1], 'minus 2.5', { extra })).toEqual({ score: 0, extracted: '2.5' });
  });
});

describe('custom aggregation', () => {
  it('aggregates accuracy with stats', () => {
    const scored: ScoredSample[] = [1, 1, 1, 0].map((score, i) => ({
      sample: { id: `custom-${i}`, groundTruth: 'x', data: {} },
      generations: [{ score, extracted: 'x' }],
    }));
    const { metrics, group } = custom.aggregate(scored, { extra: {} });
    expect(group).toBeUndefined();
    expect(metrics).toEqual({
      accuracy: {
        scores: {
          accuracy: {
            value: 0.75,
            stats: { count: 4, sum: 3, sum_squared: 3, min: 0, max: 1, mean: 0.75, variance: 0.25, stddev: 0.5, stderr: 0.25 },
          },
        },
      },
    });
    expect(MetricsSchema.parse(metrics)).toEqual(metrics);
  });

  it('declares both endpoint types and its defaults', () => {
    expect(custom.name).toBe('custom');
    expect(custom.supportedEndpointTypes).toEqual(['chat', 'completions']);
    expect(custom.defaultParams).toEqual({ max_new_tokens: 256, temperature: 0, extra: {} });
  });
});
