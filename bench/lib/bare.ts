/** The bare undici control client (bare-process.ts) run on the client core, with the fixture's view of it. */
import { distPath } from '../../common/paths.js';
import type { BenchContext } from './context.js';
import type { CustomDataset } from './datasets.js';
import type { Fixture } from './fixture.js';
import { machineBusyS, otherCores } from './machine.js';
import { runMeasured } from './processes.js';

export interface BareResult {
  c: number;
  n: number;
  /** The warm-up requests' rate (a cold process), null without warm-up. */
  warmupRps: number | null;
  rps: number;
  seconds: number;
  errors: number;
  cpuMsPerRequest: number;
  /** Fixture CPU per request over warm-up + measured requests. */
  serverCpuUsPerRequest?: number | null;
  serverConnections?: number;
  otherCores?: number | null;
}

export async function runBare(ctx: BenchContext, fixture: Fixture, dataset: CustomDataset, c: number, n: number, warmup: number): Promise<BareResult> {
  const before = await fixture.mark();
  const busy0 = machineBusyS();
  const argv = [
    process.execPath, distPath('bench', 'lib', 'bare-process.js'), '--url', fixture.url, '--dataset-dir', dataset.dir,
    '--dataset-path', dataset.path, '--c', String(c), '--n', String(n), '--warmup', String(warmup),
  ];
  const run = await runMeasured(ctx.pinning, 'client', argv, ctx.scratch, { timeoutMs: 300_000 });
  const busy1 = machineBusyS();
  const after = await fixture.mark();
  const line = run.stdout.split('\n').find((l) => l.startsWith('result '));
  if (line === undefined) throw new Error(`bare undici client c=${c} failed (${run.code}): ${run.stderr.slice(-1000)}`);
  const result = JSON.parse(line.slice('result '.length)) as BareResult;
  const served = after.requests - before.requests;
  const serverCpuS = (after.cpuUs - before.cpuUs) / 1e6;
  result.serverCpuUsPerRequest = served > 0 ? (serverCpuS * 1e6) / served : null;
  result.serverConnections = after.connections - before.connections;
  result.otherCores = run.cpuMs === null ? null : otherCores(busy0, busy1, run.cpuMs / 1000 + serverCpuS, (run.exitedAt - run.startedAt) / 1000);
  return result;
}
