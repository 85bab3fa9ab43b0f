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
import { SECRETS_FILE_IN_CONTAINER, writeEnvFile } from '../../../common/env-file.js';
import { writeFileAtomic } from '../../../common/files.js';
import { resolveRuntimeEnv } from '../../../core/env-refs.js';
import { ExecutorHandleSchema } from '../../../core/executor.js';
import { outcomeOfExit } from '../../../core/harness-contract.js';
import type { Outcome, PollResult } from '../../../core/outcome.js';
import { ensureLocalImage, type ImageName } from '../../../docker/images.js';
import { ensureModel } from '../../../model-server/model-file.js';
import { llamaCppArgs, MODEL_IN_CONTAINER, ServerSpecSchema, type ServerSpec } from '../../server-spec.js';
import type { DeploySpec, Executor, JobRef, LaunchSpec, LogChunk } from '../../types.js';
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
const serverLog = (jobDir: string) => join(jobDir, 'logs', 'server_stdout.log');
/** Where a container's output is copied: the harness's and the model server's own logs. */
const logOf = (handle: Pick<DockerHandle, 'jobDir' | 'role'>) => (handle.role === 'server' ? serverLog(handle.jobDir) : clientLog(handle.jobDir));
/** Server images that need GPUs, as upstream runs them (`docker run --gpus all --shm-size=100g`). */
const GPU_SERVER_ARGS = '--gpus all --shm-size 100g';
/** Runs a server's command after loading the mounted secrets file, so they stay out of `docker inspect`. */
const SOURCE_SECRETS_THEN_EXEC = `. ${SECRETS_FILE_IN_CONTAINER} && exec "$@"`;

export class DockerExecutor implements Executor<DockerHandle> {
  readonly kind = 'docker' as const;
  readonly hostBound = true;
  private connected: Promise<ContainerRuntime> | undefined;
  private readonly builtImages = new Map<ImageName, Promise<string>>();

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

  /**
   * Starts (or adopts) the job's model server container (`deployment:`): upstream's image and command for
   * vllm, sglang, nim, trtllm and generic (GPUs requested for all but generic), evalflow's model-server
   * image with the GGUF mounted for llama_cpp. Host networking: it listens on `deployment.port` of this host.
   */
  async deploy(spec: DeploySpec): Promise<DockerHandle> {
    const server = ServerSpecSchema.parse(spec.deployment);
    const runtime = await this.runtime();
    const identity: ContainerIdentity = { ...identityOf(spec.jobId, 0), role: 'server' };
    const name = containerName(identity);
    const containerSpec = await this.serverContainerSpec(spec, server, identity);
    if (!(await runtime.inspect(name))) {
      mkdirSync(join(spec.jobDir, 'logs'), { recursive: true });
      if (containerSpec.secretsFile) {
        writeEnvFile(containerSpec.secretsFile, { ...resolveRuntimeEnv(spec.runtimeEnv, process.env, this.opts.host.hostname), ...spec.env });
      }
      appendLauncherLine(serverLog(spec.jobDir), `=== ${new Date().toISOString()} ${name}: launching the ${server.type} server container ${containerSpec.image}`);
    }
    const launched = await runtime.createOrAdopt(containerSpec);
    return {
      executor: 'docker',
      role: 'server',
      name,
      jobDir: spec.jobDir,
      attempt: 0,
      display: `${server.type} server container ${name} (${launched.id.slice(0, 12)}) on ${this.opts.host.hostname}`,
      healthUrl: server.healthUrl,
      containerId: launched.id,
      hostId: this.opts.host.id,
      builtinHarness: false,
    };
  }

  async poll(handle: DockerHandle): Promise<PollResult> {
    this.assertLocal(handle);
    const runtime = await this.runtime();
    await runtime.syncLogs(handle.name, logOf(handle));
    const outcome = outcomeOf(await runtime.outcome(handle.name), handle);
    const progress = readProgress(handle.jobDir);
    return progress ? { outcome, progress } : { outcome };
  }

  async untilChange(handle: DockerHandle, maxWaitMs: number): Promise<void> {
    this.assertLocal(handle);
    await (await this.runtime()).untilExited(handle.name, maxWaitMs);
  }

  async stop(handle: DockerHandle): Promise<boolean> {
    this.assertLocal(handle);
    const runtime = await this.runtime();
    const wasRunning = await runtime.stop(handle.name, this.opts.stopGraceS ?? 10);
    await runtime.syncLogs(handle.name, logOf(handle));
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
    return readLogFrom(logOf(handle), offset);
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
    return configured ?? this.builtImage('harness');
  }

  /** evalflow's own image, built once from this installation without a registry (then found by its tag). */
  private async builtImage(name: ImageName): Promise<string> {
    const runtime = await this.runtime();
    let image = this.builtImages.get(name);
    if (!image) {
      image = ensureLocalImage(runtime.docker, name).then(
        (built) => built.tag,
        (err: unknown) => {
          this.builtImages.delete(name);
          throw new Error(`cannot build the ${name} image on ${describeDockerHost()}: ${(err as Error).message}`, { cause: err });
        },
      );
      this.builtImages.set(name, image);
    }
    return image;
  }

  private async serverContainerSpec(spec: DeploySpec, server: ServerSpec, identity: ContainerIdentity): Promise<ContainerSpec> {
    if (server.type === 'llama_cpp') {
      // The model is a file on this host (fetched once when none is named), mounted read-only.
      const model = server.modelPath ?? (await ensureModel());
      return {
        identity,
        image: server.image ?? (await this.builtImage('model-server')),
        cmd: llamaCppArgs(server, MODEL_IN_CONTAINER),
        mounts: [{ source: model, target: MODEL_IN_CONTAINER, readOnly: true }],
      };
    }
    const [program, ...args] = server.argv as [string, ...string[]];
    const secrets = Object.keys(spec.env).length + Object.keys(spec.runtimeEnv).length > 0;
    return {
      identity,
      image: server.image,
      // As upstream (`--entrypoint ''`): the command replaces the image's entrypoint.
      ...(secrets ? { entrypoint: ['bash', '-c', SOURCE_SECRETS_THEN_EXEC, server.type], cmd: server.argv } : { entrypoint: [program], cmd: args }),
      ...(secrets ? { secretsFile: join(spec.jobDir, '.server-secrets.env') } : {}),
      mounts: server.mounts,
      ...(server.type === 'generic' ? {} : { dockerArgs: parseDockerArgs(GPU_SERVER_ARGS) }),
    };
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
      // A model server has no exit-code contract: its exit is the failure, with its last output.
      if (handle.role === 'server') return { kind: 'failed', exitCode: container.exitCode, permanent: true, reason: container.reason };
      const contract = outcomeOfExit(container.exitCode, handle.builtinHarness);
      return contract.kind === 'failed' ? { ...contract, reason: `${contract.reason}: ${container.reason}` } : contract;
    }
  }
}
