/**
 * What the built-in tasks are, without their code: names, descriptions, endpoint types and default params. The config
 * planner and `ls tasks` need only this; the task definitions (datasets, prompts, scorers, IFEval's checkers, the code
 * sandbox) are loaded by the harness alone.
 */
import type { EndpointType } from './types.js';

/** The harness name of the built-in tasks (`evalflow.gsm8k`). */
export const BUILTIN_HARNESS = 'evalflow';

export interface BuiltinTaskInfo {
  /** Name within the built-in harness, e.g. `gsm8k` (full name `evalflow.gsm8k`). */
  name: string;
  description: string;
  supportedEndpointTypes: readonly EndpointType[];
  /** Defaults for `config.params` (max_new_tokens, temperature, …), overridden by the user. */
  defaultParams: { max_new_tokens?: number; temperature?: number; top_p?: number; extra?: Record<string, unknown> };
}

export const BUILTIN_TASK_INFO = {
  gsm8k: {
    name: 'gsm8k',
    description: 'GSM8K grade-school math (1,319 test problems): chain-of-thought, numeric exact match on the final answer',
    supportedEndpointTypes: ['chat', 'completions'],
    defaultParams: { max_new_tokens: 512, temperature: 0, extra: { num_fewshot: 0 } },
  },
  gsm8k_cot: {
    name: 'gsm8k_cot',
    description: "GSM8K with Wei et al.'s 8 chain-of-thought exemplars (lm-eval gsm8k_cot): exact match, strict-match and flexible-extract",
    supportedEndpointTypes: ['chat', 'completions'],
    defaultParams: { max_new_tokens: 256, temperature: 0, extra: { num_fewshot: 8 } },
  },
  mmlu: {
    name: 'mmlu',
    description: 'MMLU: 57 subjects, 14,042 four-option multiple-choice questions; letter exact match, micro and macro accuracy',
    supportedEndpointTypes: ['chat', 'completions'],
    defaultParams: { max_new_tokens: 32, temperature: 0, extra: { num_fewshot: 0 } },
  },
  math500: {
    name: 'math500',
    description: 'MATH-500 competition mathematics: \\boxed{} answer, LaTeX normalisation and equivalence; accuracy per subject',
    supportedEndpointTypes: ['chat', 'completions'],
    defaultParams: { max_new_tokens: 2048, temperature: 0, extra: {} },
  },
  ifeval: {
    name: 'ifeval',
    description: 'IFEval: 541 prompts with verifiable instructions; prompt- and instruction-level, strict and loose accuracy',
    supportedEndpointTypes: ['chat', 'completions'],
    defaultParams: { max_new_tokens: 1280, temperature: 0, extra: {} },
  },
  humaneval: {
    name: 'humaneval',
    description: 'HumanEval: Python function completion, run against its tests in a sandbox; pass@k over n_samples generations',
    supportedEndpointTypes: ['completions', 'chat'],
    defaultParams: { max_new_tokens: 512, temperature: 0, extra: {} },
  },
  mbpp: {
    name: 'mbpp',
    description: 'MBPP (test split, 500 problems): Python from a description and tests, run in a sandbox; pass@k over n_samples generations',
    supportedEndpointTypes: ['completions', 'chat'],
    defaultParams: { max_new_tokens: 512, temperature: 0, extra: {} },
  },
  custom: {
    name: 'custom',
    description: 'Your own JSONL dataset: prompt template with {{field}} placeholders; exact, regex or numeric scoring',
    supportedEndpointTypes: ['chat', 'completions'],
    defaultParams: { max_new_tokens: 256, temperature: 0, extra: {} },
  },
} as const satisfies Record<string, BuiltinTaskInfo>;

export type BuiltinTaskName = keyof typeof BUILTIN_TASK_INFO;
