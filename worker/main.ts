/**
 * The evalflow worker: polls task queue `evalflow` (both workflows, every activity) and its host's own
 * queue (the activities of local processes and containers it started), with the real executors wired in.
 * Any number of workers may run; a crashed worker's watch is taken over by another on the same host.
 */
import { DefaultLogger, NativeConnection, Runtime, type LogLevel } from '@temporalio/worker';
import type { ActivityDeps } from '../activities/index.js';
import { connectClient, ensureSearchAttributes, temporalTarget, type TemporalTarget } from '../common/temporal.js';
import { createWorkers } from './workers.js';

export { workflowCodeOptions } from './workers.js';

export interface RunWorkerOptions {
  target?: TemporalTarget;
  taskQueue?: string;
  activityDeps?: Partial<Omit<ActivityDeps, 'host'>>;
  /** Resolves to stop the worker gracefully (default: SIGINT/SIGTERM). */
  until?: Promise<void>;
  onReady?: () => void;
  /** Worker and workflow log level (default: EVALFLOW_LOG_LEVEL, else INFO). */
  logLevel?: LogLevel;
}

export async function runWorker(opts: RunWorkerOptions = {}): Promise<void> {
  installLogger(opts.logLevel ?? (process.env.EVALFLOW_LOG_LEVEL?.toUpperCase() as LogLevel | undefined) ?? 'INFO');
  const target = opts.target ?? temporalTarget();
  const client = await connectClient(target);
  await ensureSearchAttributes(client, target.namespace);
  await client.connection.close();

  const connection = await NativeConnection.connect({ address: target.address });
  try {
    const workers = await createWorkers({
      connection,
      namespace: target.namespace,
      ...(opts.taskQueue ? { taskQueue: opts.taskQueue } : {}),
      ...(opts.activityDeps ? { activityDeps: opts.activityDeps } : {}),
      shutdownGraceTime: '10 seconds',
    });
    const stop = opts.until ?? new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    void stop.then(() => workers.shutdown());
    opts.onReady?.();
    await workers.run();
  } finally {
    await connection.close();
  }
}

/** The SDK runtime can be configured once per process, before the first connection. */
function installLogger(level: LogLevel): void {
  try {
    Runtime.install({ logger: new DefaultLogger(level) });
  } catch {
    // Already installed (e.g. by an embedding program): keep its logger.
  }
}
