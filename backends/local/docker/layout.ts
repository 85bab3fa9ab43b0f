/**
 * What the docker executor carries in the workflow input, and where a job's files appear in its harness
 * container. Zod only, so the planner (CLI, dry run) can use it without loading the Docker client.
 */
import { z } from 'zod';

/** Where the run config is mounted in the harness container. */
export const RUN_CONFIG_IN_CONTAINER = '/evalflow/config_ef.yaml';
/** Where the job's artifacts dir is mounted (upstream's layout). */
export const RESULTS_IN_CONTAINER = '/results';

/** The docker executor's part of the workflow input (built by backends/local/plan.ts). */
export const DockerSpecSchema = z
  .object({
    kind: z.literal('docker'),
    /** The task's image; absent: evalflow's built-in harness image. */
    image: z.string().min(1).optional(),
    /** `execution.extra_docker_args`, validated when the config was loaded. */
    extraDockerArgs: z.string().default(''),
    /** `execution.mounts.evaluation`: host path → container path (`:ro` suffix for read-only). */
    mounts: z.record(z.string().startsWith('/'), z.string().regex(/^\/\S*?(:ro|:rw)?$/)).default({}),
    /** The task's dataset_dir (absolute, on this host) and where the harness sees it. */
    dataset: z.object({ source: z.string().startsWith('/'), target: z.string().startsWith('/') }).strict().optional(),
    /**
     * Upstream harness containers (backends/container-job.ts): the image's entrypoint and command replaced,
     * plus variables that are not secrets (NEMO_EVALUATOR_DATASET_DIR). Absent: the built-in `run_eval` contract.
     */
    command: z
      .object({ entrypoint: z.array(z.string()).min(1), cmd: z.array(z.string()), env: z.record(z.string(), z.string()).default({}) })
      .strict()
      .optional(),
  })
  .strict();
export type DockerSpec = z.infer<typeof DockerSpecSchema>;
