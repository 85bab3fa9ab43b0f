import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { MetricsSchema, flattenMetrics } from '../../harness/results-schema.js';
import { DatasetError, TaskConfigError } from '../../harness/tasks/errors.js';
import {
  GSM8K_COMPLETIONS_STOP,
  extractGsm8kAnswer,
  gsm8k,
  parseGsm8kReference,
  type Gsm8kData,
} from '../../harness/tasks/gsm8k.js';
import type { ScoredSample, TaskSample } from '../../harness/tasks/types.js';

const DATASET_DIR = fileURLToPath(new URL('../../../shared/datasets', import.meta.url));
const GSM8K_FILE = `${DATASET_DIR}/gsm8k/test.jsonl`;
const NO_PARAMS = { extra: {} };

beforeAll(() => {
  // The datasets are part of the dev environment: a missing copy is a failure, never a skip.
  if (!existsSync(GSM8K_FILE)) throw new Error(`GSM8K dataset missing: ${GSM8K_FILE}`);
});

function fileLines(): { question: string; answer: string }[] {
  return readFileSync(GSM8K_FILE, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { question: string; answer: string });
}

describe('gsm8k answer extraction', () => {
  const cases: [string, string, string | null][] = [
    ['dataset style "#### N"', 'Janet sells 16 - 3 - 4 = 9 duck eggs a day.\nShe makes 9 * 2 = $18 every day.\n#### 18', '18'],
    ['"####N" without a space', 'He runs 3 * 60 = 180 meters per sprint.\n####540', '540'],
    ['"#### N" beats a later number', '#### 72\n\nQuestion: Tom has 3 cats and 4 dogs.', '72'],
    ['"The final answer is N"', 'She eats 3 and bakes 4, so she sells 9 eggs at $2 each.\nThe final answer is 18', '18'],
    ['money with thousands separator and cents', 'Total cost: 1000 + 234.50.\nThe final answer is $1,234.50.', '1234.5'],
    ['negative answer', 'The temperature falls 15 degrees from 5, so it is 5 - 15 = -10.\nSo the answer is -10.', '-10'],
    ['Unicode minus', 'The balance is now −7 dollars. The final answer is −7', '-7'],
    ['decimal that is an integer', 'Final Answer: 18.00', '18'],
    ['markdown bold after "answer is:"', 'Adding everything up gives 72.\n\n**The answer is: 72**', '72'],
    ['boxed inside "final answer is"', 'First, 6 * 7 = 42 and 42 / 2 = 21.\nThe final answer is $\\boxed{21}$.', '21'],
    ['bare \\boxed{} among other numbers', 'We compute 3 + 4 = 7, then 7 \\times 6 = 42.\n\\[\n\\boxed{42}\n\\]\nCheck: 42 / 6 = 7.', '42'],
    ['\\boxed{} with a dollar sign and separator', 'So the total is \\boxed{\\$1,600}.', '1600'],
    ['arithmetic right after the cue', 'The answer is 16 - 3 - 4 = 9', '9'],
    ['self-correction: "final answer" outranks "answer is"', 'The answer is 5. Wait, I forgot the tip. The final answer is 7.', '7'],
    ['the last "answer is" wins', 'The answer is 5 apples. Let me double check: the answer is 6.', '6'],
    ['filler words between cue and number', 'In 2019 she was 25, so the answer is therefore 30 years.', '30'],
    ['cue without a number falls back to the last number', 'The answer is clear: she earned 12 dollars in 3 days, i.e. 4 per day', '4'],
    ['rambling small model: last number', "Let's think. Janet has 16 eggs. She eats 3. 16 - 3 = 13. She bakes 4. 13 - 4 = 9. She sells 9 eggs for $2. 9 x 2 = 18. So she makes 18 dollars every day.", '18'],
    ['small model continues with a new question after the final answer', 'The final answer is 42.\n\nQuestion: A farmer has 12 cows and 3 barns. How many', '42'],
    ['hyphen between numbers is not a minus sign', 'There were 10-3=7 left', '7'],
    ['spaced subtraction is not a negative number', 'He had 10 - 3', '3'],
    ['leading decimal point', 'the answer is .5', '0.5'],
    ['negative decimal', 'The water level changed by -3.5 cm.', '-3.5'],
    ['no number at all', "I'm sorry, I cannot solve this problem.", null],
    ['empty output', '', null],
  ];
  it.each(cases)('%s', (_name, output, expected) => {
    expect(extractGsm8kAnswer(output)).toBe(expected);
  });
});

describe('gsm8k reference answers', () => {
  it('splits reasoning and final number, dropping calculator annotations and separators', () => {
    expect(parseGsm8kReference('It takes 2/2=<<2/2=1>>1 bolt.\nSo 2+1=<<2+1=3>>3.\n#### 3')).toEqual({
      solution: 'It takes 2/2=1 bolt.\nSo 2+1=3.',
      answer: '3',
    });
    expect(parseGsm8kReference('So he makes $2,125.\n#### 2,125')?.answer).toBe('2125');
    expect(parseGsm8kReference('no final line')).toBeNull();
  });
});

describe('gsm8k loading', () => {
  it('loads all 1319 test problems in file order with line-index ids and numeric references', async () => {
    const samples = await gsm8k.loadSamples({ datasetDir: DATASET_DIR, extra: {} });
    const lines = fileLines();
    expect(samples).toHaveLength(1319);
    expect(samples.map((s) => s.id).slice(0, 3)).toEqual(['gsm8k-0', 'gsm8k-1', 'gsm8k-2']);
    expect(samples[1318]?.id).toBe('gsm8k-1318');
    expect(samples[0]?.groundTruth).toBe('18');
    expect((samples[0]?.data as unknown as Gsm8kData).question).toBe(lines[0]?.question);
    expect((samples[0]?.data as unknown as Gsm8kData).fewshot).toEqual([]);
    expect(samples[0]?.subset).toBeUndefined();
    // "#### 2,125" (line 147) and "#### -10" (line 490)
    expect(lines[146]?.answer.endsWith('#### 2,125')).toBe(true);
    expect(samples[146]?.groundTruth).toBe('2125');
    expect(lines[489]?.answer.endsWith('#### -10')).toBe(true);
    expect(samples[489]?.groundTruth).toBe('-10');
    expect(new Set(samples.map((s) => s.id)).size).toBe(1319);
  });

  it('num_fewshot takes the examples from the end of the file and leaves them out of the samples', async () => {
    const samples = await gsm8k.loadSamples({ datasetDir: DATASET_DIR, extra: { num_fewshot: 3 } });
    expect(samples).toHaveLength(1316);
    expect(samples.at(-1)?.id).toBe('gsm8k-1315');
    const { fewshot } = samples[0]?.data as unknown as Gsm8kData;
    expect(fewshot).toHaveLength(3);
    expect(fewshot[0]?.question.startsWith("Mark's car breaks down")).toBe(true);
    expect(fewshot[2]).toEqual({
      question:
        'Henry and 3 of his friends order 7 pizzas for lunch. Each pizza is cut into 8 slices. If Henry and his friends want to share the pizzas equally, how many slices can each of them have?',
      solution: 'There are 7*8=56 slices in total.\nThere are 1+3=4 people in total.\nThey can each have 56/4=14 slices.',
      answer: '14',
    });
    // The same array is shared by every sample, not copied.
    expect((samples[500]?.data as unknown as Gsm8kData).fewshot).toBe(fewshot);
  });

  it('rejects invalid extra with the key path', async () => {
    await expect(gsm8k.loadSamples({ datasetDir: DATASET_DIR, extra: { num_fewshot: -1 } })).rejects.toThrow(
      /config\.params\.extra\.num_fewshot: /,
    );
    await expect(gsm8k.loadSamples({ datasetDir: DATASET_DIR, extra: { num_fewshot: 2.5 } })).rejects.toThrow(TaskConfigError);
    await expect(gsm8k.loadSamples({ datasetDir: DATASET_DIR, extra: { num_fewshot: 21 } })).rejects.toThrow(
      /config\.params\.extra\.num_fewshot/,
    );
    await expect(gsm8k.loadSamples({ datasetDir: DATASET_DIR, extra: { nshot: 3 } })).rejects.toThrow(
      'config.params.extra.nshot: unknown key (valid keys: num_fewshot)',
    );
  });

  it('names the missing file when the dataset is absent', async () => {
    const err = await gsm8k.loadSamples({ datasetDir: '/nonexistent/datasets', extra: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetError);
    expect((err as Error).message).toBe('gsm8k dataset: file not found: /nonexistent/datasets/gsm8k/test.jsonl');
  });
});

describe('gsm8k prompts', () => {
  let samples: TaskSample[];
  let fewshotSamples: TaskSample[];
  beforeAll(async () => {
    samples = await gsm8k.loadSamples({ datasetDir: DATASET_DIR, extra: {} });
    fewshotSamples = await gsm8k.loadSamples({ datasetDir: DATASET_DIR, extra: { num_fewshot: 2 } });
  });

  it('chat: one zero-shot chain-of-thought user message asking for "The final answer is"', () => {
    const sample = samples[0] as TaskSample;
    const question = (sample.data as unknown as Gsm8kData).question;
    expect(gsm8k.buildPrompt(sample, 'chat', NO_PARAMS)).toEqual({
      kind: 'chat',
      messages: [
        {
          role: 'user',
          content:
            'Given the following problem, reason and give a final answer to the problem.\n' +
            `Problem: ${question}\n` +
            'Your response should end with "The final answer is [number]" where [number] is the final numeric answer to the problem.',
        },
      ],
    });
  });

  it('completions: "Question: …\\nAnswer: Let\'s think step by step." with stop sequences', () => {
    const sample = samples[1] as TaskSample;
    const question = (sample.data as unknown as Gsm8kData).question;
    const prompt = gsm8k.buildPrompt(sample, 'completions', NO_PARAMS);
    expect(prompt).toEqual({
      kind: 'completions',
      prompt: `Question: ${question}\nAnswer: Let's think step by step.`,
      stop: ['\n\nQuestion:', '\nQuestion:', '</s>', '<|im_end|>'],
    });
    expect(GSM8K_COMPLETIONS_STOP.length).toBeLessThanOrEqual(4); // OpenAI's limit on stop sequences
  });

  it('chat few-shot: worked examples as user/assistant turns before the question', () => {
    const sample = fewshotSamples[0] as TaskSample;
    const prompt = gsm8k.buildPrompt(sample, 'chat', NO_PARAMS);
    if (prompt.kind !== 'chat') throw new Error('expected a chat prompt');
    expect(prompt.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user']);
    expect(prompt.messages[1]?.content).toBe(
      'Let C be the number of chickens.\nThere are 20-C cows.\nThe cows have 4*(20-C) legs.\nThe cows have 2C legs.\n' +
        'The total number of legs is 2C+4(20-C)=70.\n2C+80-4C=70\n2C=10\nC=5\nThe final answer is 5.',
    );
    expect(prompt.messages[2]?.content).toContain('Problem: Henry and 3 of his friends order 7 pizzas');
    expect(prompt.messages[4]?.content).toContain("Problem: Janet’s ducks lay 16 eggs per day.");
  });

  it('completions few-shot: examples in the same Question/Answer format, one line each', () => {
    const sample = fewshotSamples[0] as TaskSample;
    const prompt = gsm8k.buildPrompt(sample, 'completions', NO_PARAMS);
    if (prompt.kind !== 'completions') throw new Error('expected a completions prompt');
    const blocks = prompt.prompt.split('\n\n');
    expect(blocks).toHaveLength(3);
    expect(blocks[1]).toBe(
      'Question: Henry and 3 of his friends order 7 pizzas for lunch. Each pizza is cut into 8 slices. If Henry and his friends want to share the pizzas equally, how many slices can each of them have?\n' +
        "Answer: Let's think step by step. There are 7*8=56 slices in total. There are 1+3=4 people in total. They can each have 56/4=14 slices. The final answer is 14.",
    );
    expect(blocks[2]).toBe(`Question: ${(sample.data as unknown as Gsm8kData).question}\nAnswer: Let's think step by step.`);
  });
});

describe('gsm8k scoring and aggregation', () => {
  const sample: TaskSample = { id: 'gsm8k-0', groundTruth: '18', data: { question: 'q', fewshot: [] } };

  it('scores numerically after normalisation', () => {
    expect(gsm8k.score(sample, 'The final answer is 18.00', NO_PARAMS)).toEqual({ score: 1, extracted: '18' });
    expect(gsm8k.score(sample, 'She makes $18.', NO_PARAMS)).toEqual({ score: 1, extracted: '18' });
    expect(gsm8k.score(sample, 'The answer is 19', NO_PARAMS)).toEqual({ score: 0, extracted: '19' });
    expect(gsm8k.score(sample, 'no idea', NO_PARAMS)).toEqual({ score: 0, extracted: null });
    const big: TaskSample = { ...sample, groundTruth: '1234.5' };
    expect(gsm8k.score(big, 'It costs $1,234.50 in total.', NO_PARAMS)).toEqual({ score: 1, extracted: '1234.5' });
  });

  it('aggregates accuracy = mean with exact stats', () => {
    const scored: ScoredSample[] = [1, 0, 1, 1, 0].map((score, i) => ({
      sample: { ...sample, id: `gsm8k-${i}` },
      generations: [{ score, extracted: null }],
    }));
    const { metrics, group } = gsm8k.aggregate(scored, NO_PARAMS);
    expect(group).toBeUndefined();
    expect(Object.keys(metrics)).toEqual(['accuracy']);
    const acc = metrics.accuracy?.scores.accuracy;
    expect(acc?.value).toBe(0.6);
    expect(acc?.stats).toMatchObject({ count: 5, sum: 3, sum_squared: 3, min: 0, max: 1, mean: 0.6 });
    expect(acc?.stats?.variance).toBeCloseTo(0.3, 12);
    expect(acc?.stats?.stddev).toBeCloseTo(Math.sqrt(0.3), 12);
    expect(acc?.stats?.stderr).toBeCloseTo(Math.sqrt(0.06), 12);
    expect(MetricsSchema.parse(metrics)).toEqual(metrics);
    expect(flattenMetrics({ tasks: { gsm8k: { metrics } } })).toEqual({ gsm8k_accuracy: 0.6 });
  });

  it('aggregates an empty list to 0 with count 0', () => {
    const { metrics } = gsm8k.aggregate([], NO_PARAMS);
    expect(metrics.accuracy?.scores.accuracy).toEqual({
      value: 0,
      stats: { count: 0, sum: 0, sum_squared: 0, min: 0, max: 0, mean: 0, variance: 0, stddev: 0, stderr: 0 },
    });
  });

  it('declares both endpoint types and its defaults', () => {
    expect(gsm8k.name).toBe('gsm8k');
    expect(gsm8k.supportedEndpointTypes).toEqual(['chat', 'completions']);
    expect(gsm8k.defaultParams).toEqual({ max_new_tokens: 512, temperature: 0, extra: { num_fewshot: 0 } });
  });
});
