/**
 * The machine under the bench: wall-clock marks comparable across processes, other processes' CPU
 * from /proc/stat, and core pinning with taskset (the endpoint on one core, the measured client on
 * another, as in DESIGN.md §6).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { delimiter, join } from 'node:path';
import { f2, print } from './format.js';

/** Wall-clock ms comparable across processes (sub-ms resolution). */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** Machine-wide busy CPU seconds so far (all cores, from /proc/stat), or null where unavailable. */
export function machineBusyS(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return busy / CLK_TCK;
  } catch {
    return null;
  }
}

/**
 * CPU used by processes other than the measured ones during a run, in cores (the orchestrating
 * process, idle while it waits, is counted too, so a few % is the floor).
 */
export function otherCores(busy0: number | null, busy1: number | null, ownCpuS: number, wallS: number): number | null {
  if (busy0 === null || busy1 === null || wallS <= 0) return null;
  return Math.max(0, (busy1 - busy0 - ownCpuS) / wallS);
}

export function loadAverage(): string {
  return existsSync('/proc/loadavg') ? readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') : 'n/a';
}

export interface MachineNote {
  node: string;
  cores: number;
  cpu: string;
  /** Cores busy over one second before the bench started (other processes). */
  preflightBusyCores: number | null;
  loadavg: string;
}

/** Prints the machine line and how busy it is before anything starts; warns when others use the CPU. */
export async function describeMachine(title: string): Promise<MachineNote> {
  const cpu = cpus()[0]?.model ?? 'unknown';
  print(`${title} — node ${process.version}, ${availableParallelism()} cores (${cpu})`);
  const b0 = machineBusyS();
  await new Promise((r) => setTimeout(r, 1_000));
  const b1 = machineBusyS();
  const busy = b0 === null || b1 === null ? null : b1 - b0;
  const loadavg = loadAverage();
  print(`machine before start: ${f2(busy)} cores busy over 1 s, load average ${loadavg}`);
  if (busy !== null && busy > 0.2) print('WARNING: other processes are using the CPU; figures below are depressed by them (see the "other load" columns).');
  return { node: process.version, cores: availableParallelism(), cpu, preflightBusyCores: busy, loadavg };
}

export function onPath(bin: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, bin);
    if (dir && existsSync(p)) return p;
  }
  return null;
}

export type Role = 'endpoint' | 'client';

export interface Pinning {
  pinned: boolean;
  note: string;
  /** argv prefixed with `taskset -c <core>` for the role (the endpoint on core 0, clients on core 1). */
  command(role: Role, argv: string[]): [string, string[]];
}

export function detectPinning(): Pinning {
  const cores = availableParallelism();
  const unpinned = (note: string): Pinning => ({ pinned: false, note, command: (_role, argv) => [argv[0] as string, argv.slice(1)] });
  if (cores < 2) return unpinned(`no (only ${cores} core available)`);
  if (onPath('taskset') === null) return unpinned('no (taskset not found)');
  const probe = spawnSync('taskset', ['-c', '1', 'true']);
  if (probe.status !== 0) return unpinned(`no (taskset -c 1 failed: ${probe.stderr.toString().trim()})`);
  return {
    pinned: true,
    note: 'yes (endpoint on core 0, clients on core 1)',
    command: (role, argv) => ['taskset', ['-c', role === 'endpoint' ? '0' : '1', ...argv]],
  };
}
