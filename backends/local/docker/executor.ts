/**
 * Local executor, Docker runtime: the job's harness as a container on the worker's Docker engine
 * (DOCKER_HOST). The container is named and labelled from (job, attempt), so a retried launch adopts it;
 * the job dir's `artifacts/` is its `/results`, the run config and the 0600 secrets file are mounted
 * read-only, and its output is copied to `logs/client_stdout.log` on every poll. Containers are host-bound
 * (their bind mounts are this host's paths), so the activity layer routes their handles to this host.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { stringify } from 'yaml';
import { z } from 'zod';
import { writeEnvFile } from '../../../common/env-file.js';
import { writeFileAtomic } from '../../../common/files.js';
import { resolveRuntimeEnv } from '../../../core/env-refs.js';
import { ExecutorHandleSchema } from '../../../core/executor.js';
import { outcomeOfExit } from '../../../core/harness-contract.js';
import type { Outcome, PollResult } from '../../../core/outcome.js';
import { ensureLocalImage } from '../../../docker/images.js';
import type { Executor, JobRef, LaunchSpec, LogChunk } from '../../types.js';
import { readLogFrom } from '../files.js';
import type { HostIdentity } from '../host.js';
import { readProgress } from '../process.js';
import { parseDockerArgs } from './args.js';
import { connectDocker, describeDockerHost, pingDocker } from './client.js';
import { ContainerRuntime } from './containers.js';
import { appendLauncherLine } from './logs.js';
import { containerName, type ContainerIdentity } from './names.js';
import type { ContainerOutcome } from './outcome.js';
import { DockerSpecSchema, RESULTS_IN_CONTAINER, RUN_CONFIG_IN_CONTAINER, type DockerSpec } from './layout.js';
import type { ContainerMount, ContainerSpec } from './spec.js';

export const DockerHandleSchema = ExecutorHandleSchema.extend({
  executor: z.literal('docker'),
  containerId: z.string().min(1),
  /** The host whose Docker engine runs the container (bind mounts are its paths). */
  hostId: z.string().min(1),
  /** Exit codes 2 and 3 carry meaning only for evalflow's own harness. */
  builtinHarness: z.boolean(),
});
export type DockerHandle = z.infer<typeof DockerHandleSchema>;

export interface DockerExecutorOptions {
  host: HostIdentity;
  /** Default: the engine at DOCKER_HOST. */
  docker?: Docker;
  /**
   * The built-in harness image. Default: EVALFLOW_HARNESS_IMAGE, else the image built from this
   * installation without a registry (docker/images.ts; built once, then found by its content tag).
   */
  harnessImage?: string;
  /** Seconds between SIGTERM and SIGKILL when stopping a container. */
  stopGraceS?: number;
}

const clientLog = (jobDir: string) => join(jobDir, 'logs', 'client_stdout.log');

export class DockerExecutor implements Executor<DockerHandle> {
  readonly kind = 'docker' as const;
  readonly hostBound = true;
  private connected: Promise<ContainerRuntime> | undefined;
  private harnessImage: Promise<string> | undefined;

  constructor(private readonly opts: DockerExecutorOptions) {}

  parseHandle(raw: unknown): DockerHandle {
    return DockerHandleSchema.parse(raw);
  }

  async launch(spec: LaunchSpec): Promise<DockerHandle> {
    const docker = DockerSpecSchema.parse(spec.executor);
    const runtime = await this.runtime();
    const identity = identityOf(spec.jobId, spec.attempt);
    const name = containerName(identity);
    const containerSpec = await this.containerSpec(spec, docker, identity);
    if (!(await runtime.inspect(name))) {
      // First try of this launch: write what the container mounts (an adopted container has them already).
      mkdirSync(join(spec.jobDir, 'artifacts'), { recursive: true });
      mkdirSync(join(spec.jobDir, 'logs'), { recursive: true });
      writeFileAtomic(join(spec.jobDir, 'config_ef.yaml'), stringify(spec.runConfig));
      writeEnvFile(join(spec.jobDir, '.secrets.env'), { ...resolveRuntimeEnv(spec.runtimeEnv, process.env, this.opts.host.hostname), ...spec.env });
      appendLauncherLine(clientLog(spec.jobDir), `=== ${new Date().toISOString()} ${name}: launching container ${containerSpec.image} (attempt ${spec.attempt})`);
    }
    const launched = await runtime.createOrAdopt(containerSpec);
    return {
      executor: 'docker',
      role: 'harness',
      name,
      jobDir: spec.jobDir,
      attempt: spec.attempt,
      display: `container ${name} (${launched.id.slice(0, 12)}) on ${this.opts.host.hostname}`,
      containerId: launched.id,
      hostId: this.opts.host.id,
      builtinHarness: spec.builtinHarness,
    };
  }

  async poll(handle: DockerHandle): Promise<PollResult> {
    this.assertLocal(handle);
    const runtime = await this.runtime();
    await runtime.syncLogs(handle.name, clientLog(handle.jobDir));
    const outcome = outcomeOf(await runtime.outcome(handle.name), handle);
    const progress = readProgress(handle.jobDir);
    return progress ? { outcome, progress } : { outcome };
  }

  async stop(handle: DockerHandle): Promise<boolean> {
    this.assertLocal(handle);
    const runtime = await this.runtime();
    const wasRunning = await runtime.stop(handle.name, this.opts.stopGraceS ?? 10);
    await runtime.syncLogs(handle.name, clientLog(handle.jobDir));
    return wasRunning;
  }

  /** Stops and removes every container of the job (labels), after copying their last output. */
  async stopJob(job: JobRef): Promise<number> {
    const runtime = await this.runtime();
    const containers = await runtime.list({ invocationId: identityOf(job.jobId, 1).invocationId, jobId: job.jobId });
    for (const c of containers) await runtime.syncLogs(c.name, join(job.jobDir, 'logs', c.identity.role === 'server' ? 'server_stdout.log' : 'client_stdout.log'));
    await runtime.removeAll({ invocationId: identityOf(job.jobId, 1).invocationId, jobId: job.jobId }, this.opts.stopGraceS ?? 10);
    return containers.filter((c) => c.state === 'running' || c.state === 'created').length;
  }

  async fetchArtifacts(): Promise<void> {
    // Written in place: /results is the job's artifacts dir on this host.
  }

  /** The copy in the job dir: the watching worker keeps it current (a second writer would race it). */
  async readLog(handle: DockerHandle, offset: number): Promise<LogChunk> {
    return readLogFrom(clientLog(handle.jobDir), offset);
  }

  private runtime(): Promise<ContainerRuntime> {
    this.connected ??= (async () => {
      const docker = this.opts.docker ?? connectDocker();
      await pingDocker(docker);
      return new ContainerRuntime(docker);
    })().catch((err: unknown) => {
      this.connected = undefined; // try again next time: the engine may come (back) up
      throw err;
    });
    return this.connected;
  }

  private async imageFor(docker: DockerSpec): Promise<string> {
    if (docker.image) return docker.image;
    const configured = this.opts.harnessImage ?? process.env.EVALFLOW_HARNESS_IMAGE;
    if (configured) return configured;
    const runtime = await this.runtime();
    this.harnessImage ??= ensureLocalImage(runtime.docker, 'harness').then(
      (image) => image.tag,
      (err: unknown) => {
        this.harnessImage = undefined;
        throw new Error(`cannot build the built-in harness image on ${describeDockerHost()}: ${(err as Error).message}`, { cause: err });
      },
    );
    return this.harnessImage;
  }

  private async containerSpec(spec: LaunchSpec, docker: DockerSpec, identity: ContainerIdentity): Promise<ContainerSpec> {
    const mounts: ContainerMount[] = [
      { source: join(spec.jobDir, 'artifacts'), target: RESULTS_IN_CONTAINER },
      { source: join(spec.jobDir, 'config_ef.yaml'), target: RUN_CONFIG_IN_CONTAINER, readOnly: true },
      ...(docker.dataset ? [{ ...docker.dataset, readOnly: true }] : []),
      ...Object.entries(docker.mounts).map(([source, target]) => ({ source, target: target.replace(/:(ro|rw)$/, ''), readOnly: target.endsWith(':ro') })),
    ];
    const builtin = spec.builtinHarness && !docker.image;
    return {
      identity,
      image: await this.imageFor(docker),
      cmd: docker.command?.cmd ?? ['run_eval', '--run_config', RUN_CONFIG_IN_CONTAINER],
      ...(docker.command ? { entrypoint: docker.command.entrypoint, env: docker.command.env } : {}),
      secretsFile: join(spec.jobDir, '.secrets.env'),
      mounts,
      // The built-in harness runs as the worker's user, so its files in the job dir are the user's.
      ...(builtin && process.getuid && process.getgid ? { user: `${process.getuid()}:${process.getgid()}` } : {}),
      dockerArgs: parseDockerArgs(docker.extraDockerArgs),
    };
  }

  /** Bind mounts are this host's paths: a handle from elsewhere was routed wrongly, never "lost". */
  private assertLocal(handle: DockerHandle): void {
    if (handle.hostId !== this.opts.host.id) {
      throw new Error(`${handle.name} runs on host ${handle.hostId}, not on this worker's host ${this.opts.host.id}: its activities must run on task queue ${handle.taskQueue ?? '(none)'}`);
    }
  }
}

function identityOf(jobId: string, attempt: number): ContainerIdentity {
  return { invocationId: jobId.split('.')[0] as string, jobId, attempt, role: 'harness' };
}

/** Container state → the workflow's outcome; exit codes mean what the harness contract says. */
function outcomeOf(container: ContainerOutcome, handle: DockerHandle): Outcome {
  switch (container.state) {
    case 'created':
      return { kind: 'queued', reason: `container ${handle.name} is created but not started` };
    case 'running':
      return { kind: 'running' };
    case 'succeeded':
      return { kind: 'succeeded' };
    case 'oomKilled':
      return { kind: 'oomKilled', reason: container.reason };
    case 'missing':
      return { kind: 'lost', reason: `container ${handle.name} no longer exists (removed outside evalflow?)` };
    case 'signalled':
      return outcomeOfExit(container.exitCode, handle.builtinHarness);
    case 'failed': {
      const contract = outcomeOfExit(container.exitCode, handle.builtinHarness);
      return contract.kind === 'failed' ? { ...contract, reason: `${contract.reason}: ${container.reason}` } : contract;
    }
  }
}
