/**
 * GSM8K (grade-school math word problems, `<datasetDir>/gsm8k/test.jsonl`): generate a chain of thought, extract
 * the final number, compare numerically with the reference after `####`.
 *
 * Few-shot: the dataset ships only the test split, so `extra.num_fewshot = k` takes the LAST k lines of the test
 * file as worked examples (in file order, `<<…>>` calculator annotations removed) and leaves them out of the
 * samples; ids keep their line index, so `gsm8k-0` is the same problem whatever k is.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { accuracyMetrics } from './aggregate.js';
import { readJsonl } from './dataset-io.js';
import { DatasetError } from './errors.js';
import { extraParser } from './extra.js';
import { NUMBER_PATTERN, normalizeNumber, parseNumber } from './numbers.js';
import type { ChatMessage, EndpointType, Prompt, SampleScore, TaskDefinition, TaskSample } from './types.js';
import { BUILTIN_TASK_INFO } from './catalogue.js';

export const GSM8K_MAX_FEWSHOT = 20;

const Gsm8kExtraSchema = z
  .object({
    num_fewshot: z.number().int().min(0).max(GSM8K_MAX_FEWSHOT).default(0),
  })
  .strict();
export type Gsm8kExtra = z.output<typeof Gsm8kExtraSchema>;
export const parseGsm8kExtra = extraParser(Gsm8kExtraSchema, 'gsm8k');

/** A worked example for few-shot prompts. */
export interface Gsm8kExample {
  question: string;
  /** The reference reasoning without the `#### N` line and without `<<…>>` annotations. */
  solution: string;
  /** The final answer, canonical number text. */
  answer: string;
}

/** `sample.data` of a gsm8k sample. */
export interface Gsm8kData {
  question: string;
  /** Few-shot examples (one array shared by all samples of a load). */
  fewshot: readonly Gsm8kExample[];
}

/** Stop sequences for completions endpoints (at most 4, the OpenAI API limit). */
export const GSM8K_COMPLETIONS_STOP = ['\n\nQuestion:', '\nQuestion:', '</s>', '<|im_end|>'];

function data(sample: TaskSample): Gsm8kData {
  return sample.data as unknown as Gsm8kData;
}

/** Splits a GSM8K reference answer into its reasoning and its final number (canonical text). */
export function parseGsm8kReference(answer: string): { solution: string; answer: string } | null {
  const idx = answer.lastIndexOf('####');
  if (idx === -1) return null;
  const final = normalizeNumber(answer.slice(idx + 4));
  if (final === null) return null;
  const solution = answer
    .slice(0, idx)
    .replace(/<<[^>]*>>/g, '')
    .trim();
  return { solution, answer: final };
}

/**
 * The problems of `<datasetDir>/gsm8k/test.jsonl` in file order, each with its reference reasoning and final number;
 * a line without string `question` and `answer` or without `#### <number>` is a DatasetError naming it.
 */
export async function readGsm8kTest(datasetDir: string): Promise<{ path: string; problems: Gsm8kExample[] }> {
  const path = join(datasetDir, 'gsm8k', 'test.jsonl');
  const rows = await readJsonl(path, 'gsm8k dataset');
  const problems = rows.map(({ value, line }): Gsm8kExample => {
    const { question, answer } = value;
    if (typeof question !== 'string' || typeof answer !== 'string') {
      throw new DatasetError(`${path}:${line}: expected string fields "question" and "answer"`);
    }
    const ref = parseGsm8kReference(answer);
    if (ref === null) throw new DatasetError(`${path}:${line}: answer does not end with "#### <number>"`);
    return { question, ...ref };
  });
  return { path, problems };
}

// ---------------------------------------------------------------------------------------------- extraction

/** What may sit between an answer cue ("answer is") and the number: punctuation, markup, LaTeX, filler words. */
const CUE_FILLER = new RegExp(
  String.raw`^(?:[\s:=*_"'\x60$\\{}()[\]~≈]|boxed|textbf|text|mathbf|approximately|approx\.?|about|exactly|just|equal to|equals|therefore|thus|then|so|simply|now|indeed)*`,
  'i',
);
const NUMBER_AT_START = new RegExp(String.raw`^(?:${NUMBER_PATTERN})`);
/** `16 - 3 - 4 = 9` right after the cue: the result after the last `=` is the answer. */
const ARITHMETIC_TAIL = new RegExp(String.raw`^(?:\s*[-+*/×x÷]\s*\$?[\d.,]+)+\s*=\s*(${NUMBER_PATTERN})`);

/** The number right after a cue (allowing markup and filler in between), or null. */
function numberAfter(text: string, from: number): string | null {
  const tail = text.slice(from, from + 200);
  const filler = CUE_FILLER.exec(tail)?.[0].length ?? 0;
  const rest = tail.slice(filler);
  const m = NUMBER_AT_START.exec(rest);
  if (!m) return null;
  const result = ARITHMETIC_TAIL.exec(rest.slice(m[0].length));
  return normalizeNumber(result?.[1] ?? m[0]);
}

/** Cue tiers, strongest first; within a tier the last cue that is followed by a number wins. */
const CUE_TIERS: readonly RegExp[] = [
  /####/g,
  /final\s+answer\s*(?:is|was|would\s+be|will\s+be|:|=)?/gi,
  /\banswer\s*(?:is|was|would\s+be|will\s+be|:|=)/gi,
  /\\boxed\s*\{/g,
];

/**
 * Extracts the final numeric answer from a model's output, in this order: `#### N`; `final answer is N`;
 * `answer is N` / `Answer: N`; `\boxed{N}`; else the last number in the text. Returns canonical number text
 * (`$1,234.50` → `1234.5`, `18.00` → `18`) or null when the text holds no number.
 */
export function extractGsm8kAnswer(text: string): string | null {
  for (const cue of CUE_TIERS) {
    let found: string | null = null;
    for (const m of text.matchAll(cue)) {
      const n = numberAfter(text, m.index + m[0].length);
      if (n !== null) found = n;
    }
    if (found !== null) return found;
  }
  const all = Array.from(text.matchAll(new RegExp(NUMBER_PATTERN, 'g')), (m) => m[0]);
  for (let i = all.length - 1; i >= 0; i--) {
    const n = normalizeNumber(all[i] ?? '');
    if (n !== null) return n;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------- prompts

function chatInstruction(question: string): string {
  return (
    'Given the following problem, reason and give a final answer to the problem.\n' +
    `Problem: ${question}\n` +
    'Your response should end with "The final answer is [number]" where [number] is the final numeric answer to the problem.'
  );
}

function completionsBlock(question: string): string {
  return `Question: ${question}\nAnswer: Let's think step by step.`;
}

function exampleReasoning(ex: Gsm8kExample, oneLine: boolean): string {
  const solution = oneLine ? ex.solution.replace(/\s*\n\s*/g, ' ') : ex.solution;
  return `${solution}${oneLine ? ' ' : '\n'}The final answer is ${ex.answer}.`;
}

export function buildGsm8kPrompt(sample: TaskSample, endpointType: EndpointType): Prompt {
  const { question, fewshot } = data(sample);
  if (endpointType === 'chat') {
    const messages: ChatMessage[] = [];
    for (const ex of fewshot) {
      messages.push({ role: 'user', content: chatInstruction(ex.question) });
      messages.push({ role: 'assistant', content: exampleReasoning(ex, false) });
    }
    messages.push({ role: 'user', content: chatInstruction(question) });
    return { kind: 'chat', messages };
  }
  const shots = fewshot.map((ex) => `${completionsBlock(ex.question)} ${exampleReasoning(ex, true)}\n\n`).join('');
  return { kind: 'completions', prompt: shots + completionsBlock(question), stop: [...GSM8K_COMPLETIONS_STOP] };
}

// ---------------------------------------------------------------------------------------------- task

export const gsm8k: TaskDefinition = {
  ...BUILTIN_TASK_INFO.gsm8k,

  async loadSamples(ctx) {
    const { num_fewshot } = parseGsm8kExtra(ctx.extra);
    const { path, problems } = await readGsm8kTest(ctx.datasetDir);
    if (num_fewshot >= problems.length) {
      throw new DatasetError(`gsm8k: num_fewshot ${num_fewshot} leaves no samples in ${path} (${problems.length} rows)`);
    }
    const cut = problems.length - num_fewshot;
    const fewshot: readonly Gsm8kExample[] = problems.slice(cut);
    return problems.slice(0, cut).map((p, i): TaskSample => {
      const d: Gsm8kData = { question: p.question, fewshot };
      return { id: `gsm8k-${i}`, groundTruth: p.answer, data: d as unknown as Record<string, unknown> };
    });
  },

  buildPrompt(sample, endpointType) {
    return buildGsm8kPrompt(sample, endpointType);
  },

  score(sample, generation): SampleScore {
    const extracted = extractGsm8kAnswer(generation);
    const got = extracted === null ? null : parseNumber(extracted);
    const want = parseNumber(sample.groundTruth);
    return { score: got !== null && want !== null && got === want ? 1 : 0, extracted };
  },

  aggregate(scored) {
    return { metrics: accuracyMetrics(scored) };
  },
};
