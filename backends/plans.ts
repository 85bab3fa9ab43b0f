/**
 * Planning a job for its executor, before anything starts (pure: the CLI, `--dry-run` and the client
 * script use it): the executor spec the workflow carries, the paths the harness sees, what a dry run
 * shows. `execution.type` picks the executor, as upstream.
 */
import type { TaskPlan } from '../config/plan.js';
import type { RunConfig } from '../config/schema.js';
import type { ExecutorSpec } from '../core/executor.js';
import { basename, dirname } from 'node:path';
import { planLocal } from './local/plan.js';
import { planSlurm } from './slurm/plan.js';
import { resolveDeploymentEnv } from '../config/env.js';
import { planServer, type ServerSpec } from './server-spec.js';

export interface ExecutionPlan {
  /** For people and the EvalBackend search attribute: `local/process`, `local/docker`, `slurm`. */
  backend: string;
  executor: ExecutorSpec;
  /** The harness's output dir and dataset dir as the harness sees them. */
  harnessPaths: { outputDir: string; datasetDir?: string };
  /**
   * The harness runs upstream's container command (backends/container-job.ts): its run config is the user's
   * nemo_evaluator_config as written (no evalflow keys), its dataset dir comes from NEMO_EVALUATOR_DATASET_DIR.
   */
  upstreamCommand?: boolean;
  /** The job's model server (`deployment:`), started before the harness and stopped with the job. */
  server?: ServerSpec;
  /** Dry-run lines: what would run, and where. */
  describe: string[];
}

export function planExecution(cfg: RunConfig, task: TaskPlan, jobDir: string): ExecutionPlan {
  switch (cfg.execution.type) {
    case 'local':
      return planLocal(cfg, task, jobDir);
    case 'slurm': {
      // The remote run dir mirrors the local one: <output_dir>/<YYYYmmdd_HHMMSS>-<inv>/<task>.<n>.
      const runDirName = basename(dirname(jobDir));
      const invocationId = runDirName.slice(runDirName.lastIndexOf('-') + 1);
      const server = cfg.deployment.type === 'none' ? undefined : planServer(cfg.deployment, cfg.execution.mounts.deployment ?? {}, resolveDeploymentEnv(cfg));
      return planSlurm(cfg.execution, task, runDirName, `${invocationId}.${task.index}`, server);
    }
  }
}
