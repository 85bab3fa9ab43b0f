/**
 * From a loaded config to the list of jobs to run: each selected task resolved in the catalogue, with its
 * endpoint type, merged evaluator config and env. Everything that can be checked before starting is.
 */
import type { TaskEndpoint } from '../backends/container-job.js';
import { ENDPOINT_TYPES } from '../harness/run-config.js';
import { AdapterConfigError, planInterceptors } from '../harness/interceptors.js';
import { deploymentEndpointUrl } from './deployment.js';
import { resolveTaskEnv, type EnvRef } from './env.js';
import { ConfigError, ConfigProblems } from './errors.js';
import { taskEvaluatorConfig, type TaskEvaluatorConfig } from './load.js';
import { resolveTaskName, type CatalogueTask } from './registry.js';
import type { RunConfig } from './schema.js';

type EndpointType = (typeof ENDPOINT_TYPES)[number];

export const DEFAULT_DATASET_MOUNT_PATH = '/datasets';

export interface TaskPlan {
  /** Position in evaluation.tasks (unchanged by `-t`): the job id is `<invocation>.<index>`. */
  index: number;
  /** `<bare task>.<index>`, e.g. `gsm8k.0`: the job's directory name. */
  jobName: string;
  task: CatalogueTask;
  endpointType: EndpointType;
  /** The endpoint as the harness gets it: `nemo_evaluator_config.target.api_endpoint` where set, else the deployment's or the target's. */
  endpoint: TaskEndpoint;
  evaluatorConfig: TaskEvaluatorConfig;
  /** Upstream's `pre_cmd`/`post_cmd`: the task's, else evaluation's (harness containers only). */
  preCmd?: string;
  postCmd?: string;
  env: Record<string, EnvRef>;
  datasetDir?: string;
  /** Where datasetDir is mounted in the container (with datasetDir only). */
  datasetMountPath?: string;
  /** Image for the task: the task's `container`, else its harness's (none for built-in tasks). */
  container?: string;
  /** Things worth a look that do not stop the run (printed by `run` and `--dry-run`). */
  warnings: string[];
}

/** Plans every selected task; the problems of all tasks are reported together. */
export function planTasks(cfg: RunConfig): TaskPlan[] {
  const indices = cfg.selected_tasks ?? cfg.evaluation.tasks.map((_, i) => i);
  const problems = new ConfigProblems();
  const plans = indices.flatMap((index) => problems.check(() => [planTask(cfg, index)]) ?? []);
  problems.throwIfAny();
  return plans;
}

function planTask(cfg: RunConfig, index: number): TaskPlan {
  const spec = cfg.evaluation.tasks[index];
  if (!spec) throw new ConfigError(`evaluation.tasks[${index}]: no such task`, `evaluation.tasks[${index}]`);
  const at = `evaluation.tasks[${index}]`;
  let task: CatalogueTask;
  try {
    task = resolveTaskName(spec.name);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${at}.name: ${err.message}`, `${at}.name`);
    throw err;
  }
  const problems = new ConfigProblems();
  const container = spec.container ?? task.container;
  if (cfg.execution.runtime === 'process' && container !== undefined) {
    const key = spec.container === undefined ? `${at}.name` : `${at}.container`;
    problems.add(new ConfigError(`${key}: task ${task.fullName} runs in container ${container} and needs execution.runtime=docker (runtime 'process' runs evalflow's built-in tasks only)`, key));
  }
  const evaluatorConfig = taskEvaluatorConfig(cfg, index);
  const warnings: string[] = [];
  for (const key of evaluatorConfig.unknownKeys) {
    // Name the section the key was written in: the task's own, or the global one it inherits.
    const inTask = hasPath(spec.nemo_evaluator_config, key.split('.'));
    const where = `${inTask ? at : 'evaluation'}.nemo_evaluator_config.${key}`;
    if (task.builtin) {
      problems.add(new ConfigError(`${where}: unknown key (the built-in harness takes config.params and config.type; task knobs go in config.params.extra)`, where));
    } else {
      warnings.push(`${where}: not a nemo-evaluator key; passed to the ${task.harness} container of ${at} unchanged (did you mean config.params.extra?)`);
    }
  }
  const adapterConfig = evaluatorConfig.merged.target?.api_endpoint?.adapter_config;
  if (task.builtin && adapterConfig) {
    // The built-in harness runs these interceptors: a bad one is a config error now, not a failed job later.
    const inTask = hasPath(spec.nemo_evaluator_config, ['target', 'api_endpoint', 'adapter_config']);
    const where = `${inTask ? at : 'evaluation'}.nemo_evaluator_config.target.api_endpoint.adapter_config`;
    try {
      planInterceptors(adapterConfig, where);
    } catch (err) {
      if (!(err instanceof AdapterConfigError)) throw err;
      const key = err.message.slice(0, err.message.indexOf(':')).split(' ')[0] ?? where;
      problems.add(new ConfigError(err.message, key));
    }
  }
  const outputDir = evaluatorConfig.merged.config?.output_dir;
  if (outputDir !== undefined) {
    const where = `${hasPath(spec.nemo_evaluator_config, ['config', 'output_dir']) ? at : 'evaluation'}.nemo_evaluator_config.config.output_dir`;
    if (task.builtin) problems.add(new ConfigError(`${where}: the built-in harness writes to the job's artifacts dir; remove this key`, where));
    else if (outputDir !== '/results') warnings.push(`${where}: ${outputDir} is not /results (the job's artifacts dir): evalflow will not find results.yml there`);
  }
  const preCmd = spec.pre_cmd || cfg.evaluation.pre_cmd || undefined;
  const postCmd = spec.post_cmd || cfg.evaluation.post_cmd || undefined;
  const type = problems.check(() => endpointType(cfg, index, task));
  if (type === undefined || problems.any) throw problems.toError();
  return {
    index,
    jobName: `${task.name}.${index}`,
    task,
    endpointType: type,
    endpoint: taskEndpoint(cfg, evaluatorConfig, type),
    evaluatorConfig,
    ...(preCmd ? { preCmd } : {}),
    ...(postCmd ? { postCmd } : {}),
    warnings,
    env: resolveTaskEnv(cfg, index),
    ...(spec.dataset_dir === undefined ? {} : { datasetDir: spec.dataset_dir, datasetMountPath: spec.dataset_mount_path ?? DEFAULT_DATASET_MOUNT_PATH }),
    ...(container === undefined ? {} : { container }),
  };
}

/**
 * Upstream's derivation: with a deployment the URL is `http://127.0.0.1:<port><endpoints[type]>` (unless the
 * target names a URL) and the model is `served_model_name`; keys in `nemo_evaluator_config.target.api_endpoint`
 * win over both.
 */
function taskEndpoint(cfg: RunConfig, evaluatorConfig: TaskEvaluatorConfig, type: EndpointType): TaskEndpoint {
  const target = cfg.target.api_endpoint;
  const { deployment } = cfg;
  const own = evaluatorConfig.merged.target?.api_endpoint ?? {};
  const url = target.url ?? (deployment.type === 'none' ? undefined : deploymentEndpointUrl(deployment, type));
  const modelId = deployment.type === 'none' ? target.model_id : deployment.served_model_name;
  const apiKeyName = own.api_key_name ?? target.api_key_name ?? undefined;
  return {
    // The schema requires both without a deployment.
    url: own.url ?? (url as string),
    modelId: own.model_id ?? (modelId as string),
    type: own.type ?? type,
    ...(apiKeyName ? { apiKeyName } : {}),
    ...(target.stream != null ? { stream: target.stream } : {}),
  };
}

function hasPath(node: unknown, path: string[]): boolean {
  let cur = node;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object' || !(key in cur)) return false;
    cur = (cur as Record<string, unknown>)[key];
  }
  return true;
}

/** The task's `endpoint_type`, else the target's `type`, else the first type the task supports. */
function endpointType(cfg: RunConfig, index: number, task: CatalogueTask): EndpointType {
  const spec = cfg.evaluation.tasks[index];
  const chosen = spec?.endpoint_type ?? cfg.target.api_endpoint.type;
  const supported = task.supportedEndpointTypes.join(', ') || 'none';
  if (chosen === undefined) {
    const first = task.supportedEndpointTypes.find((t): t is EndpointType => (ENDPOINT_TYPES as readonly string[]).includes(t));
    if (first) return first;
    const key = `evaluation.tasks[${index}].name`;
    throw new ConfigError(`${key}: task ${task.fullName} needs an endpoint type evalflow does not support (supported by the task: ${supported}; by evalflow: ${ENDPOINT_TYPES.join(', ')})`, key);
  }
  if (!task.supportedEndpointTypes.includes(chosen)) {
    const key = spec?.endpoint_type === undefined ? 'target.api_endpoint.type' : `evaluation.tasks[${index}].endpoint_type`;
    throw new ConfigError(`${key}: task ${task.fullName} does not support endpoint type '${chosen}' (supported: ${supported})`, key);
  }
  return chosen;
}
