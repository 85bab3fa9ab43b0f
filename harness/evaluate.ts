/**
 * The harness as a library, like upstream's Python `evaluate(eval_cfg, target_cfg)`:
 * `await evaluate({ target, config })` runs the evaluation and returns the parsed results.
 * This module is the package's entry point: `import { evaluate } from 'evalflow'` (package.json `exports`).
 */
import { runEvaluation, type Progress } from './engine.js';
import type { HarnessRunConfig } from './run-config.js';
import type { EvalflowResultsFile } from './results-schema.js';

export interface EvaluateOptions extends HarnessRunConfig {
  env?: Record<string, string | undefined>;
  signal?: AbortSignal;
  onProgress?: (progress: Progress) => void;
}

export class EvaluationFailedError extends Error {
  override name = 'EvaluationFailedError';
  constructor(
    message: string,
    readonly results: EvalflowResultsFile,
  ) {
    super(message);
  }
}

export async function evaluate(opts: EvaluateOptions): Promise<EvalflowResultsFile> {
  const { env, signal, onProgress, ...runConfig } = opts;
  const outcome = await runEvaluation({ runConfig, env, signal, onProgress, command: 'evaluate()' });
  if (outcome.errorThresholdExceeded) throw new EvaluationFailedError(outcome.errorMessage ?? 'too many failed samples', outcome.results);
  return outcome.results;
}

export type { Progress } from './engine.js';
export type { EvalflowResultsFile, ResultsFile } from './results-schema.js';
export type { HarnessRunConfig } from './run-config.js';
