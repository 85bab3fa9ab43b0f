import { describe, expect, it } from 'vitest';
import { decideAfterEnd, type RelaunchState } from '../../workflows/relaunch-policy.js';
import type { Outcome } from '../../core/outcome.js';

const fresh: RelaunchState = { unproductiveEnds: 0, walltimeUsedS: 0 };
const budget = { maxAttempts: 3 };
const decide = (outcome: Outcome, over: Partial<Parameters<typeof decideAfterEnd>[1]> = {}) =>
  decideAfterEnd(outcome, { madeProgress: false, launchWalltimeS: 60, state: fresh, budget, ...over });

describe('decideAfterEnd', () => {
  it('collects a success, and collects then fails when results were written by a failing harness', () => {
    expect(decide({ kind: 'succeeded' })).toEqual({ action: 'collect' });
    expect(decide({ kind: 'failed', reason: 'too many', permanent: true, resultsWritten: true })).toEqual({
      action: 'collectThenFail',
      type: 'TooManySampleErrors',
      reason: 'too many',
    });
  });

  it('fails at once on a permanent failure and on an outside cancellation', () => {
    expect(decide({ kind: 'failed', reason: 'bad config', permanent: true })).toEqual({ action: 'fail', type: 'HarnessFailed', reason: 'bad config' });
    expect(decide({ kind: 'cancelled', reason: 'scancel by alice' })).toEqual({
      action: 'fail',
      type: 'HarnessCancelled',
      reason: 'cancelled outside evalflow: scancel by alice',
    });
  });

  it('relaunches lost, resumable, OOM-killed and non-permanent failures, with a growing backoff when no progress was made', () => {
    const ends: Outcome[] = [
      { kind: 'lost', reason: 'gone' },
      { kind: 'resumable', reason: 'TIMEOUT' },
      { kind: 'oomKilled', reason: 'oom' },
      { kind: 'failed', reason: 'exit 1', exitCode: 1, permanent: false },
    ];
    for (const outcome of ends) expect(decide(outcome).action).toBe('relaunch');
    const first = decide({ kind: 'lost', reason: 'gone' });
    const second = decide({ kind: 'lost', reason: 'gone' }, { state: first.action === 'relaunch' ? first.state : fresh });
    expect(first).toMatchObject({ action: 'relaunch', delayS: 5, state: { unproductiveEnds: 1, walltimeUsedS: 60 } });
    expect(second).toMatchObject({ action: 'relaunch', delayS: 10, state: { unproductiveEnds: 2, walltimeUsedS: 120 } });
  });

  it('gives up after max_attempts launches without progress, naming the budget', () => {
    const d = decide({ kind: 'lost', reason: 'the harness process 42 disappeared' }, { state: { unproductiveEnds: 2, walltimeUsedS: 0 } });
    expect(d).toEqual({
      action: 'fail',
      type: 'HarnessFailed',
      reason: 'the harness process 42 disappeared; 3 launch(es) ended without progress (execution.max_attempts = 3)',
    });
  });

  it('does not count a launch that made progress: a long run may be interrupted any number of times', () => {
    let state = fresh;
    for (let i = 0; i < 50; i++) {
      const d = decide({ kind: 'resumable', reason: 'PREEMPTED' }, { madeProgress: true, state, launchWalltimeS: 3600 });
      expect(d).toMatchObject({ action: 'relaunch', delayS: 1 });
      if (d.action !== 'relaunch') throw new Error('unreachable');
      state = d.state;
    }
    expect(state).toEqual({ unproductiveEnds: 0, walltimeUsedS: 50 * 3600 });
  });

  it('stops at max_walltime, whatever the progress', () => {
    const d = decide({ kind: 'resumable', reason: 'TIMEOUT' }, { madeProgress: true, launchWalltimeS: 3600, state: { unproductiveEnds: 0, walltimeUsedS: 7200 }, budget: { maxAttempts: 3, maxWalltimeS: 10_800 } });
    expect(d).toEqual({ action: 'fail', type: 'WalltimeExhausted', reason: 'TIMEOUT; the run has used 10800 s of its max_walltime (10800 s)' });
  });

  it('caps the backoff at 5 minutes', () => {
    const d = decide({ kind: 'lost', reason: 'x' }, { state: { unproductiveEnds: 10, walltimeUsedS: 0 }, budget: { maxAttempts: 100 } });
    expect(d).toMatchObject({ action: 'relaunch', delayS: 300 });
  });

  it('is never asked about a launch that is still active', () => {
    expect(() => decide({ kind: 'running' })).toThrow(/still running/);
  });
});
