/** `evalflow logs ID [-f]`: the harness log of each job, prefixed with the job name; -f follows. */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { TERMINAL_STAGES, type TaskStatus } from '../../workflows/types.js';
import { isSelected, resolveId } from '../ids.js';
import type { Output } from '../output.js';
import { invocationStatus } from '../status.js';

export async function logsCommand(client: Client, id: string, opts: { follow?: boolean }, io: Output): Promise<number> {
  const resolved = await resolveId(client, id);
  const { invocationId } = resolved;
  const selected = (s: TaskStatus) => isSelected(s, resolved);
  const tasks = (await invocationStatus(client, invocationId)).tasks.filter(selected);
  const offsets = new Map<string, number>();
  const pump = (task: TaskStatus) => {
    const file = join(task.jobDir, 'logs', 'client_stdout.log');
    if (!existsSync(file)) return;
    const from = offsets.get(task.jobId) ?? 0;
    const size = statSync(file).size;
    if (size <= from) return;
    const buf = Buffer.alloc(size - from);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buf, 0, buf.length, from);
    } finally {
      closeSync(fd);
    }
    // Only complete lines; the rest is printed once its newline arrives.
    const text = buf.toString('utf8');
    const end = text.lastIndexOf('\n') + 1;
    offsets.set(task.jobId, from + Buffer.byteLength(text.slice(0, end)));
    for (const line of text.slice(0, end).split('\n').slice(0, -1)) io.out(`[${task.jobName}] ${line}\n`);
  };
  tasks.forEach(pump);
  if (!opts.follow) return 0;
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const now = (await invocationStatus(client, invocationId)).tasks.filter(selected);
    now.forEach(pump);
    if (now.every((t) => TERMINAL_STAGES.includes(t.stage))) return 0;
  }
}
