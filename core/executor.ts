/**
 * What the workflow knows of executors (upstream's word; `execution.type` + runtime pick one): their
 * names, a handle's common fields and how long their activities may take. Each executor owns the rest of
 * its handle and its spec (zod schemas under backends/<executor>/); workflows pass them on as opaque JSON.
 */
import { z } from 'zod';

export const EXECUTOR_KINDS = ['process', 'docker', 'slurm'] as const;
export type ExecutorKind = (typeof EXECUTOR_KINDS)[number];

/** Where and how a job runs: `kind` plus the executor's own settings (validated by the executor). */
export const ExecutorSpecSchema = z.object({ kind: z.enum(EXECUTOR_KINDS) }).passthrough();
export type ExecutorSpec = z.infer<typeof ExecutorSpecSchema>;

/** A launched harness or model server: enough to find it again from any worker. */
export const ExecutorHandleSchema = z
  .object({
    executor: z.enum(EXECUTOR_KINDS),
    role: z.enum(['harness', 'server']),
    /** Deterministic: `launchName(jobId, attempt)` (servers: `-server` appended). */
    name: z.string().min(1),
    /** The job's directory on the worker side (artifacts are fetched here for remote executors). */
    jobDir: z.string().startsWith('/'),
    attempt: z.number().int().nonnegative(),
    /** Set by host-bound executors (a local process or container): its activities must run on this queue. */
    taskQueue: z.string().min(1).optional(),
    /** For people: `pid 1234 on host-a`, `container 3f2a1b2c`, `Slurm job 42 on login-1`. */
    display: z.string(),
    /** A model server's readiness URL: it answers 200 once the server is ready (upstream's health check). */
    healthUrl: z.string().url().optional(),
  })
  .passthrough();
export type ExecutorHandle = z.infer<typeof ExecutorHandleSchema>;

/**
 * Activity timing per executor: a local spawn takes a second, a container launch may pull an image, an
 * sbatch crosses an SSH link that may be down for a while (the activity retries inside this bound).
 */
export const EXECUTOR_TIMING: Record<ExecutorKind, { launchTimeoutS: number }> = {
  process: { launchTimeoutS: 120 },
  docker: { launchTimeoutS: 1800 },
  slurm: { launchTimeoutS: 900 },
};
