/**
 * The one place that builds executors, for the worker, the tests and the CLI (`logs`). Each executor is
 * keyed by its kind; the workflow input's `executor.kind` and a handle's `executor` pick one.
 */
import type { ExecutorKind } from '../core/executor.js';
import { DockerExecutor, type DockerExecutorOptions } from './local/docker/executor.js';
import { localHostIdentity, type HostIdentity } from './local/host.js';
import { ProcessExecutor, type ProcessExecutorOptions } from './local/process.js';
import { SlurmExecutor } from './slurm/executor.js';
import type { Executor, ExecutorRegistry } from './types.js';

export interface ExecutorOptions {
  /** The host this worker runs local processes and containers on (default: this machine). */
  host?: HostIdentity;
  process?: Omit<ProcessExecutorOptions, 'host'>;
  docker?: Omit<DockerExecutorOptions, 'host'>;
}

export function createExecutors(opts: ExecutorOptions = {}): ExecutorRegistry {
  const host = opts.host ?? localHostIdentity();
  return new Map<ExecutorKind, Executor>([
    ['process', new ProcessExecutor({ host, ...opts.process }) as Executor],
    // Connects to DOCKER_HOST on first use: a worker without Docker still serves the other executors.
    ['docker', new DockerExecutor({ host, ...opts.docker }) as Executor],
    ['slurm', new SlurmExecutor() as Executor],
  ]);
}

export function executorFor(registry: ExecutorRegistry, kind: ExecutorKind): Executor {
  const executor = registry.get(kind);
  if (!executor) throw new Error(`this worker has no '${kind}' executor (it runs: ${[...registry.keys()].join(', ')})`);
  return executor;
}
