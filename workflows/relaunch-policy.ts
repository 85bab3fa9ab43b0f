/**
 * What the evaluation workflow does when a launch ends: collect, relaunch (the harness resumes from its
 * response cache) or fail. Executors classify how a launch ended (core/outcome.ts); this applies budgets:
 * launches that ended without progress count against `maxAttempts` (so a week-long run may be interrupted
 * any number of times as long as each launch gets further), relaunches back off, and the total run time
 * stays within `maxWalltimeS`. Pure, for the workflow sandbox and unit tests.
 */
import type { Outcome } from '../core/outcome.js';

export interface RelaunchBudget {
  maxAttempts: number;
  maxWalltimeS?: number;
}

export interface RelaunchState {
  /** Launches that ended without finishing a single new sample. */
  unproductiveEnds: number;
  /** Run time of all launches so far. */
  walltimeUsedS: number;
}

export type Decision =
  | { action: 'collect' }
  /** The harness wrote results but failed (too many sample errors): collect them, then fail. */
  | { action: 'collectThenFail'; type: string; reason: string }
  | { action: 'relaunch'; delayS: number; why: string; state: RelaunchState }
  | { action: 'fail'; type: string; reason: string };

const BACKOFF_BASE_S = 5;
const BACKOFF_MAX_S = 300;

export function decideAfterEnd(
  outcome: Outcome,
  ctx: { madeProgress: boolean; launchWalltimeS: number; state: RelaunchState; budget: RelaunchBudget },
): Decision {
  switch (outcome.kind) {
    case 'succeeded':
      return { action: 'collect' };
    case 'queued':
    case 'running':
      throw new Error(`decideAfterEnd called while the launch is still ${outcome.kind}`);
    case 'cancelled':
      return { action: 'fail', type: 'HarnessCancelled', reason: `cancelled outside evalflow: ${outcome.reason}` };
    case 'failed':
      if (outcome.permanent) {
        return outcome.resultsWritten
          ? { action: 'collectThenFail', type: 'TooManySampleErrors', reason: outcome.reason }
          : { action: 'fail', type: 'HarnessFailed', reason: outcome.reason };
      }
      break;
    case 'resumable':
    case 'lost':
    case 'oomKilled':
      break;
  }
  const state: RelaunchState = {
    unproductiveEnds: ctx.state.unproductiveEnds + (ctx.madeProgress ? 0 : 1),
    walltimeUsedS: ctx.state.walltimeUsedS + ctx.launchWalltimeS,
  };
  const { maxAttempts, maxWalltimeS } = ctx.budget;
  if (state.unproductiveEnds >= maxAttempts) {
    return {
      action: 'fail',
      type: 'HarnessFailed',
      reason: `${outcome.reason}; ${state.unproductiveEnds} launch(es) ended without progress (execution.max_attempts = ${maxAttempts})`,
    };
  }
  if (maxWalltimeS !== undefined && state.walltimeUsedS >= maxWalltimeS) {
    return {
      action: 'fail',
      type: 'WalltimeExhausted',
      reason: `${outcome.reason}; the run has used ${Math.round(state.walltimeUsedS)} s of its max_walltime (${maxWalltimeS} s)`,
    };
  }
  const delayS = ctx.madeProgress ? 1 : Math.min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (state.unproductiveEnds - 1));
  return { action: 'relaunch', delayS, why: outcome.reason, state };
}
