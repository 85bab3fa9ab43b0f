import { describe, expect, it } from 'vitest';
import { classifyJob, durationSeconds, isTransientSlurmError, parsePoll, parseSacct, parseScontrol, parseSqueue, pollCommand } from '../../backends/slurm/states.js';

// Output captured from Slurm 22.05 on the loopback lab (scripts/services/slurm.sh).
const SCONTROL_FAILED =
  'JobId=2 JobName=wrap UserId=evallab(1001) GroupId=evallab(1001) MCS_label=N/A Priority=4294901758 Nice=0 Account=(null) QOS=normal JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0 RunTime=00:01:05 TimeLimit=00:01:00 Comment=a b=c JobState=RUNNING';
const ctx = { builtinHarness: true, stageExit: null, resultsPresent: false };

describe('Slurm state reading', () => {
  it('parses squeue (raw wait status), sacct (by <uid>, exit pair) and scontrol lines', () => {
    expect(parseSqueue('2|FAILED|NonZeroExitCode|768|0:00|\n', '2')).toEqual({ jobId: '2', state: 'FAILED', reason: 'NonZeroExitCode', exitCode: 3, elapsedS: 0, source: 'squeue' });
    expect(parseSqueue('3|CANCELLED|None|15|1-02:03:04|', '3')).toEqual({ jobId: '3', state: 'CANCELLED', exitCode: 0, signal: 15, elapsedS: 93784, source: 'squeue' });
    expect(parseSqueue('4|PENDING|Resources|0|0:00|', '5')).toBeUndefined();
    expect(parseSacct('3|CANCELLED by 1001|0:15|1\n', '3')).toEqual({ jobId: '3', state: 'CANCELLED', reason: 'by 1001', exitCode: 0, signal: 15, elapsedS: 1, source: 'sacct' });
    expect(parseSacct('7|TIMEOUT|0:0|65\n7|FAILED|3:0|5', '7')?.state).toBe('FAILED');
    // The first JobState wins: a comment cannot smuggle in another state.
    expect(parseScontrol(SCONTROL_FAILED, '2')).toEqual({ jobId: '2', state: 'FAILED', reason: 'NonZeroExitCode', exitCode: 3, elapsedS: 65, source: 'scontrol' });
    expect(parseScontrol(SCONTROL_FAILED, '3')).toBeUndefined();
    expect(durationSeconds('05:07')).toBe(307);
    expect(durationSeconds('INVALID')).toBeUndefined();
  });

  it('asks sacct only when squeue no longer shows the job live, scontrol only when sacct cannot answer', () => {
    const cmd = pollCommand('42', "/runs/it's here");
    expect(cmd).toContain('--jobs=42');
    expect(cmd).toContain(`'/runs/it'\\''s here'/"$f"`);
    expect(() => pollCommand('42; rm -rf ~', '/x')).toThrow(/not a Slurm job id/);
  });

  it('reads a poll: live job, sacct record with files, scontrol fallback, not found, transient', () => {
    expect(parsePoll('@@evalflow squeue 0\n9|RUNNING|None|0|0:05|\n@@evalflow file:artifacts/progress.json 0\n{"total":10,"done":3,"cached":0,"errors":0}\n', '9')).toEqual({
      kind: 'found',
      job: { jobId: '9', state: 'RUNNING', exitCode: 0, elapsedS: 5, source: 'squeue' },
      files: { resultsPresent: false, progressJson: '{"total":10,"done":3,"cached":0,"errors":0}' },
    });
    const done = parsePoll('@@evalflow squeue 0\n9|COMPLETED|None|0|0:09|\n@@evalflow sacct 0\n9|COMPLETED|0:0|9\n@@evalflow file:logs/stage.exit 0\n2026-01-01T00:00:00Z 0\n\n@@evalflow results 0\n', '9');
    expect(done).toMatchObject({ kind: 'found', job: { state: 'COMPLETED', source: 'sacct' }, files: { resultsPresent: true, stageExit: '2026-01-01T00:00:00Z 0' } });
    const noDbd = parsePoll(`@@evalflow squeue 1\nslurm_load_jobs error: Invalid job id specified\n@@evalflow sacct 1\nsacct: error: Problem talking to the database: Connection refused\n@@evalflow scontrol 0\n${SCONTROL_FAILED}\n`, '2');
    expect(noDbd).toMatchObject({ kind: 'found', job: { state: 'FAILED', source: 'scontrol' } });
    const gone = parsePoll('@@evalflow squeue 1\nslurm_load_jobs error: Invalid job id specified\n@@evalflow sacct 0\n\n@@evalflow scontrol 1\nslurm_load_jobs error: Invalid job id specified\n', '2');
    expect(gone).toEqual({ kind: 'not-found', files: { resultsPresent: false } });
    const down = parsePoll('@@evalflow squeue 1\nslurm_load_jobs error: Unable to contact slurm controller (connect failure)\n', '2');
    expect(down).toEqual({ kind: 'transient', message: 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' });
    expect(isTransientSlurmError('sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)')).toBe(true);
    expect(isTransientSlurmError('sbatch: error: Batch job submission failed: Invalid partition name specified')).toBe(false);
  });

  it('classifies every ending', () => {
    const job = (state: string, extra = {}) => ({ jobId: '5', state, source: 'sacct' as const, ...extra });
    expect(classifyJob(job('PENDING', { reason: 'Resources' }), ctx)).toEqual({ kind: 'queued', reason: 'Resources' });
    expect(classifyJob(job('RUNNING'), ctx)).toEqual({ kind: 'running' });
    expect(classifyJob(job('COMPLETING'), ctx)).toEqual({ kind: 'running' });
    expect(classifyJob(job('COMPLETED'), ctx)).toEqual({ kind: 'succeeded' });
    for (const state of ['TIMEOUT', 'PREEMPTED', 'NODE_FAIL', 'BOOT_FAIL']) expect(classifyJob(job(state), ctx).kind).toBe('resumable');
    expect(classifyJob(job('CANCELLED', { reason: 'by 1001' }), ctx)).toEqual({ kind: 'cancelled', reason: 'the Slurm job 5 was cancelled by 1001 (scancel)' });
    expect(classifyJob(job('OUT_OF_MEMORY'), ctx).kind).toBe('oomKilled');
    expect(classifyJob(job('FAILED', { exitCode: 3 }), ctx)).toMatchObject({ kind: 'failed', permanent: true, resultsWritten: true });
    expect(classifyJob(job('FAILED', { exitCode: 3 }), { ...ctx, builtinHarness: false })).toMatchObject({ kind: 'failed', permanent: false, exitCode: 3 });
    expect(classifyJob(job('FAILED', { exitCode: 143 }), ctx).kind).toBe('resumable');
    expect(classifyJob(job('FAILED', { exitCode: 96 }), ctx)).toMatchObject({ kind: 'failed', reason: expect.stringMatching(/deployment exited/) });
    expect(classifyJob(job('FAILED', { exitCode: 0, signal: 53 }), ctx)).toMatchObject({ kind: 'failed', reason: expect.stringMatching(/signal 53/) });
    expect(classifyJob(job('DEADLINE'), ctx)).toMatchObject({ kind: 'failed', reason: 'the Slurm job 5 ended DEADLINE' });
    // Forgotten by the controller: the run dir tells.
    expect(classifyJob(undefined, ctx)).toMatchObject({ kind: 'resumable', reason: expect.stringMatching(/vanished/) });
    expect(classifyJob(undefined, { ...ctx, stageExit: 0 })).toEqual({ kind: 'succeeded' });
    expect(classifyJob(undefined, { ...ctx, resultsPresent: true })).toEqual({ kind: 'succeeded' });
  });
});
