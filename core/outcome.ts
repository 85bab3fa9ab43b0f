/**
 * How a launched harness (or model server) stands, as its executor classifies it. Executors map their own
 * signals (process exit codes, container state, Slurm job states) onto these; the workflow only applies
 * budgets to them (workflows/relaunch-policy.ts).
 */
import type { Progress } from './progress.js';

export type Outcome =
  /** Accepted but not started yet (a pending Slurm job, an image being pulled). */
  | { kind: 'queued'; reason?: string }
  | { kind: 'running' }
  | { kind: 'succeeded' }
  /**
   * Ended unsuccessfully. `permanent`: a relaunch cannot help (invalid config). `resultsWritten`: the
   * harness wrote results.yml before failing (too many sample errors), so they are collected and shown.
   */
  | { kind: 'failed'; reason: string; exitCode?: number; permanent: boolean; resultsWritten?: boolean }
  /** Stopped from outside in a way a relaunch recovers from (time limit, preemption, node failure, a signal). */
  | { kind: 'resumable'; reason: string }
  /** Gone without a trace of how it ended (its process, container or job vanished). */
  | { kind: 'lost'; reason: string }
  /** Cancelled by someone other than this workflow (an external `scancel`, `docker stop`). */
  | { kind: 'cancelled'; reason: string }
  | { kind: 'oomKilled'; reason: string };

export type OutcomeKind = Outcome['kind'];

export function isActive(outcome: Outcome): boolean {
  return outcome.kind === 'queued' || outcome.kind === 'running';
}

/** What one poll of a launched harness found. */
export interface PollResult {
  outcome: Outcome;
  progress?: Progress;
  /** Wall-clock seconds this launch has run so far (Slurm's elapsed time), for walltime budgets. */
  elapsedS?: number;
}
