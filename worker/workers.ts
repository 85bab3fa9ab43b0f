/**
 * The workers of one evalflow worker process: one on the shared task queue (workflows and activities),
 * one on this host's own queue (activities only), which serves the polls, stops and collects of the local
 * processes and containers this host runs. One place for this wiring: the worker command and the tests.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities/index.js';
import { localHostIdentity, type HostIdentity } from '../backends/local/host.js';
import { createExecutors, type ExecutorOptions } from '../backends/registry.js';
import { dataConverterFromEnv } from '../common/codec.js';
import { distPath } from '../common/paths.js';
import { hostTaskQueue, TASK_QUEUE } from '../core/ids.js';
import { EndpointLimitServer, workerSocketPath } from '../harness/shared-limit.js';

export interface EvalflowWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  host?: HostIdentity;
  executorOptions?: Omit<ExecutorOptions, 'host'>;
  activityDeps?: Partial<Omit<ActivityDeps, 'host'>>;
  shutdownGraceTime?: WorkerOptions['shutdownGraceTime'];
  /** Default: evalflow's, from EVALFLOW_CODEC_KEY_FILE (see common/codec.ts). */
  dataConverter?: WorkerOptions['dataConverter'];
}

export interface EvalflowWorkers {
  host: HostIdentity;
  run(): Promise<void>;
  shutdown(): void;
  readonly running: boolean;
}

/**
 * Prefer the bundle built by `npm run build`; fall back to bundling the compiled workflows now. Encrypting
 * workers run the bundle whose failure converter encodes failure messages (see common/codec.ts).
 */
export function workflowCodeOptions(opts: { encrypted?: boolean } = {}): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  const bundle = distPath(opts.encrypted ? 'workflow-bundle-encrypted.js' : 'workflow-bundle.js');
  return existsSync(bundle) ? { workflowBundle: { codePath: bundle } } : { workflowsPath: distPath('workflows', 'index.js') };
}

export async function createWorkers(opts: EvalflowWorkerOptions): Promise<EvalflowWorkers> {
  const host = opts.host ?? localHostIdentity();
  // Per-endpoint limits shared by the harness processes this worker launches (execution.endpoint_parallelism).
  const endpointLimits = await EndpointLimitServer.start(await workerSocketPath(tmpdir()));
  const executorOptions = { ...opts.executorOptions, process: { endpointLimitsSocket: endpointLimits.socketPath, ...opts.executorOptions?.process } };
  const activities = createActivities({
    executors: createExecutors({ host, ...executorOptions }),
    host,
    ...opts.activityDeps,
  });
  const dataConverter = opts.dataConverter ?? dataConverterFromEnv();
  const common = {
    connection: opts.connection,
    namespace: opts.namespace ?? 'default',
    activities,
    dataConverter,
    ...(opts.shutdownGraceTime ? { shutdownGraceTime: opts.shutdownGraceTime } : {}),
  };
  let workers: Worker[];
  try {
    const shared = await Worker.create({ ...common, taskQueue: opts.taskQueue ?? TASK_QUEUE, ...workflowCodeOptions({ encrypted: dataConverter !== undefined }) });
    workers = [shared, await Worker.create({ ...common, taskQueue: hostTaskQueue(host.id) })];
  } catch (err) {
    await endpointLimits.close();
    throw err;
  }
  return {
    host,
    run: async () => {
      // If one stops (fatal error), stop the other so the process does not half-serve.
      try {
        await Promise.all(
          workers.map((w) =>
            w.run().finally(() => {
              for (const other of workers) if (other.getState() === 'RUNNING') other.shutdown();
            }),
          ),
        );
      } finally {
        await endpointLimits.close();
      }
    },
    shutdown: () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    },
    get running() {
      return workers.some((w) => w.getState() === 'RUNNING');
    },
  };
}
