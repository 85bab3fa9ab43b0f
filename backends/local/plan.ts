/**
 * Planning for the local executor (pure: used by the CLI, `--dry-run` and the client script): where the
 * harness sees its output and dataset dirs, the executor spec the workflow carries, and what a dry run
 * shows. Runtime `process` runs the built-in harness as a host process; `docker` runs the task's image.
 */
import { join, resolve } from 'node:path';
import type { TaskPlan } from '../../config/plan.js';
import type { RunConfig } from '../../config/schema.js';
import { distPath } from '../../common/paths.js';
import { SECRETS_FILE_IN_CONTAINER } from '../../common/env-file.js';
import { ConfigError } from '../../config/errors.js';
import type { ExecutionPlan } from '../plans.js';
import { RESULTS_IN_CONTAINER, RUN_CONFIG_IN_CONTAINER, type DockerSpec } from './docker/layout.js';

export function planLocal(cfg: RunConfig, task: TaskPlan, jobDir: string): ExecutionPlan {
  const execution = cfg.execution;
  if (execution.type !== 'local') throw new Error(`planLocal got execution.type ${execution.type}`);
  const runConfigFile = join(jobDir, 'config_ef.yaml');
  if (execution.runtime === 'process') {
    return {
      backend: 'local/process',
      executor: { kind: 'process' },
      harnessPaths: { outputDir: join(jobDir, 'artifacts'), ...(task.datasetDir ? { datasetDir: task.datasetDir } : {}) },
      describe: [`# command: node ${distPath('harness', 'cli.js')} run_eval --run_config ${runConfigFile} --stage_dir ${join(jobDir, 'logs')}`],
    };
  }
  const image = task.container ?? '(the built-in harness image)';
  const mounts = Object.fromEntries(
    Object.entries(execution.mounts?.evaluation ?? {}).map(([source, target]) => {
      const key = `execution.mounts.evaluation.${source}`;
      if (!/^\/\S*?(:ro|:rw)?$/.test(target)) throw new ConfigError(`${key}: expected an absolute container path (optionally with :ro), got ${JSON.stringify(target)}`, key);
      return [resolve(source), target];
    }),
  );
  // Bind mounts need absolute host paths: a relative dataset_dir is taken from where `run` is called.
  const dataset = task.datasetDir && task.datasetMountPath ? { source: resolve(task.datasetDir), target: task.datasetMountPath } : undefined;
  const executor: DockerSpec = {
    kind: 'docker',
    ...(task.container ? { image: task.container } : {}),
    extraDockerArgs: execution.extra_docker_args,
    mounts,
    ...(dataset ? { dataset } : {}),
  };
  const volumes = [
    `${join(jobDir, 'artifacts')}:${RESULTS_IN_CONTAINER}`,
    `${join(jobDir, 'config_ef.yaml')}:${RUN_CONFIG_IN_CONTAINER}:ro`,
    `${join(jobDir, '.secrets.env')}:${SECRETS_FILE_IN_CONTAINER}:ro`,
    ...(dataset ? [`${dataset.source}:${dataset.target}:ro`] : []),
    ...Object.entries(mounts).map(([source, target]) => `${source}:${target}`),
  ];
  return {
    backend: 'local/docker',
    executor: executor as ExecutionPlan['executor'],
    harnessPaths: { outputDir: RESULTS_IN_CONTAINER, ...(dataset ? { datasetDir: dataset.target } : {}) },
    describe: [
      `# container: evalflow-<job id>-a<attempt> from ${image}, host network, init, ${volumes.map((v) => `-v ${v}`).join(' ')}${execution.extra_docker_args ? ` ${execution.extra_docker_args}` : ''}`,
      `# command: run_eval --run_config ${RUN_CONFIG_IN_CONTAINER}`,
    ],
  };
}
