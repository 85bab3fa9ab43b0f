/**
 * The evalflow worker: polls task queue `evalflow`, runs both workflows and the activities with real
 * backends wired in. Any number of workers may run; a crashed worker's watch is taken over by another.
 */
import { existsSync } from 'node:fs';
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities/index.js';
import { ProcessBackend } from '../backends/local/process.js';
import { distPath } from '../common/paths.js';
import { connectClient, ensureSearchAttributes, temporalTarget, type TemporalTarget } from '../common/temporal.js';
import { TASK_QUEUE } from '../workflows/types.js';

export interface RunWorkerOptions {
  target?: TemporalTarget;
  taskQueue?: string;
  activityDeps?: Partial<ActivityDeps>;
  /** Resolves to stop the worker gracefully (default: SIGINT/SIGTERM). */
  until?: Promise<void>;
  onReady?: () => void;
  /** Worker and workflow log level (default: EVALFLOW_LOG_LEVEL, else INFO). */
  logLevel?: LogLevel;
}

/** Prefer the bundle built by `npm run build`; fall back to bundling the compiled workflows now. */
export function workflowCodeOptions(): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  const bundle = distPath('workflow-bundle.js');
  return existsSync(bundle) ? { workflowBundle: { codePath: bundle } } : { workflowsPath: distPath('workflows', 'index.js') };
}

export async function runWorker(opts: RunWorkerOptions = {}): Promise<void> {
  installLogger(opts.logLevel ?? (process.env.EVALFLOW_LOG_LEVEL?.toUpperCase() as LogLevel | undefined) ?? 'INFO');
  const target = opts.target ?? temporalTarget();
  const client = await connectClient(target);
  await ensureSearchAttributes(client, target.namespace);
  await client.connection.close();

  const connection = await NativeConnection.connect({ address: target.address });
  try {
    const worker = await Worker.create({
      connection,
      namespace: target.namespace,
      taskQueue: opts.taskQueue ?? TASK_QUEUE,
      ...workflowCodeOptions(),
      activities: createActivities({ backends: { local: new ProcessBackend() }, ...opts.activityDeps }),
      shutdownGraceTime: '10 seconds',
    });
    const stop = opts.until ?? new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    void stop.then(() => worker.shutdown());
    opts.onReady?.();
    await worker.run();
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
