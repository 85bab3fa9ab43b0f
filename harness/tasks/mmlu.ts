/**
 * MMLU (57 subjects, 14,042 four-option questions; `<datasetDir>/mmlu/test/<subject>_test.csv`, few-shot rows from
 * `mmlu/dev/<subject>_dev.csv`): ask for the letter, extract it robustly, score exact match.
 *
 * Order: samples are interleaved round-robin across the (sorted) subjects — row 0 of every subject, then row 1, … —
 * so `limit_samples` takes a representative prefix. Only the files of the requested subjects are read.
 * Metrics: `accuracy` micro (over all samples, with stats) and `macro` (mean of per-subject accuracies), plus a
 * per-subject breakdown under the task's group.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { accuracyBySubset } from './aggregate.js';
import { parseCsv } from './csv.js';
import { interleave, readDatasetText } from './dataset-io.js';
import { DatasetError } from './errors.js';
import { extraParser } from './extra.js';
import type { ChatMessage, EndpointType, Prompt, SampleScore, TaskDefinition, TaskSample } from './types.js';
import { BUILTIN_TASK_INFO } from './catalogue.js';

export const MMLU_SUBJECTS = [
  'abstract_algebra', 'anatomy', 'astronomy', 'business_ethics', 'clinical_knowledge', 'college_biology',
  'college_chemistry', 'college_computer_science', 'college_mathematics', 'college_medicine', 'college_physics',
  'computer_security', 'conceptual_physics', 'econometrics', 'electrical_engineering', 'elementary_mathematics',
  'formal_logic', 'global_facts', 'high_school_biology', 'high_school_chemistry', 'high_school_computer_science',
  'high_school_european_history', 'high_school_geography', 'high_school_government_and_politics',
  'high_school_macroeconomics', 'high_school_mathematics', 'high_school_microeconomics', 'high_school_physics',
  'high_school_psychology', 'high_school_statistics', 'high_school_us_history', 'high_school_world_history',
  'human_aging', 'human_sexuality', 'international_law', 'jurisprudence', 'logical_fallacies', 'machine_learning',
  'management', 'marketing', 'medical_genetics', 'miscellaneous', 'moral_disputes', 'moral_scenarios', 'nutrition',
  'philosophy', 'prehistory', 'professional_accounting', 'professional_law', 'professional_medicine',
  'professional_psychology', 'public_relations', 'security_studies', 'sociology', 'us_foreign_policy', 'virology',
  'world_religions',
] as const;
export type MmluSubject = (typeof MMLU_SUBJECTS)[number];

export const MMLU_MAX_FEWSHOT = 5;
export const MMLU_LETTERS = ['A', 'B', 'C', 'D'] as const;
export type MmluLetter = (typeof MMLU_LETTERS)[number];

const SUBJECT_SET: ReadonlySet<string> = new Set(MMLU_SUBJECTS);

const MmluExtraSchema = z
  .object({
    subjects: z
      .array(z.string())
      .min(1)
      .superRefine((names, ctx) => {
        for (const [i, name] of names.entries()) {
          if (!SUBJECT_SET.has(name)) {
            ctx.addIssue({
              code: 'custom',
              path: [i],
              message: `unknown MMLU subject "${name}" (valid subjects: ${MMLU_SUBJECTS.join(', ')})`,
            });
          }
        }
      })
      .optional(),
    num_fewshot: z.number().int().min(0).max(MMLU_MAX_FEWSHOT).default(0),
  })
  .strict();
export type MmluExtra = z.output<typeof MmluExtraSchema>;
export const parseMmluExtra = extraParser(MmluExtraSchema, 'mmlu');

export interface MmluQuestion {
  question: string;
  choices: readonly [string, string, string, string];
  answer: MmluLetter;
}

/** `sample.data` of an mmlu sample. */
export interface MmluData extends MmluQuestion {
  subject: MmluSubject;
  /** Dev-set examples of the subject (one array shared by the subject's samples). */
  fewshot: readonly MmluQuestion[];
}

function data(sample: TaskSample): MmluData {
  return sample.data as unknown as MmluData;
}

/** Parses one MMLU CSV file (no header; question, A, B, C, D, answer letter). */
export function parseMmluCsv(text: string, source: string): MmluQuestion[] {
  return parseCsv(text, source).map((row, i) => {
    const [question, a, b, c, d, answer] = row;
    if (row.length !== 6 || question === undefined || a === undefined || b === undefined || c === undefined || d === undefined) {
      throw new DatasetError(`${source}: row ${i + 1}: expected 6 fields (question, A, B, C, D, answer), got ${row.length}`);
    }
    const letter = answer?.trim();
    if (letter !== 'A' && letter !== 'B' && letter !== 'C' && letter !== 'D') {
      throw new DatasetError(`${source}: row ${i + 1}: answer must be A, B, C or D, got ${JSON.stringify(answer)}`);
    }
    return { question, choices: [a, b, c, d], answer: letter };
  });
}

// ---------------------------------------------------------------------------------------------- extraction

const LEADING_NOISE = new Set([' ', '"', "'", '`', '*', '_']);
const TRAILING_NOISE = new Set([' ', '"', "'", '`', '*', '_', '.', '!']);

/**
 * Lower-cased, whitespace-collapsed text without surrounding quotes, markup and final punctuation. Trimmed by
 * index, not with an anchored regex: `[…]+$` retries from every position of a long run that is not at the end
 * (quadratic: seconds on 20 kB of dots).
 */
function normText(s: string): string {
  const t = s.toLowerCase().replace(/\s+/g, ' ');
  let start = 0;
  let end = t.length;
  while (start < end && LEADING_NOISE.has(t.charAt(start))) start++;
  while (end > start && TRAILING_NOISE.has(t.charAt(end - 1))) end--;
  return t.slice(start, end);
}

function isLetter(s: string | undefined): s is MmluLetter {
  return s === 'A' || s === 'B' || s === 'C' || s === 'D';
}

/** Index of the choice whose text `segment` starts with (longest wins), followed by a boundary; or -1. */
function choiceAtStart(segment: string, choices: readonly string[]): number {
  const seg = normText(segment);
  let best = -1;
  let bestLen = 0;
  choices.forEach((choice, i) => {
    const c = normText(choice);
    if (c === '' || !seg.startsWith(c) || c.length <= bestLen) return;
    const next = seg.charAt(c.length);
    if (next === '' || !/[\p{L}\p{N}]/u.test(next)) {
      best = i;
      bestLen = c.length;
    }
  });
  return best;
}

/** Choices whose text occurs in `text` as a whole phrase; when several do, the one containing all others. */
function choiceContained(text: string, choices: readonly string[]): number {
  const hay = normText(text);
  const found: number[] = [];
  choices.forEach((choice, i) => {
    const c = normText(choice);
    if (c.length < 2) return;
    for (let at = hay.indexOf(c); at !== -1; at = hay.indexOf(c, at + 1)) {
      const before = hay.charAt(at - 1);
      const after = hay.charAt(at + c.length);
      if (!/[\p{L}\p{N}]/u.test(before) && !/[\p{L}\p{N}]/u.test(after)) {
        found.push(i);
        return;
      }
    }
  });
  if (found.length === 1) return found[0] ?? -1;
  const texts = found.map((i) => normText(choices[i] ?? ''));
  const covering = found.filter((_, k) => texts.every((t) => (texts[k] ?? '').includes(t)));
  return covering.length === 1 ? (covering[0] ?? -1) : -1;
}

/** "answer is", "correct option:", "Answer:" … followed by the letter or the text of a choice. */
const ANSWER_CUE =
  /\b(?:(?:correct|right|best|final)\s+(?:answer|option|choice)|answer)[*_]*\s*(?:is|would\s+be|will\s+be|should\s+be|must\s+be|[:=])\s*(?:option\s+|choice\s+|letter\s+)?/gi;
/** The letter after a cue: uppercase, or lowercase only when parenthesised (`(b)`), not part of a word. */
const LETTER_AFTER_CUE = /^[\s*_"'`[:]*(\(?)([A-Da-d])(\)?)(?![\p{L}\p{N}'’])/u;
/** "Option B is correct", "(C) is the right answer". */
const LETTER_IS_CORRECT =
  /(?:\b(?:option|choice)\s+\(?([A-D])\)?|\(([A-D])\))\s+(?:is|seems|appears\s+to\s+be)\s+(?:the\s+)?(?:correct|right|best|answer)/i;
/** The output starts with the letter: `B`, `B.`, `b)`, `(B)`, `B:`, `**B**`, `Option B -` (not `A cat…`). */
const LEADING_LETTER = /^[\s*_#"'`>]*(?:option\s+|choice\s+)?\(?([A-D])(?=[.):\]*_]|\s*$|\s*\n|\s+[-–—])/i;
/** A line that is only the letter (with optional markup or punctuation); horizontal space only, so a run of blank lines is not rescanned from each line start. */
const LETTER_LINE = /^[ \t\r\f\v*_"'`([]*([A-D])[ \t\r\f\v*_"'`)\].:]*$/m;
const PAREN_LETTER = /\(([A-D])\)/;
/** A standalone capital letter A–D (not inside a word, not `C++`, not an apostrophe form). */
const STANDALONE_LETTER = /(?<![\p{L}\p{N}'’-])([A-D])(?![\p{L}\p{N}'’+#-])/gu;
/** After an `A` that is the English article: a lowercase word that is not a verb about the option. */
const ARTICLE_FOLLOWER = /^\s+(?!(?:is|was|would|seems|appears|must|should|could|and|or|because|since|as|only)\b)[a-z]/;

/**
 * Extracts the chosen letter from a model's answer to an MMLU question, robust to small-model output. In order:
 * the whole output repeats one option's text; `answer is (X)` / `Answer: X` / `the correct option is X` (or the
 * option's text after the cue), first such cue; `Option X is correct`; the output starts with the letter (`X`,
 * `X.`, `X)`, `(X)`, `**X**`); a line that is just `X`; `(X)` anywhere; exactly one option's text appears in the
 * output; the first standalone capital A–D that is not the article "A". Returns null when nothing matches.
 */
export function extractMmluAnswer(text: string, choices: readonly string[] = []): MmluLetter | null {
  const whole = normText(text);
  if (whole !== '' && !/^\(?[a-d]\)?$/.test(whole)) {
    const i = choices.findIndex((c) => normText(c) === whole);
    if (i !== -1) return MMLU_LETTERS[i] ?? null;
  }

  for (const m of text.matchAll(ANSWER_CUE)) {
    const rest = text.slice(m.index + m[0].length, m.index + m[0].length + 400);
    const l = LETTER_AFTER_CUE.exec(rest);
    if (l) {
      const [, open, letter = '', close] = l;
      const upper = letter.toUpperCase();
      if (isLetter(letter) || (open === '(' && close === ')' && isLetter(upper))) return upper as MmluLetter;
    }
    const line = rest.split('\n')[0] ?? '';
    const c = choiceAtStart(line, choices);
    if (c !== -1) return MMLU_LETTERS[c] ?? null;
  }

  const correct = LETTER_IS_CORRECT.exec(text);
  const correctLetter = (correct?.[1] ?? correct?.[2])?.toUpperCase();
  if (isLetter(correctLetter)) return correctLetter;

  const leading = LEADING_LETTER.exec(text)?.[1]?.toUpperCase();
  if (isLetter(leading)) return leading;

  const line = LETTER_LINE.exec(text)?.[1];
  if (isLetter(line)) return line;

  const paren = PAREN_LETTER.exec(text)?.[1];
  if (isLetter(paren)) return paren;

  const contained = choiceContained(text, choices);
  if (contained !== -1) return MMLU_LETTERS[contained] ?? null;

  for (const m of text.matchAll(STANDALONE_LETTER)) {
    const letter = m[1];
    if (letter === 'A' && ARTICLE_FOLLOWER.test(text.slice(m.index + 1))) continue;
    if (isLetter(letter)) return letter;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------- prompts

export function subjectTitle(subject: string): string {
  return subject.replace(/_/g, ' ');
}

function questionBlock(q: MmluQuestion): string {
  return `${q.question}\n${q.choices.map((c, i) => `${MMLU_LETTERS[i]}. ${c}`).join('\n')}`;
}

function chatQuestion(subject: string, q: MmluQuestion): string {
  return (
    `The following is a multiple choice question about ${subjectTitle(subject)}.\n\n` +
    `${questionBlock(q)}\n\n` +
    'Answer with only the letter (A, B, C or D).'
  );
}

export function buildMmluPrompt(sample: TaskSample, endpointType: EndpointType): Prompt {
  const d = data(sample);
  if (endpointType === 'chat') {
    const messages: ChatMessage[] = [];
    for (const ex of d.fewshot) {
      messages.push({ role: 'user', content: chatQuestion(d.subject, ex) });
      messages.push({ role: 'assistant', content: ex.answer });
    }
    messages.push({ role: 'user', content: chatQuestion(d.subject, d) });
    return { kind: 'chat', messages };
  }
  const header = `The following are multiple choice questions (with answers) about ${subjectTitle(d.subject)}.\n\n`;
  const shots = d.fewshot.map((ex) => `${questionBlock(ex)}\nAnswer: ${ex.answer}\n\n`).join('');
  return { kind: 'completions', prompt: `${header}${shots}${questionBlock(d)}\nAnswer:`, stop: ['\n'] };
}

// ---------------------------------------------------------------------------------------------- task

async function readSubject(datasetDir: string, split: 'test' | 'dev', subject: string): Promise<MmluQuestion[]> {
  const path = join(datasetDir, 'mmlu', split, `${subject}_${split}.csv`);
  return parseMmluCsv(await readDatasetText(path, `mmlu ${split} set of ${subject}`), path);
}

export const mmlu: TaskDefinition = {
  ...BUILTIN_TASK_INFO.mmlu,

  async loadSamples(ctx) {
    const extra = parseMmluExtra(ctx.extra);
    const subjects = (extra.subjects ? [...new Set(extra.subjects)] : [...MMLU_SUBJECTS]).sort() as MmluSubject[];
    const perSubject = await Promise.all(
      subjects.map(async (subject) => {
        const [test, dev] = await Promise.all([
          readSubject(ctx.datasetDir, 'test', subject),
          extra.num_fewshot > 0 ? readSubject(ctx.datasetDir, 'dev', subject) : Promise.resolve([]),
        ]);
        if (dev.length < extra.num_fewshot) {
          throw new DatasetError(`mmlu: dev set of ${subject} has ${dev.length} rows, num_fewshot is ${extra.num_fewshot}`);
        }
        const fewshot: readonly MmluQuestion[] = dev.slice(0, extra.num_fewshot);
        return test.map((q, row): TaskSample => {
          const d: MmluData = { question: q.question, choices: q.choices, answer: q.answer, subject, fewshot };
          return { id: `mmlu-${subject}-${row}`, subset: subject, groundTruth: q.answer, data: d as unknown as Record<string, unknown> };
        });
      }),
    );
    return interleave(new Map(subjects.map((subject, i) => [subject, perSubject[i] ?? []])));
  },

  buildPrompt(sample, endpointType) {
    return buildMmluPrompt(sample, endpointType);
  },

  score(sample, generation): SampleScore {
    const d = data(sample);
    const extracted = extractMmluAnswer(generation, d.choices);
    return { score: extracted !== null && extracted === sample.groundTruth ? 1 : 0, extracted };
  },

  aggregate(scored) {
    return accuracyBySubset(scored, { macro: true });
  },
};
