/** Test helpers around the shared Temporal dev server: clients, in-process and out-of-process workers. */
import { spawn, type ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { inject } from 'vitest';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { ActivityDeps } from '../../activities/index.js';
import type { HostIdentity } from '../../backends/local/host.js';
import { packageRoot } from '../../common/paths.js';
import type { TemporalTarget } from '../../common/temporal.js';
import { createWorkers } from '../../worker/workers.js';

// In-process workers log warnings and errors only; stage changes would drown the test report.
try {
  Runtime.install({ logger: new DefaultLogger('WARN') });
} catch {
  // Already installed by another suite in this process.
}

export function testTarget(): TemporalTarget {
  return { address: inject('temporalAddress'), namespace: 'default' };
}

export async function testClient(): Promise<Client> {
  const connection = await Connection.connect({ address: testTarget().address });
  return new Client({ connection, namespace: 'default' });
}

export interface RunningWorker {
  stop(): Promise<void>;
}

/** A worker in this process with the real executors (activity deps and the host identity may be overridden). */
export async function startWorker(
  opts: { address?: string; taskQueue?: string; host?: HostIdentity; activityDeps?: Partial<Omit<ActivityDeps, 'host'>> } = {},
): Promise<RunningWorker> {
  const connection = await NativeConnection.connect({ address: opts.address ?? testTarget().address });
  const workers = await createWorkers({
    connection,
    ...(opts.taskQueue ? { taskQueue: opts.taskQueue } : {}),
    ...(opts.host ? { host: opts.host } : {}),
    activityDeps: { pollIntervalMs: 200, ...opts.activityDeps },
  });
  const running = workers.run();
  return {
    async stop() {
      workers.shutdown();
      await running;
      await connection.close();
    },
  };
}

/** `evalflow worker` as a separate process (for crash tests), ready once it polls. */
export async function spawnWorkerProcess(env: Record<string, string> = {}): Promise<ChildProcess> {
  return (await spawnEvalflow(['worker'], env, /evalflow worker ready/)).child;
}

export interface SpawnedEvalflow {
  child: ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
}

/** `evalflow ARGS…` as a separate process, resolved once its output matches `ready` (rejected if it exits first). */
export async function spawnEvalflow(args: string[], env: Record<string, string>, ready: RegExp): Promise<SpawnedEvalflow> {
  const child = spawn(process.execPath, ['bin/evalflow.js', ...args], {
    cwd: packageRoot(),
    env: { ...process.env, TEMPORAL_ADDRESS: testTarget().address, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (ready.test(output)) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`evalflow ${args[0]} exited early (${code}): ${output}`)));
    setTimeout(() => reject(new Error(`evalflow ${args[0]} not ready after 60 s: ${output}`)), 60_000).unref();
  });
  return { child, output: () => output };
}
