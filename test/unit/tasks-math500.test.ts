import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { MetricsSchema } from '../../harness/results-schema.js';
import { TaskConfigError } from '../../harness/tasks/errors.js';
import {
  extractMathAnswer,
  hendrycksNormalize,
  lastBoxed,
  mathAnswersEquivalent,
  minervaNormalize,
} from '../../harness/tasks/math-answer.js';
import { MATH500_INSTRUCTION, math500 } from '../../harness/tasks/math500.js';
import type { SampleScore, ScoredSample } from '../../harness/tasks/types.js';

const DATASET_DIR = fileURLToPath(new URL('../../../shared/datasets', import.meta.url));
const MATH500_FILE = `${DATASET_DIR}/math500/test.jsonl`;
const REFERENCE = fileURLToPath(new URL('../fixtures/math500/reference-verdicts.json', import.meta.url));

interface Row {
  problem: string;
  solution: string;
  answer: string;
  subject: string;
  unique_id: string;
}

function rows(): Row[] {
  return readFileSync(MATH500_FILE, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Row);
}

beforeAll(() => {
  if (!existsSync(MATH500_FILE)) throw new Error(`MATH-500 dataset missing: ${MATH500_FILE}`);
});

describe('math answer extraction', () => {
  const cases: [string, string, string | null][] = [
    ['last \\boxed{} with nested braces', 'So $x=\\boxed{2}$ first, then\n$\\boxed{\\frac{\\sqrt{3}}{2}}$.', '\\frac{\\sqrt{3}}{2}'],
    ['\\boxed with a space and no braces', 'The answer is $\\boxed 5$.', '5'],
    ['\\fbox{}', 'Hence \\fbox{12}.', '12'],
    ['an unclosed \\boxed{ falls back to an earlier one', 'We get \\boxed{7}. Check: \\boxed{7', '7'],
    ['Minerva cue', 'Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.', '\\frac{1}{2}'],
    ['"The answer is" line', 'Adding up, 3+4=7.\nThe answer is $7$.', '7'],
    ['last "Answer:" wins', 'Answer: 3\nWait, that is wrong.\nAnswer: 4', '4'],
    ['no answer stated', 'I am not sure how to solve this.', null],
    ['empty output', '', null],
  ];
  it.each(cases)('%s', (_name, output, expected) => {
    expect(extractMathAnswer(output)).toBe(expected);
  });

  it('finds the reference answer in every MATH-500 solution', () => {
    const all = rows();
    expect(all).toHaveLength(500);
    for (const row of all) {
      const boxed = lastBoxed(row.solution);
      expect(boxed, row.unique_id).not.toBeNull();
      expect(mathAnswersEquivalent(boxed, row.answer), `${row.unique_id}: ${boxed} vs ${row.answer}`).toBe(true);
    }
  });
});

describe('math answer normalisation', () => {
  it('normalises as the MATH grader does', () => {
    expect(hendrycksNormalize('\\dfrac{1}{2}')).toBe('\\frac{1}{2}');
    expect(hendrycksNormalize('\\tfrac12')).toBe('\\frac{1}{2}');
    expect(hendrycksNormalize('\\left( 3, \\frac{\\pi}{2} \\right)')).toBe('(3,\\frac{\\pi}{2})');
    expect(hendrycksNormalize('90^\\circ')).toBe('90');
    expect(hendrycksNormalize('5\\text{ cm}')).toBe('5');
    expect(hendrycksNormalize('k = 7')).toBe('7');
    expect(hendrycksNormalize('.5')).toBe('\\frac{1}{2}');
    expect(hendrycksNormalize('3/4')).toBe('\\frac{3}{4}');
    expect(hendrycksNormalize('\\sqrt3')).toBe('\\sqrt{3}');
    expect(hendrycksNormalize('50\\%')).toBe('50');
  });

  it('normalises as Minerva does', () => {
    expect(minervaNormalize('x = 5')).toBe('5');
    expect(minervaNormalize('12 \\text{ inches}')).toBe('12');
    expect(minervaNormalize('\\mbox{12 feet}')).toBe('12');
    expect(minervaNormalize('1,000')).toBe('1000');
    expect(minervaNormalize('0,1')).toBe('0,1');
    expect(minervaNormalize('\\textbf{(C)}')).toBe('(C)');
    expect(minervaNormalize('\\left(1,2\\right)')).toBe('\\left(1,2\\right)');
    expect(minervaNormalize('\\sqrt[3]2')).toBe('\\sqrt[3]{2}');
  });
});

describe('math answer equivalence', () => {
  const equal: [string, string][] = [
    ['\\frac{1}{2}', '\\dfrac{1}{2}'],
    ['0.5', '\\frac12'],
    ['1/2', '\\frac{1}{2}'],
    ['\\frac{2}{4}', '\\frac{1}{2}'],
    ['2\\sqrt{3}', '\\sqrt{12}'],
    ['3\\pi', '\\pi \\cdot 3'],
    ['\\frac{\\sqrt{2}}{2}', '\\sqrt{2}/2'],
    ['-\\frac{2}{3}', '\\frac{-2}{3}'],
    ['6.0', '6'],
    ['18.50', '18.5'],
    ['1,000', '1000'],
    ['90^\\circ', '90'],
    ['10\\%', '10'],
    ['\\$18.50', '18.50'],
    ['5 \\text{ cm}', '5'],
    ['x=5', '5'],
    ['(x+1)^2', 'x^2+2x+1'],
    ['\\left( 3, \\frac{\\pi}{2} \\right)', '(3,\\frac{\\pi}{2})'],
    ['[1, 2)', '[1,2)'],
    ['(-\\infty, 3]', '(-\\infty,3]'],
    ['\\text{(C)}', 'C'],
    ['\\text{Evelyn}', 'Evelyn'],
  ];
  it.each(equal)('%s ≡ %s', (a, b) => {
    expect(mathAnswersEquivalent(a, b)).toBe(true);
    expect(mathAnswersEquivalent(b, a)).toBe(true);
  });

  const different: [string, string][] = [
    ['2', '3'],
    ['0.333', '\\frac{1}{3}'],
    ['\\frac{3}{2}', '\\frac{2}{3}'],
    ['(1,2)', '[1,2]'],
    ['[1,2)', '(1,2]'],
    ['1, 2', '2, 1'],
    ['x+1', 'y+1'],
    ['(1,2)', '(1,2,3)'],
    ['', '0'],
  ];
  it.each(different)('%s ≢ %s', (a, b) => {
    expect(mathAnswersEquivalent(a, b)).toBe(false);
  });

  it('no extracted answer is never equivalent', () => {
    expect(mathAnswersEquivalent(null, '5')).toBe(false);
  });

  it('agrees with lm-eval’s hendrycks_math and minerva_math graders on 2,540 pairs from MATH-500', () => {
    const reference = JSON.parse(readFileSync(REFERENCE, 'utf8')) as {
      lm_eval: string;
      pairs: Array<{ pred: string; gold: string; kind: string; hendrycks_math: boolean; minerva_math: boolean }>;
    };
    expect(reference.lm_eval).toBe('0.4.13');
    expect(reference.pairs).toHaveLength(2540);
    // Equivalent exactly when at least one of the reference graders says so (see the fixture's README).
    const disagreements = reference.pairs.filter((p) => mathAnswersEquivalent(p.pred, p.gold) !== (p.hendrycks_math || p.minerva_math));
    expect(disagreements).toEqual([]);
    expect(reference.pairs.filter((p) => p.kind === 'changed value').every((p) => !mathAnswersEquivalent(p.pred, p.gold))).toBe(true);
  });
});

describe('math500 task', () => {
  it('loads 500 problems interleaved across the seven subjects, ids from the dataset', async () => {
    const samples = await math500.loadSamples({ datasetDir: DATASET_DIR, extra: {} });
    expect(samples).toHaveLength(500);
    expect(new Set(samples.map((s) => s.id)).size).toBe(500);
    const subjects = [...new Set(samples.map((s) => s.subset))].sort();
    expect(subjects).toEqual(['Algebra', 'Counting & Probability', 'Geometry', 'Intermediate Algebra', 'Number Theory', 'Prealgebra', 'Precalculus']);
    expect(samples.slice(0, 7).map((s) => s.subset)).toEqual(subjects);
    const first = rows().find((r) => r.unique_id === samples[0]?.id);
    expect(samples[0]?.groundTruth).toBe(first?.answer);
  });

  it('asks for a boxed answer on chat and completions endpoints', async () => {
    const [sample] = await math500.loadSamples({ datasetDir: DATASET_DIR, extra: {} });
    if (!sample) throw new Error('no sample');
    const chat = math500.buildPrompt(sample, 'chat', { extra: {} });
    expect(chat.kind === 'chat' && chat.messages[0]?.content.endsWith(MATH500_INSTRUCTION)).toBe(true);
    const completions = math500.buildPrompt(sample, 'completions', { extra: {} });
    expect(completions).toMatchObject({ kind: 'completions', stop: ['\n\nProblem:'] });
    expect(completions.kind === 'completions' && completions.prompt.endsWith('Solution:')).toBe(true);
  });

  it('rejects unknown extra keys', async () => {
    await expect(math500.loadSamples({ datasetDir: DATASET_DIR, extra: { num_fewshot: 4 } })).rejects.toThrow(TaskConfigError);
  });

  it('scores generations and reports accuracy per subject', async () => {
    const samples = (await math500.loadSamples({ datasetDir: DATASET_DIR, extra: {} })).slice(0, 7);
    const scored: ScoredSample[] = samples.map((sample, i) => {
      const generation = i < 3 ? `Reasoning…\nSo the answer is $\\boxed{${sample.groundTruth}}$.` : 'I give up.';
      return { sample, generations: [math500.score(sample, generation, { extra: {} }) as SampleScore] };
    });
    expect(scored.map((s) => s.generations[0]?.score)).toEqual([1, 1, 1, 0, 0, 0, 0]);
    expect(scored[0]?.generations[0]?.extracted).toBe(samples[0]?.groundTruth);
    const aggregate = math500.aggregate(scored, { extra: {} });
    expect(MetricsSchema.parse(aggregate.metrics)).toEqual(aggregate.metrics);
    expect(aggregate.metrics.accuracy?.scores.accuracy?.value).toBeCloseTo(3 / 7, 12);
    expect(Object.keys(aggregate.group?.groups ?? {})).toHaveLength(7);
    expect(aggregate.group?.groups?.Algebra?.metrics.accuracy?.scores.accuracy?.value).toBe(1);
  });
});
