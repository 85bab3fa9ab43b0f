/**
 * The contract between a launcher and a harness run, shared by every executor and by the built-in harness
 * itself: exit codes, the stage files in `logs/`, and the progress files in `artifacts/` (upstream writes
 * `progress` as a bare count; evalflow's harness also writes `progress.json` with totals).
 */
import { z } from 'zod';
import type { Outcome } from './outcome.js';
import { ProgressSchema, type Progress } from './progress.js';

/**
 * Exit codes of `run_eval` (the built-in harness). Upstream containers only share 0 and the signal codes.
 * 4: the endpoint stayed down longer than `endpoint_outage_timeout`; 5: the run's files could not be written
 * (ENOSPC, EIO …). Both leave the response cache usable for a relaunch.
 */
export const HARNESS_EXIT = {
  ok: 0,
  error: 1,
  config: 2,
  tooManyErrors: 3,
  endpointUnavailable: 4,
  storage: 5,
  sigint: 130,
  sigkill: 137,
  sigterm: 143,
} as const;

/** Lifecycle markers in the job's `logs/` dir: `stage.running` when the harness starts, `stage.exit` when it ends. */
export const STAGE_FILES = { running: 'stage.running', exit: 'stage.exit' } as const;

/** Progress files in the job's `artifacts/` dir. */
export const PROGRESS_FILES = { count: 'progress', json: 'progress.json' } as const;

/** Why the built-in harness failed, on the second line of `stage.exit`. */
export const STAGE_FAILURE_REASONS = ['config', 'dataset', 'too_many_errors', 'endpoint_unavailable', 'storage', 'interrupted', 'unexpected'] as const;
export const StageFailureSchema = z.object({ reason: z.enum(STAGE_FAILURE_REASONS), message: z.string() });
export type StageFailure = z.infer<typeof StageFailureSchema>;

/** Messages are cut to this length so `stage.exit` fits the space the harness reserves for it. */
const MAX_FAILURE_MESSAGE_CHARS = 4000;

/**
 * `stage.exit` content: `<ISO time> <exit code>\n`, and for a failure of the built-in harness a second line, one
 * JSON object `{"reason": …, "message": …}` (e.g. a dataset's file and line, the endpoint URL and its last error,
 * the file a write failed on), so the launcher can report the cause rather than "see the log".
 */
export function formatStageExit(at: Date, code: number, failure?: StageFailure): string {
  const first = `${at.toISOString()} ${code}\n`;
  if (!failure) return first;
  const message = failure.message.length > MAX_FAILURE_MESSAGE_CHARS ? `${failure.message.slice(0, MAX_FAILURE_MESSAGE_CHARS - 1)}…` : failure.message;
  return `${first}${JSON.stringify({ reason: failure.reason, message })}\n`;
}

/** The exit code recorded in a `stage.exit` file, or null when there is none (yet). */
export function parseStageExit(text: string): number | null {
  const [, code] = (text.split('\n')[0] ?? '').trim().split(/\s+/);
  const n = Number(code);
  return code !== undefined && Number.isInteger(n) ? n : null;
}

/** The failure recorded on the second line of a `stage.exit` file; null when there is none (success, upstream, older files). */
export function parseStageFailure(text: string): StageFailure | null {
  const line = text.split('\n')[1]?.trim();
  if (!line) return null;
  try {
    const parsed = StageFailureSchema.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Progress from `progress.json` if it parses, else from upstream's bare `progress` count (total unknown: 0). */
export function parseProgress(files: { json?: string; count?: string }): Progress | undefined {
  if (files.json !== undefined) {
    try {
      const parsed = ProgressSchema.safeParse(JSON.parse(files.json));
      if (parsed.success) return parsed.data;
    } catch {
      // fall through to the count
    }
  }
  if (files.count !== undefined) {
    const done = Number(files.count.trim());
    if (Number.isInteger(done) && done >= 0) return { total: 0, done, cached: 0, errors: 0 };
  }
  return undefined;
}

/**
 * What an exit code means. `builtin`: the code comes from evalflow's own harness, whose codes 2 (invalid
 * run config) and 3 (too many failed samples, results written) carry meaning; for upstream containers
 * only success and signals do.
 */
export function outcomeOfExit(code: number, builtin: boolean): Outcome {
  if (code === HARNESS_EXIT.ok) return { kind: 'succeeded' };
  if (code === HARNESS_EXIT.sigint || code === HARNESS_EXIT.sigterm || code === HARNESS_EXIT.sigkill) {
    const signal = code === HARNESS_EXIT.sigint ? 'SIGINT' : code === HARNESS_EXIT.sigterm ? 'SIGTERM' : 'SIGKILL';
    return { kind: 'resumable', reason: `the harness was stopped by ${signal} (exit code ${code})` };
  }
  if (builtin && code === HARNESS_EXIT.config) {
    return { kind: 'failed', exitCode: code, permanent: true, reason: 'the harness rejected its run config (exit code 2)' };
  }
  if (builtin && code === HARNESS_EXIT.tooManyErrors) {
    return { kind: 'failed', exitCode: code, permanent: true, resultsWritten: true, reason: 'too many samples failed after retries (exit code 3)' };
  }
  if (builtin && code === HARNESS_EXIT.endpointUnavailable) {
    return { kind: 'failed', exitCode: code, permanent: false, reason: 'the endpoint stayed down longer than endpoint_outage_timeout (exit code 4)' };
  }
  if (builtin && code === HARNESS_EXIT.storage) {
    return { kind: 'failed', exitCode: code, permanent: false, reason: 'the harness could not write its files (exit code 5)' };
  }
  return { kind: 'failed', exitCode: code, permanent: false, reason: `the harness exited with code ${code}` };
}

/**
 * The outcome a `stage.exit` file records, with the harness's own failure message (a dataset's file and
 * line, the endpoint and its last error) in the reason; null when the file holds no exit code (yet).
 */
export function outcomeOfStageExit(text: string, builtin: boolean): Outcome | null {
  const code = parseStageExit(text);
  return code === null ? null : withStageFailure(outcomeOfExit(code, builtin), parseStageFailure(text));
}

/** Adds the harness's failure message from `stage.exit` to a failed outcome's reason. */
export function withStageFailure(outcome: Outcome, failure: StageFailure | null): Outcome {
  return failure && outcome.kind === 'failed' ? { ...outcome, reason: `${outcome.reason}: ${failure.message}` } : outcome;
}
