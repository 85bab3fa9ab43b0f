import { describe, expect, it } from 'vitest';
import { ProgressRenderer } from '../../client/watch.js';
import type { InvocationStatus, TaskStatus } from '../../workflows/types.js';

function statusWith(task: Partial<TaskStatus>): InvocationStatus {
  return {
    invocationId: 'abc',
    runDir: '/tmp/run',
    model: 'm',
    stage: 'running',
    tasks: [{ jobId: 'abc.0', jobName: 'gsm8k.0', taskName: 'evalflow.gsm8k', jobDir: '/tmp/run/gsm8k.0', stage: 'running', attempt: 1, ...task }],
  };
}

describe('run --wait progress', () => {
  it('keeps the last known progress between two watch checkpoints, and drops it when the stage changes', () => {
    const printed: string[] = [];
    const render = new ProgressRenderer({ out: (t) => printed.push(t), err: () => {}, isTTY: true });
    render.update(statusWith({ progress: { total: 8, done: 5, cached: 0, errors: 0 } }));
    render.update(statusWith({})); // no watcher heartbeat at this instant
    expect(printed[1]).toContain('running 5/8');
    render.update(statusWith({ stage: 'exporting' }));
    expect(printed[2]).not.toContain('5/8');
  });
});
