/**
 * What the code benchmarks (HumanEval, MBPP) share: their `config.params.extra` keys, getting the code out of a
 * generation (stop sequences for completions, a fenced block for chat), running program + tests in the sandbox (a
 * generation scores 1 when the program exits 0 within the limits), and pass@k over the `n_samples` generations.
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { findPython, runPython } from '../sandbox.js';
import { passAtKMetrics } from './aggregate.js';
import { extraParser } from './extra.js';
import type { SampleScore, TaskAggregate, ScoredSample, TaskParams } from './types.js';

const CodeExtraSchema = z
  .object({
    /** The k of pass@k to report; a k above a sample's generations (`n_samples`) is left out (as HumanEval's code_eval does). */
    k: z.array(z.number().int().min(1)).min(1).default([1, 10, 100]),
    /** Seconds one program (generation + tests) may run (wall clock; CPU time likewise), as bigcode's code_eval: 3. */
    timeout: z.number().positive().max(600).default(3),
    /** Address space of one program, MiB. */
    memory_mb: z.number().int().min(64).max(65_536).default(1024),
    /** Sandboxed programs run at once (a process each). Default: the machine's cores. */
    sandbox_concurrency: z.number().int().min(1).max(1024).optional(),
  })
  .strict();

export type CodeExtra = z.output<typeof CodeExtraSchema>;

/** A parser of the code benchmarks' `extra` whose errors name the task. */
export function codeExtraParser(taskName: string): (extra: Record<string, unknown> | undefined) => CodeExtra {
  return extraParser(CodeExtraSchema, taskName);
}

/** The code up to the first stop sequence (servers that ignore `stop` still get scored as bigcode-evaluation-harness does). */
export function truncateAtStop(text: string, stops: readonly string[]): string {
  let end = text.length;
  for (const stop of stops) {
    const at = text.indexOf(stop);
    if (at !== -1 && at < end) end = at;
  }
  return text.slice(0, end);
}

const FENCE = /^[ \t]*```[^\n`]*\n/m;

/**
 * The code of a chat answer: the first fenced block (```python … ```; an unterminated one runs to the end), else the
 * whole answer (a model that replies with bare code).
 */
export function extractCode(text: string): string {
  const open = FENCE.exec(text);
  if (!open) return text;
  const start = open.index + open[0].length;
  const close = /^[ \t]*```/m.exec(text.slice(start));
  return close ? text.slice(start, start + close.index) : text.slice(start);
}

/** Runs `program` in the sandbox: 1 when it exits 0 within the limits, else 0; `extracted` is the model's code. */
export async function scoreProgram(program: string, code: string, extra: CodeExtra, signal?: AbortSignal): Promise<SampleScore> {
  const result = await runPython(program, { timeoutMs: extra.timeout * 1000, memoryMb: extra.memory_mb, signal });
  return { score: result.status === 'passed' ? 1 : 0, extracted: code };
}

/** What the code benchmarks lack where the harness runs: python3 (see TaskDefinition.missingTools). */
export function missingPython(): string | undefined {
  return findPython() === null
    ? 'python3 is not on PATH here, and each generation is scored by running it with python3 (the harness image has none: run code benchmarks with execution.runtime: process or on Slurm)'
    : undefined;
}

export function codeScoringConcurrency(extra: CodeExtra): number {
  return extra.sandbox_concurrency ?? availableParallelism();
}

/** pass@k for the configured k (those every sample has enough generations for). */
export function codeAggregate(scored: readonly ScoredSample[], params: TaskParams, parse: (extra: Record<string, unknown>) => CodeExtra): TaskAggregate {
  return { metrics: passAtKMetrics(scored, parse(params.extra).k) };
}
