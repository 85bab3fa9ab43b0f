import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { GroupResultSchema, MetricsSchema, flattenMetrics } from '../../harness/results-schema.js';
import { DatasetError, TaskConfigError } from '../../harness/tasks/errors.js';
import {
  MMLU_SUBJECTS,
  extractMmluAnswer,
  mmlu,
  parseMmluCsv,
  subjectTitle,
  type MmluData,
} from '../../harness/tasks/mmlu.js';
import type { ScoredSample, TaskSample } from '../../harness/tasks/types.js';

const DATASET_DIR = fileURLToPath(new URL('../../../shared/datasets', import.meta.url));
const NO_PARAMS = { extra: {} };

/** Test-set sizes of a few subjects (rows in mmlu/test/<subject>_test.csv). */
const ROWS = { abstract_algebra: 100, anatomy: 135, virology: 166, professional_law: 1534 };

beforeAll(() => {
  // The datasets are part of the dev environment: a missing copy is a failure, never a skip.
  for (const dir of ['mmlu/test', 'mmlu/dev']) {
    if (!existsSync(`${DATASET_DIR}/${dir}/abstract_algebra_${dir.slice(5)}.csv`)) throw new Error(`MMLU dataset missing: ${DATASET_DIR}/${dir}`);
  }
});

function dataOf(sample: TaskSample | undefined): MmluData {
  if (!sample) throw new Error('no sample');
  return sample.data as unknown as MmluData;
}

describe('mmlu answer extraction', () => {
  const choices = ['London', 'Paris', 'Berlin', 'Rome'];
  const cases: [string, string, string | null][] = [
    ['a bare letter', 'B', 'B'],
    ['completions continuation with a leading space', ' C', 'C'],
    ['letter with a period and the option text', 'B. Paris', 'B'],
    ['letter with a parenthesis', 'D) Rome', 'D'],
    ['parenthesised letter first', '(C) Berlin is the capital of Germany, not France.', 'C'],
    ['markdown bold letter', '**B**', 'B'],
    ['lowercase letter with a parenthesis', 'b) Paris', 'B'],
    ['"The answer is (X)"', 'Paris is the capital and largest city of France. The answer is (B).', 'B'],
    ['"Answer: X" after reasoning', 'London is in England, Berlin in Germany, Rome in Italy.\nAnswer: B', 'B'],
    ['"**Answer**: X" in markdown', 'Let me think about each city.\n\n**Answer**: D', 'D'],
    ['"the correct option is X"', 'After considering all of them, the correct option is C because it fits best.', 'C'],
    ['first "answer is" cue wins over later letters', 'The correct answer is B. Option A is wrong because London is in England.', 'B'],
    ['"Option X is correct"', 'Option A is the capital of the UK. Option D is correct.', 'D'],
    ['"option x is the right answer" in lowercase', 'i think option d is the right answer', 'D'],
    ['a line that is just the letter', 'Let me think step by step.\nParis has been the capital since 987.\n\nB\n', 'B'],
    ['(X) in the middle of rambling text', 'Hmm, I think that the city we want is (D) because of the history of the empire.', 'D'],
    ['option text repeated verbatim', 'Paris', 'B'],
    ['option text with final punctuation and different case', 'paris.', 'B'],
    ['option text after "the answer is"', 'The answer is Berlin, which is a major European city.', 'C'],
    ['exactly one option text mentioned', 'The capital of France is Paris, of course.', 'B'],
    ['article "A" is not an answer', 'A city in France that is the capital is the one I want, I believe it is the second one.', null],
    ['standalone letter as last resort', 'I would go with C since it sounds right to me', 'C'],
    ['"answer is a" (article) is not the letter A', 'The answer is a bit unclear to me, maybe D', 'D'],
    ['no answer at all', "I'm not sure what you are asking.", null],
    ['empty output', '', null],
  ];
  it.each(cases)('%s', (_name, output, expected) => {
    expect(extractMmluAnswer(output, choices)).toBe(expected);
  });

  it('prefers the option containing the others when several option texts appear', () => {
    const tf = ['True, True', 'False, False', 'True, False', 'False, True'];
    expect(extractMmluAnswer('True, False', tf)).toBe('C');
    expect(extractMmluAnswer('I think it is True, False here', tf)).toBe('C');
  });

  it('stays linear on long runs of punctuation and blank lines (anchored trims used to retry from every position)', () => {
    // 200 kB: quadratic trimming took ~5 s at 20 kB, so minutes here; linear extraction takes milliseconds.
    const choices = ['alpha', 'beta', 'gamma', 'delta'];
    expect(extractMmluAnswer(`${'.'.repeat(200_000)} 5`, choices)).toBeNull();
    expect(extractMmluAnswer(`${'\n'.repeat(200_000)}x`, choices)).toBeNull();
    expect(extractMmluAnswer(`${' \n'.repeat(100_000)}B`, choices)).toBe('B');
  });

  it('treats an option text equal to a letter-like string through the letter rules', () => {
    expect(extractMmluAnswer('A', ['B', 'A', 'C', 'D'])).toBe('A');
  });
});

describe('mmlu CSV rows', () => {
  it('parses quoted fields with commas, newlines and doubled quotes', () => {
    const text = '"Q with ""quotes"", a comma\nand a newline?",1,"two, 2","",4,C\nplain question,a,b,c,d,A\n';
    expect(parseMmluCsv(text, 'x.csv')).toEqual([
      { question: 'Q with "quotes", a comma\nand a newline?', choices: ['1', 'two, 2', '', '4'], answer: 'C' },
      { question: 'plain question', choices: ['a', 'b', 'c', 'd'], answer: 'A' },
    ]);
  });

  it('names file and row for malformed rows', () => {
    expect(() => parseMmluCsv('q,a,b,c,d,A\nq,a,b,c,E\n', 'x.csv')).toThrow('x.csv: row 2: expected 6 fields (question, A, B, C, D, answer), got 5');
    expect(() => parseMmluCsv('q,a,b,c,d,E\n', 'x.csv')).toThrow('x.csv: row 1: answer must be A, B, C or D, got "E"');
  });
});

describe('mmlu loading', () => {
  let all: TaskSample[];
  beforeAll(async () => {
    all = await mmlu.loadSamples({ datasetDir: DATASET_DIR, extra: {} });
  });

  it('loads all 57 subjects and 14042 test rows', () => {
    expect(MMLU_SUBJECTS).toHaveLength(57);
    expect([...MMLU_SUBJECTS].sort()).toEqual([...MMLU_SUBJECTS]);
    expect(all).toHaveLength(14042);
    const subsets = new Set(all.map((s) => s.subset));
    expect(subsets.size).toBe(57);
    expect(new Set(all.map((s) => s.id)).size).toBe(14042);
    const counts = new Map<string, number>();
    for (const s of all) counts.set(s.subset ?? '', (counts.get(s.subset ?? '') ?? 0) + 1);
    for (const [subject, n] of Object.entries(ROWS)) expect(counts.get(subject)).toBe(n);
  });

  it('interleaves subjects round-robin in sorted order', () => {
    expect(all.slice(0, 57).map((s) => s.id)).toEqual(MMLU_SUBJECTS.map((s) => `mmlu-${s}-0`));
    expect(all[57]?.id).toBe('mmlu-abstract_algebra-1');
    expect(all[58]?.id).toBe('mmlu-anatomy-1');
    // The longest subject (professional_law, 1534 rows) is alone at the end.
    expect(all.at(-1)?.id).toBe('mmlu-professional_law-1533');
    expect(all.at(-2)?.id).toBe('mmlu-professional_law-1532');
    // Within a subject, file order.
    const virology = all.filter((s) => s.subset === 'virology').map((s) => s.id);
    expect(virology.slice(0, 3)).toEqual(['mmlu-virology-0', 'mmlu-virology-1', 'mmlu-virology-2']);
    expect(virology).toHaveLength(ROWS.virology);
  });

  it('keeps the question, choices, answer and subject of a row', () => {
    const first = all[0] as TaskSample;
    expect(first).toMatchObject({ id: 'mmlu-abstract_algebra-0', subset: 'abstract_algebra', groundTruth: 'B' });
    expect(dataOf(first)).toEqual({
      question: 'Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.',
      choices: ['0', '4', '2', '6'],
      answer: 'B',
      subject: 'abstract_algebra',
      fewshot: [],
    });
    // A quoted field with an embedded newline and doubled quotes (logical_fallacies row 109).
    const quoted = all.find((s) => s.id === 'mmlu-logical_fallacies-109');
    expect(dataOf(quoted).question).toBe(
      'Which of the statements below is correct about the following argument?\n\n"If the sky is blue there won\'t be rain. The sky is blue today. Therefore, there won\'t be rain."',
    );
    expect(dataOf(quoted).choices[2]).toBe('It is a formally valid conditional syllogism');
    expect(quoted?.groundTruth).toBe('C');
  });

  it('restricts to extra.subjects, still interleaved in sorted order', async () => {
    const samples = await mmlu.loadSamples({ datasetDir: DATASET_DIR, extra: { subjects: ['virology', 'anatomy', 'virology'] } });
    expect(samples).toHaveLength(ROWS.virology + ROWS.anatomy);
    expect(samples.slice(0, 4).map((s) => s.id)).toEqual(['mmlu-anatomy-0', 'mmlu-virology-0', 'mmlu-anatomy-1', 'mmlu-virology-1']);
    expect(samples.slice(2 * ROWS.anatomy, 2 * ROWS.anatomy + 2).map((s) => s.id)).toEqual(['mmlu-virology-135', 'mmlu-virology-136']);
    expect(new Set(samples.map((s) => s.subset))).toEqual(new Set(['anatomy', 'virology']));
  });

  it('rejects an unknown subject, naming it and listing the valid ones', async () => {
    const err = await mmlu.loadSamples({ datasetDir: DATASET_DIR, extra: { subjects: ['anatomy', 'astrology'] } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskConfigError);
    const message = (err as Error).message;
    expect(message).toContain('config.params.extra.subjects.1: unknown MMLU subject "astrology"');
    expect(message).toContain('valid subjects: abstract_algebra, anatomy, astronomy,');
    expect(message).toContain('world_religions');
  });

  it('rejects other invalid extra with the key path', async () => {
    const load = (extra: Record<string, unknown>) => mmlu.loadSamples({ datasetDir: DATASET_DIR, extra });
    await expect(load({ subjects: [] })).rejects.toThrow(/config\.params\.extra\.subjects: /);
    await expect(load({ subjects: 'anatomy' })).rejects.toThrow(/config\.params\.extra\.subjects: /);
    await expect(load({ num_fewshot: 6 })).rejects.toThrow(/config\.params\.extra\.num_fewshot: /);
    await expect(load({ fewshot: 5 })).rejects.toThrow('config.params.extra.fewshot: unknown key (valid keys: num_fewshot, subjects)');
  });

  it('num_fewshot uses the first dev rows of the subject', async () => {
    const samples = await mmlu.loadSamples({ datasetDir: DATASET_DIR, extra: { subjects: ['anatomy', 'virology'], num_fewshot: 5 } });
    expect(samples).toHaveLength(ROWS.virology + ROWS.anatomy);
    const anatomy = dataOf(samples[0]);
    expect(anatomy.fewshot).toHaveLength(5);
    expect(anatomy.fewshot[0]).toEqual({
      question: 'What is the embryological origin of the hyoid bone?',
      choices: ['The first pharyngeal arch', 'The first and second pharyngeal arches', 'The second pharyngeal arch', 'The second and third pharyngeal arches'],
      answer: 'D',
    });
    expect(dataOf(samples[1]).fewshot[0]?.question).toBe('Why are parvoviruses a highly impactful parasite?');
    expect(dataOf(samples[2]).fewshot).toBe(anatomy.fewshot);
  });

  it('names the missing file when the dataset is absent', async () => {
    const err = await mmlu.loadSamples({ datasetDir: '/nonexistent', extra: { subjects: ['anatomy'] } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetError);
    expect((err as Error).message).toBe('mmlu test set of anatomy: file not found: /nonexistent/mmlu/test/anatomy_test.csv');
  });
});

describe('mmlu prompts', () => {
  let zeroShot: TaskSample;
  let fewShot: TaskSample;
  beforeAll(async () => {
    zeroShot = (await mmlu.loadSamples({ datasetDir: DATASET_DIR, extra: { subjects: ['abstract_algebra'] } }))[0] as TaskSample;
    fewShot = (await mmlu.loadSamples({ datasetDir: DATASET_DIR, extra: { subjects: ['abstract_algebra'], num_fewshot: 2 } }))[0] as TaskSample;
  });

  const QUESTION =
    'Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\nA. 0\nB. 4\nC. 2\nD. 6';

  it('chat: the question about the subject and an instruction to answer with the letter', () => {
    expect(mmlu.buildPrompt(zeroShot, 'chat', NO_PARAMS)).toEqual({
      kind: 'chat',
      messages: [
        {
          role: 'user',
          content: `The following is a multiple choice question about abstract algebra.\n\n${QUESTION}\n\nAnswer with only the letter (A, B, C or D).`,
        },
      ],
    });
  });

  it('completions: the classic "…\\nAnswer:" format with stop "\\n"', () => {
    expect(mmlu.buildPrompt(zeroShot, 'completions', NO_PARAMS)).toEqual({
      kind: 'completions',
      prompt: `The following are multiple choice questions (with answers) about abstract algebra.\n\n${QUESTION}\nAnswer:`,
      stop: ['\n'],
    });
  });

  it('completions few-shot: dev examples with their answers before the question', () => {
    const prompt = mmlu.buildPrompt(fewShot, 'completions', NO_PARAMS);
    expect(prompt).toEqual({
      kind: 'completions',
      prompt:
        'The following are multiple choice questions (with answers) about abstract algebra.\n\n' +
        'Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer: B\n\n' +
        'Statement 1 | If aH is an element of a factor group, then |aH| divides |a|. Statement 2 | If H and K are subgroups of G then HK is a subgroup of G.\n' +
        'A. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer: B\n\n' +
        `${QUESTION}\nAnswer:`,
      stop: ['\n'],
    });
  });

  it('chat few-shot: dev examples as user/assistant turns answered with the letter', () => {
    const prompt = mmlu.buildPrompt(fewShot, 'chat', NO_PARAMS);
    if (prompt.kind !== 'chat') throw new Error('expected a chat prompt');
    expect(prompt.messages.map((m) => [m.role, m.role === 'assistant' ? m.content : m.content.slice(0, 67)])).toEqual([
      ['user', 'The following is a multiple choice question about abstract algebra.'],
      ['assistant', 'B'],
      ['user', 'The following is a multiple choice question about abstract algebra.'],
      ['assistant', 'B'],
      ['user', 'The following is a multiple choice question about abstract algebra.'],
    ]);
    expect(prompt.messages[0]?.content).toContain('Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1');
    expect(prompt.messages[4]?.content).toContain(QUESTION);
  });

  it('titles subjects without underscores', () => {
    expect(subjectTitle('high_school_us_history')).toBe('high school us history');
  });
});

describe('mmlu scoring and aggregation', () => {
  function sample(subject: string, row: number, answer: string): TaskSample {
    const data: MmluData = { question: 'q', choices: ['w', 'x', 'y', 'z'], answer: answer as MmluData['answer'], subject: subject as MmluData['subject'], fewshot: [] };
    return { id: `mmlu-${subject}-${row}`, subset: subject, groundTruth: answer, data: data as unknown as Record<string, unknown> };
  }

  it('scores the extracted letter against the reference, using the option texts', () => {
    const s = sample('anatomy', 0, 'C');
    expect(mmlu.score(s, 'The answer is (C).', NO_PARAMS)).toEqual({ score: 1, extracted: 'C' });
    expect(mmlu.score(s, 'y', NO_PARAMS)).toEqual({ score: 1, extracted: 'C' });
    expect(mmlu.score(s, 'B', NO_PARAMS)).toEqual({ score: 0, extracted: 'B' });
    expect(mmlu.score(s, 'no idea', NO_PARAMS)).toEqual({ score: 0, extracted: null });
  });

  it('aggregates micro accuracy with stats, macro accuracy and a per-subject group', () => {
    const plan: [string, number[]][] = [
      ['virology', [1, 1, 0, 1]],
      ['anatomy', [0, 1]],
      ['astronomy', [1]],
    ];
    const scored: ScoredSample[] = plan.flatMap(([subject, scores]) =>
      scores.map((score, row) => ({ sample: sample(subject, row, 'A'), generations: [{ score, extracted: score ? 'A' : 'B' }] })),
    );
    const { metrics, group } = mmlu.aggregate(scored, NO_PARAMS);

    const micro = metrics.accuracy?.scores.accuracy;
    expect(micro?.value).toBeCloseTo(5 / 7, 12);
    expect(micro?.stats).toMatchObject({ count: 7, sum: 5, sum_squared: 5, min: 0, max: 1 });
    expect(micro?.stats?.mean).toBeCloseTo(5 / 7, 12);
    expect(micro?.stats?.variance).toBeCloseTo(5 / 21, 12);
    expect(micro?.stats?.stderr).toBeCloseTo(Math.sqrt(5 / 21 / 7), 12);
    expect(metrics.accuracy?.scores.macro).toEqual({ value: 0.75 });

    expect(group?.metrics).toEqual(metrics);
    expect(Object.keys(group?.groups ?? {})).toEqual(['anatomy', 'astronomy', 'virology']);
    expect(group?.groups?.virology?.metrics.accuracy?.scores.accuracy).toEqual({
      value: 0.75,
      stats: { count: 4, sum: 3, sum_squared: 3, min: 0, max: 1, mean: 0.75, variance: 0.25, stddev: 0.5, stderr: 0.25 },
    });
    expect(group?.groups?.anatomy?.metrics.accuracy?.scores.accuracy?.value).toBe(0.5);
    expect(group?.groups?.astronomy?.metrics.accuracy?.scores.accuracy?.stats).toMatchObject({ count: 1, mean: 1, variance: 0, stderr: 0 });

    expect(MetricsSchema.parse(metrics)).toEqual(metrics);
    expect(GroupResultSchema.parse(group)).toEqual(group);
    const flat = flattenMetrics({ tasks: { mmlu: { metrics } }, groups: group ? { mmlu: group } : {} });
    expect(Object.keys(flat).sort()).toEqual([
      'mmlu_accuracy',
      'mmlu_accuracy_macro',
      'mmlu_anatomy_accuracy',
      'mmlu_astronomy_accuracy',
      'mmlu_virology_accuracy',
    ]);
    expect(flat.mmlu_accuracy_macro).toBe(0.75);
  });

  it('declares both endpoint types and its defaults', () => {
    expect(mmlu.name).toBe('mmlu');
    expect(mmlu.supportedEndpointTypes).toEqual(['chat', 'completions']);
    expect(mmlu.defaultParams).toEqual({ max_new_tokens: 32, temperature: 0, extra: { num_fewshot: 0 } });
  });
});
