import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { MetricsSchema, flattenMetrics } from '../../harness/results-schema.js';
import { TaskConfigError } from '../../harness/tasks/errors.js';
import {
  GSM8K_COT_EXEMPLARS,
  GSM8K_COT_STOP,
  flexibleExtract,
  gsm8kCot,
  strictMatch,
  type Gsm8kCotDetails,
} from '../../harness/tasks/gsm8k-cot.js';
import type { ScoredSample, TaskSample } from '../../harness/tasks/types.js';

const DATASET_DIR = fileURLToPath(new URL('../../../shared/datasets', import.meta.url));
const GSM8K_FILE = `${DATASET_DIR}/gsm8k/test.jsonl`;

beforeAll(() => {
  // The datasets are part of the dev environment: a missing copy is a failure, never a skip.
  if (!existsSync(GSM8K_FILE)) throw new Error(`GSM8K dataset missing: ${GSM8K_FILE}`);
});

const sample: TaskSample = { id: 'gsm8k_cot-0', groundTruth: '18', data: { question: 'How many eggs?' } };
const params = (extra: Record<string, unknown> = {}) => ({ extra });

const TREES_Q =
  'There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?';
const TREES_A = 'There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6.';

describe('gsm8k_cot exemplars', () => {
  it('are the 8 of Wei et al. 2022, each ending "The answer is N."', () => {
    expect(GSM8K_COT_EXEMPLARS).toHaveLength(8);
    expect(GSM8K_COT_EXEMPLARS.map((e) => /The answer is (\d+)\.$/.exec(e.reasoning)?.[1])).toEqual(['6', '5', '39', '8', '9', '29', '33', '8']);
    expect(GSM8K_COT_EXEMPLARS[0]).toEqual({ question: TREES_Q, reasoning: TREES_A });
    expect(GSM8K_COT_EXEMPLARS[7]?.question).toBe('Olivia has $23. She bought five bagels for $3 each. How much money does she have left?');
  });
});

describe('gsm8k_cot prompts', () => {
  it('completions, 1 shot: Q/A blocks separated by a blank line, lm-eval stop sequences', () => {
    expect(gsm8kCot.buildPrompt(sample, 'completions', params({ num_fewshot: 1 }))).toEqual({
      kind: 'completions',
      prompt: `Q: ${TREES_Q}\nA: ${TREES_A}\n\nQ: How many eggs?\nA:`,
      stop: ['Q:', '</s>', '<|im_end|>'],
    });
    expect(GSM8K_COT_STOP).toEqual(['Q:', '</s>', '<|im_end|>']);
  });

  it('chat, 1 shot: the exemplar as a user and an assistant turn, then the question', () => {
    expect(gsm8kCot.buildPrompt(sample, 'chat', params({ num_fewshot: 1 }))).toEqual({
      kind: 'chat',
      messages: [
        { role: 'user', content: `Q: ${TREES_Q}\nA:` },
        { role: 'assistant', content: TREES_A },
        { role: 'user', content: 'Q: How many eggs?\nA:' },
      ],
    });
  });

  it('0 shots: the question alone', () => {
    expect(gsm8kCot.buildPrompt(sample, 'completions', params({ num_fewshot: 0 }))).toMatchObject({ prompt: 'Q: How many eggs?\nA:' });
    expect(gsm8kCot.buildPrompt(sample, 'chat', params({ num_fewshot: 0 }))).toEqual({
      kind: 'chat',
      messages: [{ role: 'user', content: 'Q: How many eggs?\nA:' }],
    });
  });

  it('defaults to all 8 exemplars, in order', () => {
    const completions = gsm8kCot.buildPrompt(sample, 'completions', params());
    const expected = GSM8K_COT_EXEMPLARS.map((e) => `Q: ${e.question}\nA: ${e.reasoning}\n\n`).join('') + 'Q: How many eggs?\nA:';
    expect(completions).toEqual({ kind: 'completions', prompt: expected, stop: GSM8K_COT_STOP });
    const chat = gsm8kCot.buildPrompt(sample, 'chat', params());
    expect(chat.kind === 'chat' && chat.messages).toEqual([
      ...GSM8K_COT_EXEMPLARS.flatMap((e) => [
        { role: 'user', content: `Q: ${e.question}\nA:` },
        { role: 'assistant', content: e.reasoning },
      ]),
      { role: 'user', content: 'Q: How many eggs?\nA:' },
    ]);
    expect(gsm8kCot.defaultParams).toEqual({ max_new_tokens: 256, temperature: 0, extra: { num_fewshot: 8 } });
  });
});

describe('gsm8k_cot extraction (lm-eval strict-match and flexible-extract)', () => {
  // [generation, strict-match answer, flexible-extract answer] as lm-eval's filters return them.
  const cases: [string, string | null, string | null][] = [
    ['It costs 1000 + 234 = 1,234. The answer is 1,234.', '1,234', '1,234.'],
    ['She has 3 + 15 = 18, so 18 apples', null, '18'],
    ['The answer is $18.00.', null, '$18.00.'],
    ['It falls 5 - 10 = -5 degrees. The answer is -5.', '-5', '-5.'],
    ['The answer is -3 degrees', '-3', '-3'],
    ['The answer is 12. No, wait: 6 * 3 = 18. The answer is 18.', '12.', '18.'],
    ['The answer is 18.00.\n\n', '18.00', '18.00.'],
    ['The answer is 18', '1', '18'],
    ['So 18 apples...', null, '...'],
    ['It costs -$5 now', null, '-$5'],
    ['no digits here.', null, null],
  ];
  it.each(cases)('%j', (text, strict, flexible) => {
    expect(strictMatch(text)).toBe(strict);
    expect(flexibleExtract(text)).toBe(flexible);
  });

  it('scores strict-match, keeps the flexible verdict in details, compares numerically', () => {
    const verdict = (generation: string, groundTruth = '18') => {
      const s = gsm8kCot.score({ ...sample, groundTruth }, generation, params());
      if (s instanceof Promise) throw new Error('gsm8k_cot scores synchronously');
      return [s.score, s.extracted, (s.details as unknown as Gsm8kCotDetails).flexible, (s.details as unknown as Gsm8kCotDetails).flexibleScore];
    };
    expect(verdict('6 * 3 = 18. The answer is 18.')).toEqual([1, '18', '18.', 1]);
    expect(verdict('The answer is 1,234.', '1234')).toEqual([1, '1,234', '1,234.', 1]);
    expect(verdict('so 18 apples')).toEqual([0, null, '18', 1]);
    expect(verdict('The answer is $18.00.')).toEqual([0, null, '$18.00.', 1]);
    expect(verdict('The answer is 18.00.')).toEqual([1, '18.00', '18.00.', 1]);
    expect(verdict('The answer is -5.', '-5')).toEqual([1, '-5', '-5.', 1]);
    expect(verdict('The answer is 18. Then 2 more: 20.')).toEqual([1, '18.', '20.', 0]);
    expect(verdict('The answer is 12. No: The answer is 18.')).toEqual([0, '12.', '18.', 1]);
    expect(verdict('The answer is 18')).toEqual([0, '1', '18', 1]);
    expect(verdict('18 apples...')).toEqual([0, null, '...', 0]);
    expect(verdict('I do not know.')).toEqual([0, null, null, 0]);
  });
});

describe('gsm8k_cot samples', () => {
  it('are every test line, ids by line index, the reference number after ####', async () => {
    const lines = readFileSync(GSM8K_FILE, 'utf8').split('\n').filter((l) => l.trim() !== '');
    const samples = await gsm8kCot.loadSamples({ datasetDir: DATASET_DIR, extra: {} });
    expect(samples).toHaveLength(lines.length);
    const first = JSON.parse(lines[0] as string) as { question: string; answer: string };
    expect(samples[0]).toEqual({ id: 'gsm8k_cot-0', groundTruth: '18', data: { question: first.question } });
    expect(samples.at(-1)?.id).toBe(`gsm8k_cot-${lines.length - 1}`);
    // num_fewshot picks exemplars; it never takes samples away.
    expect(await gsm8kCot.loadSamples({ datasetDir: DATASET_DIR, extra: { num_fewshot: 3 } })).toHaveLength(lines.length);
  });

  it('rejects num_fewshot outside 0..8 and unknown keys, naming the key path', async () => {
    for (const num_fewshot of [-1, 9, 2.5, '8']) {
      const err = await gsm8kCot.loadSamples({ datasetDir: DATASET_DIR, extra: { num_fewshot } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TaskConfigError);
      expect((err as Error).message).toMatch(/^task gsm8k_cot: config\.params\.extra\.num_fewshot: /);
    }
    expect(() => gsm8kCot.buildPrompt(sample, 'chat', params({ num_fewshot: 9 }))).toThrow(TaskConfigError);
    await expect(gsm8kCot.loadSamples({ datasetDir: DATASET_DIR, extra: { shots: 3 } })).rejects.toThrow(
      'config.params.extra.shots: unknown key (valid keys: num_fewshot)',
    );
  });
});

describe('gsm8k_cot metrics', () => {
  const scored = (verdicts: [number, number][][]): ScoredSample[] =>
    verdicts.map((generations, i) => ({
      sample: { ...sample, id: `gsm8k_cot-${i}` },
      generations: generations.map(([strict, flexible]) => ({ score: strict, extracted: null, details: { flexible: null, flexibleScore: flexible } })),
    }));

  it('exact_match_strict and exact_match_flexible: means with stats, flattened per task', () => {
    // 5 samples: strict 2/5, flexible 4/5.
    const { metrics, group } = gsm8kCot.aggregate(scored([[[1, 1]], [[0, 1]], [[1, 1]], [[0, 0]], [[0, 1]]]), params());
    expect(group).toBeUndefined();
    expect(Object.keys(metrics)).toEqual(['exact_match_strict', 'exact_match_flexible']);
    expect(metrics.exact_match_strict?.scores.exact_match_strict?.value).toBe(0.4);
    expect(metrics.exact_match_strict?.scores.exact_match_strict?.stats).toMatchObject({ count: 5, sum: 2, min: 0, max: 1 });
    expect(metrics.exact_match_flexible?.scores.exact_match_flexible?.value).toBe(0.8);
    expect(metrics.exact_match_flexible?.scores.exact_match_flexible?.stats).toMatchObject({ count: 5, sum: 4 });
    expect(MetricsSchema.parse(metrics)).toEqual(metrics);
    expect(flattenMetrics({ tasks: { gsm8k_cot: { metrics } } })).toEqual({ gsm8k_cot_exact_match_strict: 0.4, gsm8k_cot_exact_match_flexible: 0.8 });
    expect(gsm8kCot.scoreName).toBe('exact_match_strict');
  });

  it('averages several generations per sample first', () => {
    const { metrics } = gsm8kCot.aggregate(scored([[[1, 1], [0, 1]], [[0, 0], [0, 1]]]), params());
    expect(metrics.exact_match_strict?.scores.exact_match_strict?.value).toBe(0.25);
    expect(metrics.exact_match_flexible?.scores.exact_match_flexible?.value).toBe(0.75);
  });
});
