/**
 * `evalflow info IDS`: where an invocation's (or job's) config, artifacts and logs are, as upstream's
 * `info`; `--config` prints the saved launcher config, `--artifacts`/`--logs` list the files, and
 * `--copy-artifacts DIR` / `--copy-logs DIR` copy them to `DIR/<job id>/{artifacts,logs}/`.
 */
import { cpSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Client } from '@temporalio/client';
import { isSelected, resolveId } from '../ids.js';
import type { Output } from '../output.js';
import { invocationStatus } from '../status.js';

export interface InfoOptions {
  config?: boolean;
  artifacts?: boolean;
  logs?: boolean;
  copyArtifacts?: string;
  copyLogs?: string;
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => statSync(join(dir, f)).isFile())
    .sort();
}

export async function infoCommand(client: Client, ids: string[], opts: InfoOptions, io: Output): Promise<number> {
  for (const raw of ids) {
    const id = await resolveId(client, raw);
    const status = await invocationStatus(client, id.invocationId);
    const configFile = join(status.runDir, 'launcher_config.yml');
    io.out(`invocation ${status.invocationId}: ${status.stage}, model ${status.model}\n  run dir: ${status.runDir}\n  config:  ${existsSync(configFile) ? configFile : '(not on this host)'}\n`);
    if (opts.config && existsSync(configFile)) io.out(readFileSync(configFile, 'utf8').replace(/^/gm, '    '));
    for (const task of status.tasks.filter((t) => isSelected(t, id))) {
      const artifacts = join(task.jobDir, 'artifacts');
      const logs = join(task.jobDir, 'logs');
      io.out(`  job ${task.jobId} (${task.jobName}, ${task.taskName}): ${task.stage}${task.handle ? `, ${task.handle.display}` : ''}\n    artifacts: ${artifacts}\n    logs:      ${logs}\n`);
      if (opts.artifacts) for (const f of filesUnder(artifacts)) io.out(`      ${join('artifacts', f)}\n`);
      if (opts.logs) for (const f of filesUnder(logs)) io.out(`      ${join('logs', f)}\n`);
      for (const [what, from, to] of [
        ['artifacts', artifacts, opts.copyArtifacts],
        ['logs', logs, opts.copyLogs],
      ] as const) {
        if (to === undefined) continue;
        if (!existsSync(from)) {
          io.err(`warning: job ${task.jobId}: no ${what} at ${from} on this host\n`);
          continue;
        }
        const target = join(resolve(to), task.jobId, what);
        // The response cache is the harness's, not a result (as `evalflow export` leaves it out).
        cpSync(from, target, { recursive: true, filter: (src) => !relative(from, src).split('/').includes('cache') });
        io.out(`    copied ${what} to ${target}\n`);
      }
    }
  }
  return 0;
}
