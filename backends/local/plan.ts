/**
 * Planning for the local executor (pure: used by the CLI, `--dry-run` and the client script): where the
 * harness sees its output and dataset dirs, the executor spec the workflow carries, the job's model server,
 * and what a dry run shows. Runtime `process` runs the built-in harness (and the llama_cpp server) as host
 * processes; `docker` runs the task's image: evalflow's harness image for built-in tasks, upstream's harness
 * container with upstream's command (backends/container-job.ts) for catalogue tasks.
 */
import { join, resolve } from 'node:path';
import { SECRETS_FILE_IN_CONTAINER } from '../../common/env-file.js';
import { distPath } from '../../common/paths.js';
import { shellCommand } from '../../common/shell.js';
import { resolveDeploymentEnv } from '../../config/env.js';
import { ConfigError } from '../../config/errors.js';
import type { TaskPlan } from '../../config/plan.js';
import type { LocalExecution, RunConfig } from '../../config/schema.js';
import { harnessContainerCommand } from '../container-job.js';
import type { ExecutionPlan } from '../plans.js';
import { llamaCppArgs, MODEL_IN_CONTAINER, planServer, type ServerSpec } from '../server-spec.js';
import { RESULTS_IN_CONTAINER, RUN_CONFIG_IN_CONTAINER, type DockerSpec } from './docker/layout.js';

/** Upstream's variable naming the dataset dir inside a harness container. */
export const DATASET_DIR_ENV = 'NEMO_EVALUATOR_DATASET_DIR';

export function planLocal(cfg: RunConfig, task: TaskPlan, jobDir: string): ExecutionPlan {
  const execution = cfg.execution;
  if (execution.type !== 'local') throw new Error(`planLocal got execution.type ${execution.type}`);
  const server = cfg.deployment.type === 'none' ? undefined : planServer(cfg.deployment, mountMap(execution, 'deployment'), resolveDeploymentEnv(cfg));
  if (execution.runtime === 'process') {
    const runConfigFile = join(jobDir, 'config_ef.yaml');
    return {
      backend: 'local/process',
      executor: { kind: 'process' },
      harnessPaths: { outputDir: join(jobDir, 'artifacts'), ...(task.datasetDir ? { datasetDir: task.datasetDir } : {}) },
      ...(server ? { server } : {}),
      describe: [
        ...(server ? describeServer(server, 'process') : []),
        `# command: node ${distPath('harness', 'cli.js')} run_eval --run_config ${runConfigFile} --stage_dir ${join(jobDir, 'logs')}`,
      ],
    };
  }
  const mounts = mountMap(execution, 'evaluation');
  // Bind mounts need absolute host paths: a relative dataset_dir is taken from where `run` is called.
  const dataset = task.datasetDir && task.datasetMountPath ? { source: resolve(task.datasetDir), target: task.datasetMountPath } : undefined;
  const upstreamCommand = runsUpstreamCommand(cfg, task);
  const command = upstreamCommand
    ? harnessContainerCommand({ preCmd: task.preCmd, postCmd: task.postCmd, runConfigPath: RUN_CONFIG_IN_CONTAINER, resultsDir: RESULTS_IN_CONTAINER, secretsFile: SECRETS_FILE_IN_CONTAINER })
    : undefined;
  // As upstream: the container learns where its dataset is from NEMO_EVALUATOR_DATASET_DIR (not a secret).
  const env: Record<string, string> = upstreamCommand && dataset ? { [DATASET_DIR_ENV]: dataset.target } : {};
  const executor: DockerSpec = {
    kind: 'docker',
    ...(task.container ? { image: task.container } : {}),
    extraDockerArgs: execution.extra_docker_args,
    mounts,
    ...(dataset ? { dataset } : {}),
    ...(command ? { command: { ...command, env } } : {}),
  };
  const volumes = [
    `${join(jobDir, 'artifacts')}:${RESULTS_IN_CONTAINER}`,
    `${join(jobDir, 'config_ef.yaml')}:${RUN_CONFIG_IN_CONTAINER}:ro`,
    `${join(jobDir, '.secrets.env')}:${SECRETS_FILE_IN_CONTAINER}:ro`,
    ...(dataset ? [`${dataset.source}:${dataset.target}:ro`] : []),
    ...Object.entries(mounts).map(([source, target]) => `${source}:${target}`),
  ];
  const image = task.container ?? '(the built-in harness image)';
  return {
    backend: 'local/docker',
    executor: executor as ExecutionPlan['executor'],
    harnessPaths: { outputDir: RESULTS_IN_CONTAINER, ...(dataset ? { datasetDir: dataset.target } : {}) },
    upstreamCommand,
    ...(server ? { server } : {}),
    describe: [
      ...(server ? describeServer(server, 'docker') : []),
      `# container: evalflow-<job id>-a<attempt> from ${image}, host network, init, ${volumes.map((v) => `-v ${v}`).join(' ')}${Object.entries(env)
        .map(([k, v]) => ` -e ${k}=${v}`)
        .join('')}${execution.extra_docker_args ? ` ${execution.extra_docker_args}` : ''}`,
      command ? `# command: ${shellCommand([...command.entrypoint, ...command.cmd])}` : `# command: run_eval --run_config ${RUN_CONFIG_IN_CONTAINER}`,
    ],
  };
}

/**
 * Whether the task's container runs upstream's harness command (`nemo-evaluator run_eval` through upstream's
 * `bash -c` script, with pre_cmd/post_cmd and NEMO_EVALUATOR_DATASET_DIR): every task with an image (catalogue
 * tasks, and built-in ones whose `container` names an image) under runtime docker. Built-in tasks without an
 * image run evalflow's harness image with its own `run_eval` entrypoint.
 */
export function runsUpstreamCommand(cfg: RunConfig, task: Pick<TaskPlan, 'container'>): boolean {
  return cfg.execution.type === 'local' && cfg.execution.runtime === 'docker' && task.container !== undefined;
}

/** `execution.mounts.<kind>`: absolute host path → container path (`:ro`/`:rw` allowed). */
function mountMap(execution: LocalExecution, kind: 'evaluation' | 'deployment'): Record<string, string> {
  return Object.fromEntries(
    Object.entries(execution.mounts?.[kind] ?? {}).map(([source, target]) => {
      const key = `execution.mounts.${kind}.${source}`;
      if (!/^\/\S*?(:ro|:rw)?$/.test(target)) throw new ConfigError(`${key}: expected an absolute container path (optionally with :ro), got ${JSON.stringify(target)}`, key);
      return [resolve(source), target];
    }),
  );
}

function describeServer(server: ServerSpec, runtime: 'process' | 'docker'): string[] {
  const env = Object.keys(server.env);
  const ready = `# server ready when ${server.healthUrl} answers 200 (execution.endpoint_readiness_timeout); stopped when the job ends`;
  if (server.type === 'llama_cpp') {
    const model = server.modelPath ?? '(SmolLM2-135M-Instruct Q4_1, fetched once into .tools/models)';
    const where =
      runtime === 'process'
        ? `# server: node ${distPath('model-server', 'main.js')} ${shellCommand(llamaCppArgs(server, server.modelPath ?? '<model>'))}`
        : `# server: container evalflow-<job id>-a0-server from ${server.image ?? '(the built-in model-server image)'}, host network, -v <model>:${MODEL_IN_CONTAINER}:ro, args ${shellCommand(llamaCppArgs(server, MODEL_IN_CONTAINER))}`;
    return [where, `# server model: ${model}${env.length ? `; env: ${env.join(' ')}` : ''}`, ready];
  }
  const volumes = server.mounts.map((m) => ` -v ${m.source}:${m.target}${m.readOnly ? ':ro' : ''}`).join('');
  return [
    `# server: container evalflow-<job id>-a0-server from ${server.image}, host network, entrypoint reset${server.type === 'generic' ? '' : ', --gpus all --shm-size 100g'}${volumes}${env.length ? `; env: ${env.join(' ')} (from a 0600 secrets file)` : ''}`,
    `# server command: ${shellCommand(server.argv)}`,
    ready,
  ];
}
