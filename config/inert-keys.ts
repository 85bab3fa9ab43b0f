/**
 * Keys the schema accepts (upstream's, so that upstream configs load) that have no effect in a given run.
 * Each one set gets a warning naming it, printed by `run` and `--dry-run`: every accepted key has an
 * effect or a warning. Keys that act under some executors only are listed in ACTS_UNDER; an executor that
 * implements one adds its kind there, and the warning disappears where the key acts.
 */
import { parseDockerArgs } from '../backends/local/docker/args.js';
import type { ExecutorKind } from '../core/executor.js';
import type { TaskPlan } from './plan.js';
import type { NemoEvaluatorConfig, RunConfig, TaskConfig } from './schema.js';
import { child } from './tree.js';

/** Executor kinds that act on each runtime-dependent key (an empty list: no executor yet). */
export const ACTS_UNDER = {
  'execution.extra_docker_args': ['docker'],
  'execution.mounts.evaluation': ['docker'],
  /** Upstream mounts these into deployment and auxiliary containers; evalflow has no deployments yet. */
  'execution.mounts.deployment': [],
  'execution.mounts.auxiliary': [],
  /** Upstream's Slurm key (pyxis `--no-container-mount-home`). */
  'execution.mounts.mount_home': [],
  /** Shell commands run in the harness container before / after the evaluation (upstream: needs NEMO_EVALUATOR_TRUST_PRE_CMD=1). */
  pre_cmd: [],
  post_cmd: [],
  /** Where a task's dataset_dir appears inside its container. */
  dataset_mount_path: ['docker'],
} as const satisfies Record<string, readonly ExecutorKind[]>;
type RuntimeKey = keyof typeof ACTS_UNDER;

/** `export.*` options this version does not implement (exporters other than local, and these local ones). */
const EXPORT_OPTIONS_NOT_SUPPORTED = ['local.copy_logs', 'local.copy_artifacts', 'local.only_required', 'local.log_metrics', 'mlflow', 'wandb', 'gsheets', 'env_vars'];
/** `export.local` options that act only when the run exports to local itself. */
const EXPORT_LOCAL_AUTO_OPTIONS = ['local.output_dir', 'local.format', 'local.output_filename'];

/** The executor a run's jobs use: for local execution, its runtime. */
export function executorKind(cfg: RunConfig): ExecutorKind {
  switch (cfg.execution.type) {
    case 'local':
      return cfg.execution.runtime;
  }
}

/** Every warning of a planned run: the tasks' own (unknown nemo_evaluator_config keys), then inert keys. */
export function runWarnings(cfg: RunConfig, plans: readonly TaskPlan[]): string[] {
  return [...new Set([...plans.flatMap((p) => p.warnings), ...inertKeyWarnings(cfg, plans)])];
}

export function inertKeyWarnings(cfg: RunConfig, plans: readonly TaskPlan[]): string[] {
  const kind = executorKind(cfg);
  const warnings: string[] = [];
  const runtimeKey = (key: RuntimeKey, path: string, value: unknown) => {
    if (isSet(value) && !(ACTS_UNDER[key] as readonly string[]).includes(kind)) {
      warnings.push(`${path}: has no effect with execution.runtime=${kind} (not supported there yet); it is ignored`);
    }
  };
  const { execution, evaluation } = cfg;

  runtimeKey('execution.extra_docker_args', 'execution.extra_docker_args', execution.extra_docker_args);
  // Flags docker accepts but evalflow's containers already imply (--rm, --init, -p, --network host).
  if (kind === 'docker') warnings.push(...parseDockerArgs(execution.extra_docker_args).warnings.map((w) => `${w}; it is ignored`));
  for (const mount of ['evaluation', 'deployment', 'auxiliary', 'mount_home'] as const) {
    runtimeKey(`execution.mounts.${mount}`, `execution.mounts.${mount}`, execution.mounts?.[mount]);
  }
  if (execution.mode === 'sequential' && isSet(execution.max_parallel_tasks)) {
    warnings.push('execution.max_parallel_tasks: has no effect with execution.mode=sequential (tasks run one at a time); it is ignored');
  }
  if (isSet(cfg.target.api_endpoint.adapter_config)) {
    warnings.push('target.api_endpoint.adapter_config: has no effect: interceptors are set per task in nemo_evaluator_config.target.api_endpoint.adapter_config; it is ignored');
  }

  runtimeKey('pre_cmd', 'evaluation.pre_cmd', evaluation.pre_cmd);
  runtimeKey('post_cmd', 'evaluation.post_cmd', evaluation.post_cmd);
  const builtin = plans.filter((p) => p.task.builtin);
  warnings.push(...evaluatorConfigWarnings('evaluation.nemo_evaluator_config', evaluation.nemo_evaluator_config, builtin.length > 0, plans.length > builtin.length));
  for (const plan of plans) {
    const spec: TaskConfig | undefined = evaluation.tasks[plan.index];
    const at = `evaluation.tasks[${plan.index}]`;
    runtimeKey('pre_cmd', `${at}.pre_cmd`, spec?.pre_cmd);
    runtimeKey('post_cmd', `${at}.post_cmd`, spec?.post_cmd);
    runtimeKey('dataset_mount_path', `${at}.dataset_mount_path`, spec?.dataset_mount_path);
    warnings.push(...evaluatorConfigWarnings(`${at}.nemo_evaluator_config`, spec?.nemo_evaluator_config, plan.task.builtin, !plan.task.builtin));
  }

  for (const option of EXPORT_OPTIONS_NOT_SUPPORTED) {
    if (isSet(valueAt(cfg.export, option))) warnings.push(`export.${option}: not supported yet (evalflow exports to local json/csv only); it is ignored`);
  }
  if (!(execution.auto_export?.destinations ?? []).includes('local')) {
    for (const option of EXPORT_LOCAL_AUTO_OPTIONS) {
      if (isSet(valueAt(cfg.export, option))) {
        warnings.push(`export.${option}: has no effect unless execution.auto_export.destinations includes local (\`evalflow export\` takes its own flags); it is ignored`);
      }
    }
  }
  return warnings;
}

/** Keys of a nemo_evaluator_config section that its tasks ignore: built-in tasks, container tasks or both. */
function evaluatorConfigWarnings(at: string, section: NemoEvaluatorConfig | undefined, forBuiltin: boolean, forContainer: boolean): string[] {
  const warnings: string[] = [];
  if (isSet(section?.config?.type)) warnings.push(`${at}.config.type: has no effect: the task name sets it, as upstream's launcher does; it is ignored`);
  if (forBuiltin && isSet(section?.config?.params?.task)) {
    warnings.push(`${at}.config.params.task: has no effect on evalflow's built-in tasks (they have no variants by that name); it is ignored`);
  }
  if (isSet(section?.target?.api_endpoint?.adapter_config)) {
    const who = [forBuiltin ? 'the built-in harness has no interceptors' : '', forContainer ? 'upstream containers do not get it from this version yet' : ''].filter(Boolean).join('; ');
    warnings.push(`${at}.target.api_endpoint.adapter_config: has no effect (${who}); it is ignored`);
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
