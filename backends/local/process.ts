/**
 * Local backend, process runtime: the built-in harness as a detached child process (own process group,
 * output to logs/client_stdout.log), so it outlives the worker that started it. A marker file per
 * attempt (logs/harness.a<N>.json) makes launch idempotent; the harness's own stage files
 * (logs/stage.running, logs/stage.exit) tell a finished run from a lost one.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { writeFileAtomic, writeJsonAtomic } from '../../common/files.js';
import { distPath } from '../../common/paths.js';
import type { HarnessHandle, Progress } from '../../workflows/types.js';
import type { Backend, HarnessStatus, LaunchSpec } from '../types.js';

export interface ProcessBackendOptions {
  /** Node binary for the harness (default: the worker's). */
  nodePath?: string;
  /** Harness entry point (default: dist/harness/cli.js of this installation). */
  harnessEntry?: string;
}

export class ProcessBackend implements Backend {
  private readonly nodePath: string;
  private readonly harnessEntry: string;

  constructor(opts: ProcessBackendOptions = {}) {
    this.nodePath = opts.nodePath ?? process.execPath;
    this.harnessEntry = opts.harnessEntry ?? distPath('harness', 'cli.js');
  }

  async launch(spec: LaunchSpec): Promise<HarnessHandle> {
    const logsDir = join(spec.jobDir, 'logs');
    mkdirSync(logsDir, { recursive: true });
    const marker = join(logsDir, `harness.a${spec.attempt}.json`);
    if (existsSync(marker)) return JSON.parse(readFileSync(marker, 'utf8')) as HarnessHandle;

    // Started, but the worker died before writing the marker: adopt the running process.
    const running = findHarnessProcess(logsDir);
    if (running) {
      const adopted = this.handle(spec, running.pid, running.startTicks);
      writeJsonAtomic(marker, adopted);
      return adopted;
    }

    rmSync(join(logsDir, 'stage.exit'), { force: true });
    rmSync(join(logsDir, 'stage.running'), { force: true });
    const runConfigFile = join(spec.jobDir, 'config_ef.yaml');
    writeFileAtomic(runConfigFile, stringify(spec.runConfig));
    const log = openSync(join(logsDir, 'client_stdout.log'), 'a');
    let pid: number | undefined;
    try {
      writeSync(log, `=== ${new Date().toISOString()} ${spec.name}: launching harness (attempt ${spec.attempt})\n`);
      const child = spawn(
        this.nodePath,
        [this.harnessEntry, 'run_eval', '--run_config', runConfigFile, '--stage_dir', logsDir],
        { cwd: spec.jobDir, detached: true, stdio: ['ignore', log, log], env: { ...process.env, ...spec.env } },
      );
      pid = child.pid;
      child.unref();
    } finally {
      closeSync(log);
    }
    if (pid === undefined) throw new Error(`could not start the harness for ${spec.name} (${this.nodePath} ${this.harnessEntry})`);
    const handle = this.handle(spec, pid, readProcess(pid)?.startTicks ?? 0);
    writeJsonAtomic(marker, handle);
    return handle;
  }

  async poll(handle: HarnessHandle): Promise<HarnessStatus> {
    const progress = readProgress(handle.jobDir);
    const withProgress = <T extends HarnessStatus>(s: T): T => (progress ? { ...s, progress } : s);
    const exitCode = readExitCode(handle.jobDir);
    if (exitCode !== null) return withProgress({ state: 'exited', exitCode });
    if (isAlive(handle)) return withProgress({ state: 'running' });
    // It may have written stage.exit between the two checks.
    const lateExit = readExitCode(handle.jobDir);
    return withProgress(lateExit !== null ? { state: 'exited', exitCode: lateExit } : { state: 'lost' });
  }

  async stop(handle: HarnessHandle, graceMs = 10_000): Promise<boolean> {
    if (!isAlive(handle)) return false;
    signalGroup(handle.pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline) {
      if (!isAlive(handle)) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    signalGroup(handle.pid, 'SIGKILL');
    return true;
  }

  private handle(spec: LaunchSpec, pid: number, startTicks: number): HarnessHandle {
    return { backend: 'local', runtime: 'process', name: spec.name, jobDir: spec.jobDir, attempt: spec.attempt, pid, startTicks };
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal); // detached: the harness leads its own process group
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

function readExitCode(jobDir: string): number | null {
  try {
    const [, code] = readFileSync(join(jobDir, 'logs', 'stage.exit'), 'utf8').trim().split(/\s+/);
    const n = Number(code);
    return Number.isInteger(n) ? n : null;
  } catch {
    return null;
  }
}

export function readProgress(jobDir: string): Progress | undefined {
  try {
    const p = JSON.parse(readFileSync(join(jobDir, 'artifacts', 'progress.json'), 'utf8')) as Progress;
    return typeof p.done === 'number' && typeof p.total === 'number' ? p : undefined;
  } catch {
    return undefined;
  }
}

interface ProcessInfo {
  state: string;
  startTicks: number;
}

/** State and start time from /proc/<pid>/stat (Linux); undefined when there is no such process. */
function readProcess(pid: number): ProcessInfo | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name (which may contain spaces): state is field 3, starttime field 22.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', startTicks: Number(fields[19]) };
}

function isAlive(handle: HarnessHandle): boolean {
  if (!existsSync('/proc/self/stat')) {
    try {
      process.kill(handle.pid, 0);
      return true;
    } catch {
      return false;
    }
  }
  const info = readProcess(handle.pid);
  if (!info || info.state === 'Z' || info.state === 'X') return false;
  return handle.startTicks === 0 || info.startTicks === handle.startTicks;
}

/** A live harness whose command line carries this job's `--stage_dir`. */
function findHarnessProcess(logsDir: string): { pid: number; startTicks: number } | undefined {
  const needle = `\0--stage_dir\0${logsDir}\0`;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return undefined;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = `\0${readFileSync(`/proc/${entry}/cmdline`, 'utf8')}`;
    } catch {
      continue;
    }
    if (!cmdline.includes(needle)) continue;
    const pid = Number(entry);
    const info = readProcess(pid);
    if (info && info.state !== 'Z') return { pid, startTicks: info.startTicks };
  }
  return undefined;
}
