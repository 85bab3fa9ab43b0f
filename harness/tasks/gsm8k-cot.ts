/**
 * GSM8K with the chain-of-thought prompt of lm-evaluation-harness's `gsm8k_cot`: up to 8 fixed worked exemplars
 * (each ending "The answer is N."), `Q: …\nA:` blocks, and its two answer filters scored as its `exact_match`:
 * strict-match (the first "The answer is N") and flexible-extract (the last number-like token). The per-sample score
 * is strict-match; the flexible verdict rides in `details` and has its own metric.
 *
 * Samples are every line of `<datasetDir>/gsm8k/test.jsonl` (the exemplars are not from the test split), ids
 * `gsm8k_cot-<line index>`.
 */
import { z } from 'zod';
import { meanScore, sampleMean, sampleMeanOf } from './aggregate.js';
import { BUILTIN_TASK_INFO } from './catalogue.js';
import { extraParser } from './extra.js';
import { readGsm8kTest } from './gsm8k.js';
import { parseNumber } from './numbers.js';
import type { ChatMessage, EndpointType, Prompt, SampleScore, ScoredSample, TaskDefinition, TaskSample } from './types.js';

/** Wei et al. 2022, "Chain-of-Thought Prompting Elicits Reasoning in Large Language Models", the GSM8K exemplars. */
export const GSM8K_COT_EXEMPLARS: readonly { question: string; reasoning: string }[] = [
  {
    question:
      'There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?',
    reasoning: 'There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6.',
  },
  {
    question: 'If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?',
    reasoning: 'There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.',
  },
  {
    question: 'Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?',
    reasoning: 'Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39. The answer is 39.',
  },
  {
    question: 'Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason give to Denny?',
    reasoning: 'Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. The answer is 8.',
  },
  {
    question: 'Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?',
    reasoning: 'Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. The answer is 9.',
  },
  {
    question:
      'There were nine computers in the server room. Five more computers were installed each day, from monday to thursday. How many computers are now in the server room?',
    reasoning: 'There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers were added. 9 + 20 is 29. The answer is 29.',
  },
  {
    question: 'Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls did he have at the end of wednesday?',
    reasoning: 'Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he had 35 - 2 = 33 golf balls. The answer is 33.',
  },
  {
    question: 'Olivia has $23. She bought five bagels for $3 each. How much money does she have left?',
    reasoning: 'Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. 23 - 15 is 8. The answer is 8.',
  },
];

const Gsm8kCotExtraSchema = z
  .object({
    num_fewshot: z.number().int().min(0).max(GSM8K_COT_EXEMPLARS.length).default(GSM8K_COT_EXEMPLARS.length),
  })
  .strict();
export const parseGsm8kCotExtra = extraParser(Gsm8kCotExtraSchema, 'gsm8k_cot');

/** lm-eval's `until` for gsm8k_cot (completions endpoints). */
export const GSM8K_COT_STOP = ['Q:', '</s>', '<|im_end|>'];

// ---------------------------------------------------------------------------------------------- prompts

const question = (q: string) => `Q: ${q}\nA:`;

export function buildGsm8kCotPrompt(sample: TaskSample, endpointType: EndpointType, numFewshot: number): Prompt {
  const exemplars = GSM8K_COT_EXEMPLARS.slice(0, numFewshot);
  const { question: asked } = sample.data as { question: string };
  if (endpointType === 'chat') {
    // lm-eval's fewshot_as_multiturn: each exemplar a user turn and the assistant's reasoning.
    const messages: ChatMessage[] = exemplars.flatMap((ex): ChatMessage[] => [
      { role: 'user', content: question(ex.question) },
      { role: 'assistant', content: ex.reasoning },
    ]);
    messages.push({ role: 'user', content: question(asked) });
    return { kind: 'chat', messages };
  }
  const shots = exemplars.map((ex) => `${question(ex.question)} ${ex.reasoning}\n\n`).join('');
  return { kind: 'completions', prompt: shots + question(asked), stop: [...GSM8K_COT_STOP] };
}

// ---------------------------------------------------------------------------------------------- extraction

/**
 * lm-eval's strict-match pattern. Its final `.` is a wildcard (any character but a newline, as in Python), so the
 * number must be followed by one more character: "The answer is 18." gives `18`, "The answer is 12. So" gives `12.`,
 * and a generation ending "The answer is 18" gives `1` (the `8` is taken by the wildcard), as lm-eval does. `$18`
 * does not match at all (`$` is outside the class).
 */
const STRICT_PATTERN = /The answer is (-?[0-9.,]+)[^\n]/;
/** lm-eval's flexible-extract pattern; its last match wins (the first non-empty group of it). */
const FLEXIBLE_PATTERN = /(-?[$0-9.,]{2,})|(-?[0-9]+)/g;

/** The strict-match answer as lm-eval's filter returns it (before exact_match's normalisation), or null. */
export function strictMatch(text: string): string | null {
  return STRICT_PATTERN.exec(text)?.[1] ?? null;
}

/** The flexible-extract answer as lm-eval's filter returns it, or null. */
export function flexibleExtract(text: string): string | null {
  let last: string | null = null;
  for (const m of text.matchAll(FLEXIBLE_PATTERN)) last = m[1] ?? m[2] ?? null;
  return last;
}

/** Numeric equality after exact_match's gsm8k normalisation (`,` `$` and a trailing `.` dropped): `18.00` = `18`. */
function matches(extracted: string | null, reference: string): boolean {
  const got = extracted === null ? null : parseNumber(extracted);
  const want = parseNumber(reference);
  return got !== null && want !== null && got === want;
}

/** `details` of a gsm8k_cot score: the flexible-extract answer and its verdict. */
export interface Gsm8kCotDetails {
  flexible: string | null;
  flexibleScore: number;
}

export function scoreGsm8kCot(sample: TaskSample, generation: string): SampleScore {
  const strict = strictMatch(generation);
  const flexible = flexibleExtract(generation);
  const details: Gsm8kCotDetails = { flexible, flexibleScore: matches(flexible, sample.groundTruth) ? 1 : 0 };
  return { score: matches(strict, sample.groundTruth) ? 1 : 0, extracted: strict, details: details as unknown as Record<string, unknown> };
}

const flexibleScore = (g: SampleScore) => (g.details as unknown as Gsm8kCotDetails).flexibleScore;

// ---------------------------------------------------------------------------------------------- task

export const gsm8kCot: TaskDefinition = {
  ...BUILTIN_TASK_INFO.gsm8k_cot,
  scoreName: 'exact_match_strict',

  async loadSamples(ctx) {
    parseGsm8kCotExtra(ctx.extra);
    const { problems } = await readGsm8kTest(ctx.datasetDir);
    return problems.map((p, i): TaskSample => ({ id: `gsm8k_cot-${i}`, groundTruth: p.answer, data: { question: p.question } }));
  },

  buildPrompt(sample, endpointType, params) {
    return buildGsm8kCotPrompt(sample, endpointType, parseGsm8kCotExtra(params.extra).num_fewshot);
  },

  score(sample, generation) {
    return scoreGsm8kCot(sample, generation);
  },

  aggregate(scored: readonly ScoredSample[]) {
    const strict = meanScore(scored.map(sampleMean));
    const flexible = meanScore(scored.map((s) => sampleMeanOf(s, flexibleScore)));
    return {
      metrics: {
        exact_match_strict: { scores: { exact_match_strict: strict } },
        exact_match_flexible: { scores: { exact_match_flexible: flexible } },
      },
    };
  },
};
