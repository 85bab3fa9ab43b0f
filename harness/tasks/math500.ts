/**
 * MATH-500 (`<datasetDir>/math500/test.jsonl`: 500 competition problems chosen by Lightman et al. 2023 from the MATH
 * test set, with `problem`, `solution`, `answer`, `subject`, `level`, `unique_id`): the model reasons and puts its
 * final answer in `\boxed{}`; the answer is extracted and compared with the reference by `mathAnswersEquivalent`
 * (MATH and Minerva normalisation, then value equality). Accuracy over all problems plus one group per subject.
 *
 * Order: problems are interleaved round-robin across the (sorted) subjects, so `limit_samples` takes a
 * representative prefix; ids are the dataset's `unique_id` (`test/precalculus/807.json`).
 */
import { join } from 'node:path';
import { z } from 'zod';
import { accuracyBySubset } from './aggregate.js';
import { interleave, readJsonl } from './dataset-io.js';
import { DatasetError } from './errors.js';
import { extraParser } from './extra.js';
import { extractMathAnswer, mathAnswersEquivalent } from './math-answer.js';
import type { EndpointType, Prompt, SampleScore, TaskDefinition, TaskSample } from './types.js';
import { BUILTIN_TASK_INFO } from './catalogue.js';

const Math500ExtraSchema = z.object({}).strict();
export const parseMath500Extra = extraParser(Math500ExtraSchema, 'math500');

/** `sample.data` of a math500 sample. */
export interface Math500Data {
  problem: string;
  level: number;
}

/** The instruction of the widely used "boxed" prompt (as in DeepSeek/Qwen maths evaluations). */
export const MATH500_INSTRUCTION = 'Please reason step by step, and put your final answer within \\boxed{}.';

export function buildMath500Prompt(sample: TaskSample, endpointType: EndpointType): Prompt {
  const { problem } = sample.data as unknown as Math500Data;
  if (endpointType === 'chat') {
    return { kind: 'chat', messages: [{ role: 'user', content: `${problem}\n\n${MATH500_INSTRUCTION}` }] };
  }
  return { kind: 'completions', prompt: `Problem:\n${problem}\n${MATH500_INSTRUCTION}\n\nSolution:`, stop: ['\n\nProblem:'] };
}

export const math500: TaskDefinition = {
  ...BUILTIN_TASK_INFO.math500,

  async loadSamples(ctx) {
    parseMath500Extra(ctx.extra);
    const path = join(ctx.datasetDir, 'math500', 'test.jsonl');
    const rows = await readJsonl(path, 'math500 dataset');
    const bySubject = new Map<string, TaskSample[]>();
    for (const { value, line } of rows) {
      const { problem, answer, subject, level, unique_id: uniqueId } = value;
      if (typeof problem !== 'string' || typeof answer !== 'string' || typeof subject !== 'string' || typeof uniqueId !== 'string') {
        throw new DatasetError(`${path}:${line}: expected string fields "problem", "answer", "subject" and "unique_id"`);
      }
      const d: Math500Data = { problem, level: typeof level === 'number' ? level : 0 };
      let list = bySubject.get(subject);
      if (!list) bySubject.set(subject, (list = []));
      list.push({ id: uniqueId, subset: subject, groundTruth: answer, data: d as unknown as Record<string, unknown> });
    }
    return interleave(bySubject);
  },

  buildPrompt(sample, endpointType) {
    return buildMath500Prompt(sample, endpointType);
  },

  score(sample, generation): SampleScore {
    const extracted = extractMathAnswer(generation);
    return { score: mathAnswersEquivalent(extracted, sample.groundTruth) ? 1 : 0, extracted };
  },

  aggregate(scored) {
    return accuracyBySubset(scored, { macro: false });
  },
};
