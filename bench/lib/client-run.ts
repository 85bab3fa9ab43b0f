/**
 * One measured client run against the fixture endpoint: the process on the client core, timed from
 * start to exit, split by the requests' arrival at the server into start-up (process start → first
 * request), request phase (first → last request) and tail (last request → exit), with the client's
 * CPU, the server's CPU and connections, and the CPU that other processes used meanwhile.
 */
import type { Fixture } from './fixture.js';
import { machineBusyS, otherCores, type Pinning } from './machine.js';
import { runMeasured, type ChildRun } from './processes.js';

export interface ClientRun {
  /** Requests the run must send (one per sample). */
  n: number;
  exitCode: number | null;
  /** Process start → exit. */
  wallS: number;
  startupS: number | null;
  requestPhaseS: number | null;
  tailS: number | null;
  /** N / wall. */
  rpsWall: number;
  /** (N − 1) / request phase: the pure request rate. */
  rpsPhase: number | null;
  clientCpuMs: number | null;
  clientCpuMsPerRequest: number | null;
  serverRequests: number;
  serverConnections: number;
  serverCpuUsPerRequest: number | null;
  /** Other processes' CPU during the run, in cores (machine noise). */
  otherCores: number | null;
}

/** The figures and the process's output, for the caller to read its own figures from. */
export interface MeasuredRun {
  figures: ClientRun;
  stdout: string;
  stderr: string;
}

export interface ClientCommand {
  argv: string[];
  /** Requests the run sends at the server (the `last` mark waits for the n-th). */
  n: number;
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs: number;
}

export async function measureClient(pinning: Pinning, fixture: Fixture, scratch: string, command: ClientCommand): Promise<MeasuredRun> {
  const { n } = command;
  const before = await fixture.mark(n);
  const busy0 = machineBusyS();
  const run: ChildRun = await runMeasured(pinning, 'client', command.argv, scratch, {
    timeoutMs: command.timeoutMs,
    ...(command.env ? { env: command.env } : {}),
    ...(command.cwd ? { cwd: command.cwd } : {}),
  });
  const busy1 = machineBusyS();
  const first = await fixture.event(before, 'first');
  const last = n > 1 ? await fixture.event(before, 'last') : first;
  const after = await fixture.mark();
  const wallS = (run.exitedAt - run.startedAt) / 1000;
  const serverRequests = after.requests - before.requests;
  const serverCpuS = (after.cpuUs - before.cpuUs) / 1e6;
  const requestPhaseS = first !== null && last !== null ? (last - first) / 1000 : null;
  const figures: ClientRun = {
    n,
    exitCode: run.code,
    wallS,
    startupS: first === null ? null : (first - run.startedAt) / 1000,
    requestPhaseS,
    tailS: last === null ? null : (run.exitedAt - last) / 1000,
    rpsWall: n / wallS,
    rpsPhase: requestPhaseS === null || requestPhaseS <= 0 ? null : (n - 1) / requestPhaseS,
    clientCpuMs: run.cpuMs,
    clientCpuMsPerRequest: run.cpuMs === null ? null : run.cpuMs / n,
    serverRequests,
    serverConnections: after.connections - before.connections,
    serverCpuUsPerRequest: serverRequests > 0 ? (serverCpuS * 1e6) / serverRequests : null,
    otherCores: run.cpuMs === null ? null : otherCores(busy0, busy1, run.cpuMs / 1000 + serverCpuS, wallS),
  };
  return { figures, stdout: run.stdout, stderr: run.stderr };
}

/** Distinct non-empty stderr lines, shortened (warnings worth showing once). */
export function stderrLines(stderr: string): string[] {
  return [...new Set(stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('(Use `node --trace')))].map((l) => l.slice(0, 160));
}
