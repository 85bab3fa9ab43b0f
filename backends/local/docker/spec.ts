/**
 * What a container needs (image, command, mounts, limits, secrets file) → the Docker API's create options.
 * Pure, so the mapping is unit-tested; fixed choices: `Init` (stop signals reach the process), host
 * networking, no swap beyond the memory limit, and secrets only through a mounted 0600 file.
 */
import type { ContainerCreateOptions } from 'dockerode';
import { SECRETS_FILE_IN_CONTAINER } from '../../../common/env-file.js';
import type { DockerArgs } from './args.js';
import { containerLabels, containerName, type ContainerIdentity } from './names.js';

export interface ContainerMount {
  /** Absolute path on the Docker host. */
  source: string;
  /** Absolute path in the container. */
  target: string;
  readOnly?: boolean;
}

export interface ContainerSpec {
  identity: ContainerIdentity;
  image: string;
  /** Arguments to the image's entrypoint (or to `entrypoint` when given). */
  cmd: string[];
  entrypoint?: string[];
  /** Non-secret variables only: they are visible in `docker inspect`. */
  env?: Record<string, string>;
  /** Host path of the job's 0600 secrets file, mounted read-only at SECRETS_FILE_IN_CONTAINER. */
  secretsFile?: string;
  mounts?: ContainerMount[];
  /** `uid:gid` or a user name. */
  user?: string;
  workingDir?: string;
  /** Memory limit in bytes (swap is not allowed on top). */
  memoryBytes?: number;
  /** `execution.extra_docker_args`, parsed. */
  dockerArgs?: DockerArgs;
}

export function createOptions(spec: ContainerSpec): ContainerCreateOptions {
  const args = spec.dockerArgs;
  const mounts = [...(spec.mounts ?? [])];
  if (spec.secretsFile) mounts.push({ source: spec.secretsFile, target: SECRETS_FILE_IN_CONTAINER, readOnly: true });
  for (const mount of mounts) {
    if (!mount.source.startsWith('/') || !mount.target.startsWith('/')) throw new Error(`mount ${mount.source} → ${mount.target}: paths must be absolute`);
  }
  const memory = args?.hostConfig.Memory ?? spec.memoryBytes;
  const env = [...Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`), ...(args?.env ?? [])];
  return {
    name: containerName(spec.identity),
    Image: spec.image,
    Cmd: spec.cmd,
    ...(args?.entrypoint ?? spec.entrypoint ? { Entrypoint: args?.entrypoint ?? spec.entrypoint } : {}),
    ...(env.length ? { Env: env } : {}),
    Labels: { ...args?.labels, ...containerLabels(spec.identity) },
    ...(args?.user ?? spec.user ? { User: args?.user ?? spec.user } : {}),
    ...(args?.workingDir ?? spec.workingDir ? { WorkingDir: args?.workingDir ?? spec.workingDir } : {}),
    ...(args?.stopSignal ? { StopSignal: args.stopSignal } : {}),
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    HostConfig: {
      ...args?.hostConfig,
      Init: true,
      NetworkMode: 'host',
      Binds: [...mounts.map((m) => `${m.source}:${m.target}:${m.readOnly ? 'ro' : 'rw'}`), ...(args?.hostConfig.Binds ?? [])],
      ...(memory !== undefined ? { Memory: memory, MemorySwap: args?.hostConfig.MemorySwap ?? memory } : {}),
    },
  };
}
