/**
 * What the Slurm executor carries through the workflow (plain JSON, validated here): the executor spec
 * a job's launches are made from, and the handle of one launch (one Slurm job).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ExecutorHandleSchema } from '../../core/executor.js';
import { SlurmExecutionSchema } from '../../config/schema.js';
import type { SshOptions } from './ssh.js';

export const SlurmConnectionSchema = z
  .object({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535),
    user: z.string().min(1),
    keyFile: z.string().min(1).optional(),
    knownHostsFile: z.string().min(1).optional(),
    hostKeys: z.array(z.string().min(1)).optional(),
    trustOnFirstUse: z.boolean(),
  })
  .strict();
export type SlurmConnection = z.infer<typeof SlurmConnectionSchema>;

const JobSettingsSchema = SlurmExecutionSchema.pick({
  account: true,
  partition: true,
  num_nodes: true,
  ntasks_per_node: true,
  gres: true,
  gpus_per_node: true,
  walltime: true,
  subproject: true,
  sbatch_comment: true,
  sbatch_extra_flags: true,
  runtime: true,
  mounts: true,
  deployment: true,
  endpoint_readiness_timeout: true,
});

export const SlurmSpecSchema = z
  .object({
    kind: z.literal('slurm'),
    connection: SlurmConnectionSchema,
    /** Absolute, on the cluster: `<execution.output_dir>/<YYYYmmdd_HHMMSS>-<inv>/<task>.<n>`. */
    remoteJobDir: z.string().startsWith('/'),
    settings: JobSettingsSchema,
    harness: z
      .object({
        argv: z.array(z.string()).min(1),
        image: z.string().min(1).optional(),
        mounts: z.record(z.string(), z.string()).optional(),
      })
      .strict(),
    /** The deployment, a step of the same job (started first, health-checked inside the job). */
    deployment: z
      .object({
        argv: z.array(z.string()).min(1),
        image: z.string().min(1).optional(),
        mounts: z.record(z.string(), z.string()).optional(),
        healthUrl: z.string().min(1),
      })
      .strict()
      .optional(),
    pollIntervalS: z.number().min(0.1),
  })
  .strict();
export type SlurmSpec = z.infer<typeof SlurmSpecSchema>;

export const SlurmHandleSchema = ExecutorHandleSchema.extend({
  executor: z.literal('slurm'),
  slurmJobId: z.string().regex(/^\d+$/),
  slurmJobName: z.string().min(1),
  remoteJobDir: z.string().startsWith('/'),
  connection: SlurmConnectionSchema,
  builtinHarness: z.boolean(),
  pollIntervalS: z.number().min(0.1),
});
export type SlurmHandle = z.infer<typeof SlurmHandleSchema>;

/** `~/…` paths in the config mean the home of the worker's user (where they are read). */
function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}

export function sshOptionsOf(c: SlurmConnection): SshOptions {
  return {
    host: c.host,
    port: c.port,
    user: c.user,
    ...(c.keyFile ? { keyPath: expandHome(c.keyFile) } : {}),
    ...(c.knownHostsFile ? { knownHostsPath: expandHome(c.knownHostsFile) } : {}),
    ...(c.hostKeys?.length ? { hostKeys: c.hostKeys } : {}),
    trustOnFirstUse: c.trustOnFirstUse,
    // Give up on a connection within seconds: the watch keeps heartbeating and polls again later, and
    // launches are retried by their activity, so a long SSH outage never stalls a heartbeat.
    connectAttempts: 3,
    backoffBaseMs: 1000,
    backoffMaxMs: 4000,
  };
}
