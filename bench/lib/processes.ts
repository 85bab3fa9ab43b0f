/** Child processes of the bench: timed from spawn to exit, CPU from /usr/bin/time, killed with their group. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { now, type Pinning, type Role } from './machine.js';

/** Kills a child started with `detached: true` and its process group (it and what it started). */
export function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

export interface ChildRun {
  code: number | null;
  stdout: string;
  stderr: string;
  startedAt: number;
  exitedAt: number;
  /** User + system CPU of the process and its waited-for children in ms, or null when not measured. */
  cpuMs: number | null;
}

export interface RunOptions {
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs: number;
}

/** Runs a command to completion (its group killed after `timeoutMs`), timing process start to exit. */
export async function runChild(cmd: string, args: string[], opts: RunOptions): Promise<ChildRun> {
  const startedAt = now();
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, cwd: opts.cwd, env: { ...process.env, ...opts.env } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => killGroup(child), opts.timeoutMs);
  let exitedAt = 0;
  child.once('exit', () => (exitedAt = now()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  clearTimeout(timer);
  return { code, stdout, stderr, startedAt, exitedAt, cpuMs: null };
}

export const TIME_BIN = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

let cpuFiles = 0;

/**
 * Runs argv on the role's core with its CPU measured by /usr/bin/time (10 ms resolution; the
 * process and every child it waited for). Without /usr/bin/time the CPU stays null.
 */
export async function runMeasured(pinning: Pinning, role: Role, argv: string[], scratch: string, opts: RunOptions): Promise<ChildRun> {
  const cpuFile = join(scratch, `cpu-${process.pid}-${++cpuFiles}.txt`);
  const timed = TIME_BIN === null ? argv : [TIME_BIN, '-o', cpuFile, '-f', '%U %S', ...argv];
  const [cmd, args] = pinning.command(role, timed);
  const run = await runChild(cmd, args, opts);
  if (existsSync(cpuFile)) {
    // /usr/bin/time may prefix "Command exited with non-zero status N"; the figures are on the last line.
    const last = readFileSync(cpuFile, 'utf8').trim().split('\n').pop() ?? '';
    const [u, s] = last.split(/\s+/).map(Number);
    if (u !== undefined && s !== undefined && Number.isFinite(u) && Number.isFinite(s)) run.cpuMs = (u + s) * 1000;
  }
  return run;
}
