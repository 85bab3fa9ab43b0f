/** `evalflow logs IDS [-f]`: the harness log of each job of the named invocations or jobs, prefixed with the job name; -f follows them all. */
import type { Client } from '@temporalio/client';
import { createExecutors, executorFor } from '../../backends/registry.js';
import type { ExecutorRegistry } from '../../backends/types.js';
import { TERMINAL_STAGES, type TaskStatus } from '../../workflows/types.js';
import { isSelected, resolveId, type ResolvedId } from '../ids.js';
import type { Output } from '../output.js';
import { invocationStatus } from '../status.js';

export async function logsCommand(
  client: Client,
  ids: string[],
  opts: { follow?: boolean },
  io: Output,
  executors: ExecutorRegistry = createExecutors(),
): Promise<number> {
  const resolved: ResolvedId[] = [];
  for (const id of ids) resolved.push(await resolveId(client, id));
  const invocations = [...new Set(resolved.map((r) => r.invocationId))];
  const selected = (s: TaskStatus) => resolved.some((r) => s.jobId.startsWith(`${r.invocationId}.`) && isSelected(s, r));
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
      // Several invocations: job ids tell their jobs apart.
      const label = invocations.length > 1 ? task.jobId : task.jobName;
      for (const line of lines) io.out(`[${label}] ${line}\n`);
    }
  };
  const pumpAll = async () => {
    const tasks: TaskStatus[] = [];
    for (const invocationId of invocations) tasks.push(...(await invocationStatus(client, invocationId)).tasks.filter(selected));
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
