/**
 * Planning for the local executor (pure: used by the CLI, `--dry-run` and the client script): where the
 * harness sees its output and dataset dirs, the executor spec the workflow carries, and what a dry run
 * shows. Runtime `process` runs the built-in harness as a host process; `docker` runs the task's image.
 */
import { join } from 'node:path';
import type { TaskPlan } from '../../config/plan.js';
import type { RunConfig } from '../../config/schema.js';
import { distPath } from '../../common/paths.js';
import type { ExecutionPlan } from '../plans.js';

/** Where the job's artifacts dir appears inside a harness container (upstream's layout). */
export const CONTAINER_RESULTS_DIR = '/results';

export function planLocal(cfg: RunConfig, task: TaskPlan, jobDir: string): ExecutionPlan {
  const runConfigFile = join(jobDir, 'config_ef.yaml');
  if (cfg.execution.runtime === 'process') {
    return {
      backend: 'local/process',
      executor: { kind: 'process' },
      harnessPaths: { outputDir: join(jobDir, 'artifacts'), ...(task.datasetDir ? { datasetDir: task.datasetDir } : {}) },
      describe: [`# command: node ${distPath('harness', 'cli.js')} run_eval --run_config ${runConfigFile} --stage_dir ${join(jobDir, 'logs')}`],
    };
  }
  const image = task.container ?? '(the built-in harness image)';
  return {
    backend: 'local/docker',
    executor: { kind: 'docker', ...(task.container ? { image: task.container } : {}) },
    harnessPaths: { outputDir: CONTAINER_RESULTS_DIR, ...(task.datasetMountPath ? { datasetDir: task.datasetMountPath } : {}) },
    describe: [
      `# container: ${image} with ${join(jobDir, 'artifacts')} at ${CONTAINER_RESULTS_DIR}: nemo-evaluator run_eval --run_config ${CONTAINER_RESULTS_DIR}/config_ef.yaml (the Docker executor is the next milestone; \`run\` refuses this plan today)`,
    ],
  };
}
