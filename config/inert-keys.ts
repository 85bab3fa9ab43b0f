/**
 * Keys the schema accepts (upstream's, so that upstream configs load) that have no effect in a given run.
 * Each one set gets a warning naming it, printed by `run`, `--dry-run` and the client script: every
 * accepted key has an effect or a warning. Keys that act under some runtimes only are listed in ACTS_UNDER;
 * an executor that implements one adds its runtime there, and the warning disappears where the key acts.
 */
import { parseDockerArgs } from '../backends/local/docker/args.js';
import { runsUpstreamCommand } from '../backends/local/plan.js';
import type { TaskPlan } from './plan.js';
import type { NemoEvaluatorConfig, RunConfig, TaskConfig } from './schema.js';
import { child } from './tree.js';
import { planInterceptors } from '../harness/interceptors.js';

/** Where a run's harness runs: `execution.type` and its runtime (the plans' backend label). */
export type Runtime = 'local/process' | 'local/docker' | 'slurm/pyxis' | 'slurm/none';

/** The runtimes that act on each runtime-dependent key (an empty list: none yet). */
export const ACTS_UNDER = {
  'execution.extra_docker_args': ['local/docker'],
  'execution.mounts.evaluation': ['local/docker', 'slurm/pyxis'],
  'execution.mounts.mount_home': ['slurm/pyxis'],
  /** Where a task's dataset_dir appears inside its container. */
  dataset_mount_path: ['local/docker', 'slurm/pyxis'],
  /**
   * Shell commands run with the harness before / after the evaluation (upstream: needs NEMO_EVALUATOR_TRUST_PRE_CMD=1),
   * by upstream's container command: for the tasks that run it (backends/local/plan.ts runsUpstreamCommand).
   */
  pre_cmd: ['local/docker'],
  post_cmd: ['local/docker'],
} as const satisfies Record<string, readonly Runtime[]>;
type RuntimeKey = keyof typeof ACTS_UNDER;

/** `export.*` settings a run ignores, and why (auto-export reads export.local's file settings only). */
const EXPORT_SETTINGS_IGNORED: Record<string, string> = {
  wandb: 'W&B export is not supported',
  gsheets: 'Google Sheets export is not supported',
};
/** `export.<dest>` settings act when the run auto-exports there (`evalflow export` takes `-o export.<dest>.<key>=…`). */
const AUTO_EXPORT_SETTINGS = ['local', 'mlflow'] as const;

export function runtimeOf(cfg: RunConfig): Runtime {
  switch (cfg.execution.type) {
    case 'local':
      return `local/${cfg.execution.runtime}`;
    case 'slurm':
      return `slurm/${cfg.execution.runtime}`;
  }
}

/** Every warning of a planned run: the tasks' own (unknown nemo_evaluator_config keys), then inert keys. */
export function runWarnings(cfg: RunConfig, plans: readonly TaskPlan[]): string[] {
  return [...new Set([...plans.flatMap((p) => p.warnings), ...inertKeyWarnings(cfg, plans)])];
}

export function inertKeyWarnings(cfg: RunConfig, plans: readonly TaskPlan[]): string[] {
  const runtime = runtimeOf(cfg);
  const [type, runtimeName] = runtime.split('/');
  const warnings: string[] = [];
  const runtimeKey = (key: RuntimeKey, path: string, value: unknown) => {
    const actsUnder: readonly Runtime[] = ACTS_UNDER[key];
    if (!isSet(value) || actsUnder.includes(runtime)) return;
    const setting = type === 'local' ? `execution.runtime=${runtimeName}` : `execution.type=${type}, execution.runtime=${runtimeName}`;
    warnings.push(actsUnder.length ? `${path}: ignored with ${setting} (it acts with: ${actsUnder.join(', ')})` : `${path}: ignored: not supported yet`);
  };
  const { execution, evaluation } = cfg;
  const noDeployment = cfg.deployment.type === 'none';

  runtimeKey('execution.mounts.evaluation', 'execution.mounts.evaluation', execution.mounts?.evaluation);
  // Slurm's default (true) is not a choice the user made.
  runtimeKey('execution.mounts.mount_home', 'execution.mounts.mount_home', execution.type === 'slurm' && execution.mounts.mount_home ? undefined : execution.mounts?.mount_home);
  for (const key of ['deployment', 'auxiliary'] as const) {
    if (noDeployment && isSet(execution.mounts?.[key])) warnings.push(`execution.mounts.${key}: ignored: the config has no deployment`);
  }
  if (execution.type === 'local') {
    runtimeKey('execution.extra_docker_args', 'execution.extra_docker_args', execution.extra_docker_args);
    // Flags docker accepts but evalflow's containers already imply (--rm, --init, -p, --network host).
    if (execution.runtime === 'docker') warnings.push(...parseDockerArgs(execution.extra_docker_args).warnings);
    if (execution.mode === 'sequential' && isSet(execution.max_parallel_tasks)) {
      warnings.push('execution.max_parallel_tasks: ignored with execution.mode=sequential (tasks run one at a time)');
    }
    if (isSet(execution.endpoint_parallelism) && !plans.some((p) => p.task.builtin)) {
      warnings.push('execution.endpoint_parallelism: ignored: it limits built-in tasks only (container harnesses have their own parallelism)');
    }
  } else {
    if (isSet(execution.cpu_partition)) warnings.push('execution.cpu_partition: ignored: evalflow exports from the worker, not as a CPU Slurm job');
    if (noDeployment && isSet(execution.deployment?.n_tasks)) warnings.push('execution.deployment.n_tasks: ignored: the config has no deployment');
    if (execution.runtime === 'pyxis' && execution.harness_command.join(' ') !== 'evalflow harness') {
      warnings.push('execution.harness_command: ignored with execution.runtime=pyxis (the task image runs its own harness)');
    }
    const startsModelServer = execution.runtime === 'none' && cfg.deployment.type === 'llama_cpp';
    if (!startsModelServer && execution.model_server_command.join(' ') !== 'evalflow serve-model') {
      warnings.push('execution.model_server_command: ignored: it starts the llama_cpp deployment under execution.runtime=none only');
    }
  }
  if (isSet(cfg.target.api_endpoint.adapter_config)) {
    warnings.push('target.api_endpoint.adapter_config: ignored: interceptors are set per task in nemo_evaluator_config.target.api_endpoint.adapter_config');
  }

  // Under runtime docker, only the tasks that run upstream's container command run pre_cmd/post_cmd.
  const upstreamCommand = plans.filter((p) => runsUpstreamCommand(cfg, p));
  const commandKey = (key: 'pre_cmd' | 'post_cmd', path: string, value: unknown, runsIt: boolean) => {
    if (runtime === 'local/docker' && !runsIt && isSet(value)) {
      warnings.push(`${path}: ignored: it runs in task containers with upstream's command only (tasks with an image), and ${path.startsWith('evaluation.tasks') ? 'this task runs' : 'every task here runs'} evalflow's built-in harness image`);
    } else runtimeKey(key, path, value);
  };
  commandKey('pre_cmd', 'evaluation.pre_cmd', evaluation.pre_cmd, upstreamCommand.length > 0);
  commandKey('post_cmd', 'evaluation.post_cmd', evaluation.post_cmd, upstreamCommand.length > 0);
  // Tasks whose run config evalflow writes for its own harness (config.type = the task; no interceptors).
  const ownHarness = (p: TaskPlan) => p.task.builtin && !runsUpstreamCommand(cfg, p);
  warnings.push(...evaluatorConfigWarnings('evaluation.nemo_evaluator_config', evaluation.nemo_evaluator_config, plans.some(ownHarness)));
  for (const plan of plans) {
    const spec: TaskConfig | undefined = evaluation.tasks[plan.index];
    const at = `evaluation.tasks[${plan.index}]`;
    commandKey('pre_cmd', `${at}.pre_cmd`, spec?.pre_cmd, upstreamCommand.includes(plan));
    commandKey('post_cmd', `${at}.post_cmd`, spec?.post_cmd, upstreamCommand.includes(plan));
    runtimeKey('dataset_mount_path', `${at}.dataset_mount_path`, spec?.dataset_mount_path);
    warnings.push(...evaluatorConfigWarnings(`${at}.nemo_evaluator_config`, spec?.nemo_evaluator_config, ownHarness(plan)));
  }
  warnings.push(...deploymentWarnings(cfg));

  for (const [option, why] of Object.entries(EXPORT_SETTINGS_IGNORED)) {
    if (isSet(valueAt(cfg.export, option))) warnings.push(`export.${option}: ignored: ${why}`);
  }
  const destinations: readonly string[] = execution.auto_export?.destinations ?? [];
  for (const dest of AUTO_EXPORT_SETTINGS) {
    if (isSet(cfg.export?.[dest]) && !destinations.includes(dest)) {
      warnings.push(`export.${dest}: ignored unless execution.auto_export.destinations includes ${dest} (\`evalflow export\` takes -o export.${dest}.<key>=…)`);
    }
  }
  if (isSet(cfg.export?.env_vars) && destinations.length === 0) warnings.push('export.env_vars: ignored: nothing is auto-exported (execution.auto_export.destinations is empty)');
  return warnings;
}

/**
 * Keys of a nemo_evaluator_config section that evalflow's own harness ignores (its run config is written by
 * evalflow). A task container gets the whole section, so every key there acts (or is the harness's to refuse).
 */
function evaluatorConfigWarnings(at: string, section: NemoEvaluatorConfig | undefined, forOwnHarness: boolean): string[] {
  if (!forOwnHarness) return [];
  const warnings: string[] = [];
  if (isSet(section?.config?.type)) warnings.push(`${at}.config.type: ignored by evalflow's built-in tasks: the task name sets it`);
  if (isSet(section?.config?.params?.task)) {
    warnings.push(`${at}.config.params.task: ignored by evalflow's built-in tasks (they have no variants by that name)`);
  }
  // The built-in harness runs the interceptors (harness/interceptors.ts): only the keys without effect there warn.
  const adapterConfig = section?.target?.api_endpoint?.adapter_config;
  if (isSet(adapterConfig)) {
    try {
      warnings.push(...planInterceptors(adapterConfig, `${at}.target.api_endpoint.adapter_config`).ignored);
    } catch {
      // invalid: planning the task already reported it as an error
    }
  }
  return warnings;
}

/** Deployment keys that are accepted but do nothing in this config. */
function deploymentWarnings(cfg: RunConfig): string[] {
  const { deployment, execution } = cfg;
  const warnings: string[] = [];
  if (deployment.type === 'generic' && deployment.extra_args.trim() && !deployment.command.includes(deployment.extra_args.trim())) {
    warnings.push('deployment.extra_args: ignored: a generic server\'s command uses it only where it says ${deployment.extra_args}, and this one does not');
  }
  if (deployment.type === 'llama_cpp') {
    // evalflow's model server takes its model, port and parallelism as arguments: nothing else reaches it.
    if (isSet(deployment.env_vars)) warnings.push('deployment.env_vars: ignored: evalflow\'s llama_cpp model server reads no environment variables');
    if (isSet(execution.mounts?.deployment)) warnings.push('execution.mounts.deployment: ignored: the llama_cpp server mounts only its model (deployment.model_path)');
  }
  return warnings;
}

/** The value at a dotted path under `node`, if any. */
function valueAt(node: unknown, dotted: string): unknown {
  return dotted.split('.').reduce<unknown>((cur, key) => child(cur, key).value, node);
}

/** Set to something: defaults (empty string, empty mapping, null) are not worth a warning. */
function isSet(value: unknown): boolean {
  if (value === undefined || value === null || value === '') return false;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}
