/** `evalflow logs ID [-f]`: the harness log of each job, prefixed with the job name; -f follows. */
import type { Client } from '@temporalio/client';
import { createExecutors, executorFor } from '../../backends/registry.js';
import type { ExecutorRegistry } from '../../backends/types.js';
import { TERMINAL_STAGES, type TaskStatus } from '../../workflows/types.js';
import { isSelected, resolveId } from '../ids.js';
import type { Output } from '../output.js';
import { invocationStatus } from '../status.js';

export async function logsCommand(
  client: Client,
  id: string,
  opts: { follow?: boolean },
  io: Output,
  executors: ExecutorRegistry = createExecutors(),
): Promise<number> {
  const resolved = await resolveId(client, id);
  const { invocationId } = resolved;
  const selected = (s: TaskStatus) => isSelected(s, resolved);
  // Per job and launch: a relaunch writes to the same log, so the offset carries over.
  const offsets = new Map<string, number>();
  const pump = async (task: TaskStatus) => {
    if (!task.handle) return;
    const executor = executorFor(executors, task.handle.executor);
    const handle = executor.parseHandle(task.handle);
    for (;;) {
      const chunk = await executor.readLog(handle, offsets.get(task.jobId) ?? 0);
      if (chunk.data === '') return;
      offsets.set(task.jobId, chunk.offset);
      const lines = chunk.data.split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      for (const line of lines) io.out(`[${task.jobName}] ${line}\n`);
    }
  };
  const pumpAll = async () => {
    const tasks = (await invocationStatus(client, invocationId)).tasks.filter(selected);
    for (const task of tasks) await pump(task);
    return tasks;
  };
  await pumpAll();
  if (!opts.follow) return 0;
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const tasks = await pumpAll();
    if (tasks.every((t) => TERMINAL_STAGES.includes(t.stage))) return 0;
  }
}
