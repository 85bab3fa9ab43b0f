/**
 * MBPP (`<datasetDir>/mbpp/mbpp.jsonl`: Austin et al. 2021, "Mostly Basic Python Problems"): the test split, task ids
 * 11-510 (500 problems; 1-10 are the paper's few-shot prompts, 511-974 validation and training). Each problem is a
 * one-sentence description and three `assert` tests; the program (generated code, `test_setup_code`, the asserts) runs
 * in the sandbox (harness/sandbox.ts); pass@k over `n_samples` generations.
 *
 * Completions endpoints: bigcode-evaluation-harness's `mbpp` prompt (the description and the first test in a
 * docstring) and stop sequences. Chat endpoints: the MBPP paper's wording (description and all three tests), the code
 * taken from the answer's ```python block.
 */
import { join } from 'node:path';
import { codeAggregate, codeExtraParser, codeScoringConcurrency, extractCode, missingPython, scoreProgram, truncateAtStop } from './code.js';
import { readJsonl } from './dataset-io.js';
import { DatasetError } from './errors.js';
import type { EndpointType, Prompt, TaskDefinition, TaskSample } from './types.js';
import { BUILTIN_TASK_INFO } from './catalogue.js';

export const parseMbppExtra = codeExtraParser('mbpp');

/** The test split's task ids (inclusive). */
export const MBPP_TEST_IDS = { first: 11, last: 510 } as const;

/** bigcode-evaluation-harness's stop sequences for MBPP. */
export const MBPP_STOP = ['\nclass', '\nassert', '\n"""', '\nprint', '\nif', '\n<|/', '\n```'];

/** `sample.data` of an mbpp sample. */
export interface MbppData {
  text: string;
  tests: string[];
  setup: string;
}

export function buildMbppPrompt(sample: TaskSample, endpointType: EndpointType): Prompt {
  const { text, tests } = sample.data as unknown as MbppData;
  if (endpointType === 'chat') {
    const content =
      `You are an expert Python programmer, and here is your task: ${text} Your code should pass these tests:\n\n${tests.join('\n')}\n\n` +
      'Reply with the code in one ```python code block.';
    return { kind: 'chat', messages: [{ role: 'user', content }] };
  }
  return { kind: 'completions', prompt: `"""\n${text}\n${tests[0] ?? ''}\n"""\n`, stop: MBPP_STOP };
}

/** The program that scores a generation: the code, the problem's setup code, its asserts. */
export function mbppProgram(data: MbppData, generation: string, endpointType: EndpointType): { program: string; code: string } {
  const code = endpointType === 'completions' ? truncateAtStop(generation, MBPP_STOP) : extractCode(generation);
  return { program: `${code}\n\n${data.setup}\n${data.tests.join('\n')}\n`, code };
}

export const mbpp: TaskDefinition = {
  ...BUILTIN_TASK_INFO.mbpp,
  scoreName: 'pass@1',

  async loadSamples(ctx) {
    parseMbppExtra(ctx.extra);
    const path = join(ctx.datasetDir, 'mbpp', 'mbpp.jsonl');
    const samples: TaskSample[] = [];
    for (const { value, line } of await readJsonl(path, 'mbpp dataset')) {
      const { task_id: id, text, test_list: tests, test_setup_code: setup } = value;
      if (typeof id !== 'number' || typeof text !== 'string' || !Array.isArray(tests) || !tests.every((t) => typeof t === 'string')) {
        throw new DatasetError(`${path}:${line}: expected a number "task_id", a string "text" and a list of strings "test_list"`);
      }
      if (id < MBPP_TEST_IDS.first || id > MBPP_TEST_IDS.last) continue;
      const data: MbppData = { text, tests: tests as string[], setup: typeof setup === 'string' ? setup : '' };
      samples.push({ id: `mbpp/${id}`, groundTruth: data.tests.join('\n'), data: data as unknown as Record<string, unknown> });
    }
    return samples;
  },

  buildPrompt(sample, endpointType) {
    return buildMbppPrompt(sample, endpointType);
  },

  score(sample, generation, params, context) {
    const extra = parseMbppExtra(params.extra);
    const { program, code } = mbppProgram(sample.data as unknown as MbppData, generation, context?.endpointType ?? 'completions');
    return scoreProgram(program, code, extra, context?.signal);
  },

  scoringConcurrency(params) {
    return codeScoringConcurrency(parseMbppExtra(params.extra));
  },

  missingTools: missingPython,

  aggregate(scored, params) {
    return codeAggregate(scored, params, parseMbppExtra);
  },
};
