/**
 * The resolved launcher config (what `evalflow run` executes), strict at every level: an unknown key is an
 * error, never silently ignored. Keys follow upstream NeMo Evaluator's launcher; keys of our own are marked.
 * `config.params` and `target.api_endpoint` reuse the harness run-config schemas (one concept, one place).
 */
import { z } from 'zod';
import { parseDockerArgs } from '../backends/local/docker/args.js';
import { EXPORTER_NAMES, exporterFor } from '../exporters/registry.js';
import { ApiEndpointSchema, EndpointTypeSchema, ParamsSchema } from '../harness/run-config.js';
import { DeploymentSchema, ImageRefSchema, needsContainer } from './deployment.js';
import { EnvVarsSchema } from './env.js';
import { NightlyConfigSchema } from './nightly.js';
import { ConfigError } from './errors.js';
import { resolveTaskName } from './registry.js';
import { closeMatches } from './suggest.js';
import { formatKeyPath } from './tree.js';

/** Task names and paths end up on command lines: allow only what they need (DESIGN §3.8). */
export const TASK_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

const MountMapSchema = z.record(z.string().min(1), z.string().min(1));

export const EXPORT_DESTINATIONS = ['local', 'mlflow', 'wandb', 'gsheets'] as const;
const ExportDestinationNameSchema = z
  .string()
  .min(1)
  .refine((dest) => (EXPORT_DESTINATIONS as readonly string[]).includes(dest), {
    error: (issue) => `unknown export destination '${String(issue.input)}' (expected one of: ${EXPORT_DESTINATIONS.join(', ')})`,
  });

/** Keys every executor shares: ours (watch and relaunch budgets) and upstream's auto-export. */
const executionCommon = {
  /** Ours: seconds without a heartbeat from the watcher before another worker takes over. */
  heartbeat_timeout: z.number().min(10).default(60),
  /** Ours: launches per task, counting relaunches after a lost, killed or timed-out harness. */
  max_attempts: z.number().int().min(1).default(3),
  auto_export: z.object({ destinations: z.array(ExportDestinationNameSchema) }).strict().optional(),
};

const LocalExecutionSchema = z
  .object({
    type: z.literal('local'),
    output_dir: z.string().min(1),
    mode: z.enum(['sequential', 'parallel']).default('sequential'),
    /** Ours: `process` runs the built-in harness as a child process, without docker (upstream issue #786). */
    runtime: z.enum(['docker', 'process']).default('docker'),
    /** Seconds to wait for the endpoint to answer its health check. */
    endpoint_readiness_timeout: z.number().positive().default(600),
    extra_docker_args: z.string().default(''),
    /** Parallel mode: how many tasks run at once (all when unset). */
    max_parallel_tasks: z.number().int().min(1).nullish(),
    /**
     * Ours: requests at once to the endpoint from all built-in-harness tasks of the invocation on one worker (process
     * runtime: shared through the worker; docker runtime: each task's parallelism is capped to it). Unset: no limit
     * beyond each task's `parallelism`.
     */
    endpoint_parallelism: z.number().int().min(1).nullish(),
    mounts: z
      .object({
        deployment: MountMapSchema.optional(),
        evaluation: MountMapSchema.optional(),
        auxiliary: z.record(z.string(), MountMapSchema).optional(),
        mount_home: z.boolean().optional(),
      })
      .strict()
      .optional(),
    ...executionCommon,
  })
  .strict();

/** One line, no NUL: what an `#SBATCH` directive or a pyxis option can carry (values are escaped when written). */
const OneLine = z.string().min(1).regex(/^[^\n\r\0]*$/, 'must be a single line');
/** Slurm's `[D-]HH:MM:SS` (hours may exceed 24, as upstream's max_walltime 120:00:00). */
export const WALLTIME_RE = /^(?:\d+-)?\d+:[0-5]\d:[0-5]\d$/;
const Walltime = z.string().regex(WALLTIME_RE, "must be a duration like '01:30:00' or '2-00:00:00'");
/** Remote paths go into pyxis' comma-separated `--container-mounts`: absolute, one line, no commas. */
const RemotePath = z.string().regex(/^\/[^,\n\r\0]*$/, 'must be an absolute path without commas');
const RemoteMountMapSchema = z.record(RemotePath, z.string().regex(/^\/[^,\n\r\0]*$/, "must be an absolute container path (':ro' allowed), without commas"));
/** `#SBATCH` options evalflow sets itself: one job per attempt, its name, its log, never requeued by Slurm. */
export const SBATCH_RESERVED_FLAGS = ['job-name', 'output', 'error', 'requeue', 'no-requeue', 'time', 'parsable', 'wrap', 'chdir', 'array', 'dependency'];

/** `execution.type: slurm` (upstream's keys and defaults, plus ours marked as such). */
export const SlurmExecutionSchema = z
  .object({
    type: z.literal('slurm'),
    /** The login node evalflow reaches over SSH. */
    hostname: z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'must be a host name or address'),
    username: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'must be a user name'),
    /** Slurm account (`--account`); null omits the flag (clusters without accounting). */
    account: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'must be letters, digits, _ . -').nullable(),
    /** Ours: where the worker keeps each job's dir (artifacts fetched over SFTP, logs); relative to the config's cwd. */
    local_output_dir: z.string().min(1).default('evalflow-results'),
    /** Absolute path on the cluster, shared by the login and compute nodes: the remote run dirs. */
    output_dir: z.string().regex(/^\/[^\n\r\0%\\]*$/, "must be an absolute path on the cluster, without '%' or '\\' (Slurm reads those in --output)"),
    partition: OneLine.nullish(),
    /** Upstream runs auto-export as a CPU job here; evalflow exports from the worker (warned when set). */
    cpu_partition: OneLine.nullish(),
    num_nodes: z.number().int().min(1).default(1),
    /** Upstream: independent deployment instances behind HAProxy; evalflow supports 1. */
    num_instances: z.literal(1, 'only 1 is supported (several instances behind HAProxy are not supported yet)').default(1),
    ntasks_per_node: z.number().int().min(1).default(1),
    gres: OneLine.nullish(),
    gpus_per_node: z.number().int().min(0).nullish(),
    /** Time limit of one Slurm job (one attempt). */
    walltime: Walltime.default('01:00:00'),
    /** Total time across resubmissions after time limits and preemptions; null: unlimited. */
    max_walltime: Walltime.nullable().default('120:00:00'),
    /** Seconds the job waits for its co-scheduled deployment; null: the walltime. */
    endpoint_readiness_timeout: z.number().positive().nullish(),
    /** Part of the Slurm job name: `<account>-<subproject>.<job id>-a<attempt>`. */
    subproject: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'must be letters, digits, _ . -').default('evalflow'),
    sbatch_comment: OneLine.nullish(),
    /** Extra `#SBATCH --<flag>[=value]`: true sets a bare flag, false/null omits it. */
    sbatch_extra_flags: z
      .record(
        z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/, 'must be an sbatch option name').refine((k) => !SBATCH_RESERVED_FLAGS.includes(k), 'is set by evalflow itself'),
        z.union([z.string().regex(/^[^\n\r\0]*$/, 'must be a single line'), z.number(), z.boolean(), z.null()]),
      )
      .default({}),
    deployment: z.object({ n_tasks: z.number().int().min(1).optional() }).strict().optional(),
    mounts: z
      .object({
        deployment: RemoteMountMapSchema.optional(),
        evaluation: RemoteMountMapSchema.optional(),
        auxiliary: z.record(z.string(), RemoteMountMapSchema).optional(),
        mount_home: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    /** Ours: `pyxis` runs the harness (and deployment) image with `srun --container-image`; `none` runs them on the node. */
    runtime: z.enum(['pyxis', 'none']).default('pyxis'),
    /** Ours, runtime `none`: the command that starts evalflow's harness CLI on the node (each word quoted). */
    harness_command: z.array(OneLine).min(1).default(['evalflow', 'harness']),
    /** Ours, runtime `none` with the llama_cpp deployment: the command that starts evalflow's model server on the node. */
    model_server_command: z.array(OneLine).min(1).default(['evalflow', 'serve-model']),
    /** Ours: how evalflow connects. Host keys: known_hosts, or pinned here; unknown keys are refused unless trust_on_first_use. */
    ssh: z
      .object({
        port: z.number().int().min(1).max(65535).default(22),
        /** Private key file; else the agent at SSH_AUTH_SOCK. */
        key_file: z.string().min(1).nullish(),
        known_hosts_file: z.string().min(1).nullish(),
        /** Pinned host key(s), `ssh-ed25519 AAAA…`; when set, known_hosts is not consulted. */
        host_key: z.union([OneLine, z.array(OneLine).min(1)]).nullish(),
        trust_on_first_use: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    /** Ours: seconds between two looks at the job (squeue/sacct over the one SSH connection). */
    poll_interval: z.number().min(1).default(30),
    ...executionCommon,
  })
  .strict();

const ExecutionSchema = z.discriminatedUnion('type', [LocalExecutionSchema, SlurmExecutionSchema]);
export type LocalExecution = z.infer<typeof LocalExecutionSchema>;
export type SlurmExecution = z.infer<typeof SlurmExecutionSchema>;

/**
 * Upstream's launcher passes `nemo_evaluator_config` to the harness container as it is, and the core
 * validates only `config.params` strictly. We do the same for container tasks, but never silently:
 * keys outside the known ones are reported by planTasks (a warning for container tasks, an error for
 * the built-in harness, which would reject them).
 */
const NemoEvaluatorConfigSchema = z
  .object({
    config: z
      .object({ params: ParamsSchema.optional(), type: z.string().min(1).optional(), output_dir: z.string().startsWith('/', 'must be an absolute path').optional() })
      .catchall(z.unknown())
      .optional(),
    /** Upstream fills url, model_id, type and api_key_name from the launcher config only where these are absent. */
    target: z.object({ api_endpoint: ApiEndpointSchema.partial().strict().optional() }).catchall(z.unknown()).optional(),
    /** Provenance for metadata.yaml; the launcher's own keys are added where absent. */
    metadata: z.record(z.string(), z.unknown()).optional(),
  })
  .catchall(z.unknown());
export const KNOWN_EVALUATOR_CONFIG_KEYS = { root: ['config', 'target', 'metadata'], config: ['params', 'type', 'output_dir'], target: ['api_endpoint'] } as const;
export type NemoEvaluatorConfig = z.infer<typeof NemoEvaluatorConfigSchema>;

/** A well-formed task name must also name a task of the catalogue (checked here so it is reported with the rest). */
function taskNameProblem(name: string, ctx: z.RefinementCtx): void {
  if (!TASK_NAME_RE.test(name)) return; // reported by the pattern
  try {
    resolveTaskName(name);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    ctx.addIssue({ code: 'custom', message: err.message, input: name });
  }
}

const TaskSchema = z
  .object({
    /** `harness.task` or a bare task name (see config/registry.ts). */
    name: z.string().regex(TASK_NAME_RE, 'must be a task name like harness.task').superRefine(taskNameProblem),
    container: ImageRefSchema.optional(),
    endpoint_type: EndpointTypeSchema.optional(),
    env_vars: EnvVarsSchema.optional(),
    nemo_evaluator_config: NemoEvaluatorConfigSchema.optional(),
    dataset_dir: z.string().min(1).optional(),
    /** Where dataset_dir appears inside the container (upstream default /datasets). */
    dataset_mount_path: z.string().startsWith('/', 'must be an absolute path').optional(),
    pre_cmd: z.string().optional(),
    post_cmd: z.string().optional(),
  })
  .strict();
export type TaskConfig = z.infer<typeof TaskSchema>;

const EvaluationSchema = z
  .object({
    nemo_evaluator_config: NemoEvaluatorConfigSchema.optional(),
    env_vars: EnvVarsSchema.optional(),
    pre_cmd: z.string().optional(),
    post_cmd: z.string().optional(),
    tasks: z.array(TaskSchema).min(1, 'needs at least one task'),
  })
  .strict();

/** `export.<dest>`: each destination's settings, validated by its exporter (exporters/registry.ts). */
const ExporterSettingsSchema = z.record(z.string(), z.unknown());
const ExportSchema = z
  .object({
    local: ExporterSettingsSchema.optional(),
    mlflow: ExporterSettingsSchema.optional(),
    wandb: ExporterSettingsSchema.optional(),
    gsheets: ExporterSettingsSchema.optional(),
    /** Variables the exporters read where they run (e.g. `MLFLOW_TRACKING_TOKEN: host:MY_TOKEN`). */
    env_vars: EnvVarsSchema.optional(),
  })
  .strict();

export const RunConfigSchema = z
  .object({
    execution: ExecutionSchema,
    deployment: DeploymentSchema,
    env_vars: EnvVarsSchema.default({}),
    /** With a deployment, url and model_id come from it (deployment.ts); without, both are required. */
    target: z.object({ api_endpoint: ApiEndpointSchema.partial({ url: true, model_id: true }) }).strict(),
    /** Not supported yet: must stay empty. */
    auxiliary_deployments: z.object({}).strict().default({}),
    evaluation: EvaluationSchema,
    export: ExportSchema.optional(),
    /** Ours: how `evalflow schedule` judges each night (config/nightly.ts). */
    nightly: NightlyConfigSchema.optional(),
    /**
     * Ours: the `-t` selection, as positions in evaluation.tasks (absent: all tasks). Tasks stay in place so a
     * task's index, and so its job id `<inv>.<index>`, does not depend on the filter.
     */
    selected_tasks: z.array(z.number().int().min(0)).optional(),
  })
  .strict();
export type RunConfig = z.infer<typeof RunConfigSchema>;

/** Validates a resolved tree; throws one ConfigError listing every problem (first key path in `keyPath`). */
export function validateRunConfig(tree: unknown): RunConfig {
  const { cfg, problems } = checkRunConfig(tree);
  if (cfg === undefined || problems.length > 0) throw ConfigError.combine(problems);
  return cfg;
}

/**
 * Every problem of a resolved tree, one ConfigError each, and the config when there is none. Problems the
 * caller already reported (`isReported`, e.g. a `???` value) are left out.
 */
export function checkRunConfig(tree: unknown, isReported: (keyPath: string) => boolean = () => false): { cfg?: RunConfig; problems: ConfigError[] } {
  const result = RunConfigSchema.safeParse(tree, { reportInput: true });
  if (!result.success) {
    const problems = result.error.issues
      .flatMap(describeIssue)
      .filter((line) => !isReported(line.path))
      .map((line) => new ConfigError(line.text, line.path));
    return { problems };
  }
  return { cfg: result.data, problems: referenceProblems(result.data) };
}

/** Checks between keys, once each key is known to be well-formed. */
function referenceProblems(cfg: RunConfig): ConfigError[] {
  const problems = (cfg.selected_tasks ?? []).flatMap((index, i) =>
    index < cfg.evaluation.tasks.length ? [] : [new ConfigError(`selected_tasks[${i}]: no task at index ${index}`, `selected_tasks[${i}]`)],
  );
  const { deployment, execution } = cfg;
  if (deployment.type === 'none') {
    for (const key of ['url', 'model_id'] as const) {
      if (cfg.target.api_endpoint[key] === undefined) problems.push(new ConfigError(`target.api_endpoint.${key}: required without a deployment (deployment.type: none)`, `target.api_endpoint.${key}`));
    }
  } else {
    if (execution.type === 'slurm') {
      // The deployment is a step of each task's Slurm job: evalflow's llama_cpp server on the node, the others from their image.
      if (deployment.type === 'llama_cpp') {
        if (execution.runtime !== 'none') {
          problems.push(new ConfigError("execution.runtime: the llama_cpp deployment runs on the node with execution.runtime=none on Slurm (its server is evalflow's model server, started by execution.model_server_command)", 'execution.runtime'));
        }
        if (!deployment.model_path) {
          problems.push(new ConfigError("deployment.model_path: required on Slurm: the GGUF file's path on the cluster (the default model is fetched on the worker host only)", 'deployment.model_path'));
        }
      } else if (execution.runtime !== 'pyxis') {
        problems.push(new ConfigError(`execution.runtime: a ${deployment.type} deployment runs from its image: it needs execution.runtime=pyxis on Slurm`, 'execution.runtime'));
      }
    } else if (execution.mode === 'parallel') {
      // As upstream: one server per task on one port, so tasks with a deployment run one after the other.
      problems.push(new ConfigError(`execution.mode: 'parallel' is not supported with deployment type '${deployment.type}' (each task starts its own server on port ${deployment.port}); use 'sequential'`, 'execution.mode'));
    }
    if (execution.type === 'local' && execution.runtime === 'process' && needsContainer(deployment)) {
      problems.push(new ConfigError(`deployment.type: a '${deployment.type}' server runs in its container and needs execution.runtime=docker (runtime 'process' starts the llama_cpp server only)`, 'deployment.type'));
    }
  }
  try {
    // Docker flags that have no Docker API equivalent are refused here, before anything starts.
    if (cfg.execution.type === 'local') parseDockerArgs(cfg.execution.extra_docker_args);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(err);
  }
  // Each destination's settings, by its exporter's schema, reported like the rest of the config.
  for (const dest of EXPORTER_NAMES) {
    const settings = cfg.export?.[dest as keyof NonNullable<RunConfig['export']>];
    const parsed = settings === undefined ? undefined : exporterFor(dest).settingsSchema.safeParse(settings, { reportInput: true });
    for (const issue of parsed?.error?.issues ?? []) {
      for (const line of describeIssue({ ...issue, path: ['export', dest, ...issue.path] })) problems.push(new ConfigError(line.text, line.path));
    }
  }
  return problems;
}

type Issue = z.core.$ZodIssue;

function describeIssue(issue: Issue): { path: string; text: string }[] {
  const segments = issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
  const at = (path: (string | number)[], text: string) => ({ path: formatKeyPath(path), text: `${formatKeyPath(path) || '<root>'}: ${text}` });
  const got = describeInput(issue.input, segments);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => at([...segments, key], `unknown key${unknownKeyHint(segments, key)}`));
    case 'invalid_type': {
      const expected = issue.expected === 'number' || issue.expected === 'int' ? numberKind(segments) : issue.expected;
      return [at(segments, issue.input === undefined ? `required ${expected} is missing` : `expected ${expected}, got ${got}`)];
    }
    case 'too_small':
    case 'too_big': {
      if (issue.origin === 'string' && issue.code === 'too_small' && issue.minimum === 1) return [at(segments, 'must not be empty')];
      if (issue.origin !== 'number') return [at(segments, issue.message)];
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const op = issue.code === 'too_small' ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
      return [at(segments, `expected ${numberKind(segments)} ${op} ${String(bound)}, got ${got}`)];
    }
    case 'invalid_value':
      return [at(segments, `expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}, got ${got}`)];
    case 'invalid_format': {
      const text = issue.format === 'url' ? 'expected an http(s) URL' : issue.message;
      return [at(segments, `${text}, got ${got}`)];
    }
    case 'invalid_key':
      return [at(segments, `invalid key: ${issue.issues.map((i) => i.message).join('; ')}`)];
    default:
      return [at(segments, issue.message)];
  }
}

/** Values under env_vars or key-like names may be secrets: show their type only. */
function describeInput(input: unknown, path: readonly (string | number)[]): string {
  const sensitive = path.some((p) => typeof p === 'string' && (p === 'env_vars' || /key|token|secret|password/i.test(p)));
  if (input === undefined) return 'nothing';
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  if (sensitive && typeof input === 'string') return 'a string';
  const text = JSON.stringify(input);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** A typo, or a key one level too high or too low (`config.extra` for `config.params.extra`), is named. */
function unknownKeyHint(path: readonly (string | number)[], key: string): string {
  const allowed = allowedKeys(path);
  const near = closeMatches(key, allowed, 1)[0];
  if (near) return `; did you mean '${near}'?`;
  const deeper = allowed.find((k) => allowedKeys([...path, k]).includes(key));
  if (deeper) return `; did you mean '${formatKeyPath([...path, deeper, key])}'?`;
  const parent = path.slice(0, -1);
  if (path.length > 0 && allowedKeys(parent).includes(key)) return `; did you mean '${formatKeyPath([...parent, key])}'?`;
  return allowed.length ? ` (expected one of: ${allowed.join(', ')})` : '';
}

/** 'integer' or 'number', as the schema at `path` declares. */
function numberKind(path: readonly (string | number)[]): string {
  const node = schemaAt(path) as { isInt?: boolean } | undefined;
  return node?.isInt ? 'integer' : 'number';
}

/** Keys an object accepts at a path of the schema (for "unknown key" hints; a union: any member's keys). */
function allowedKeys(path: readonly (string | number)[]): string[] {
  const def = schemaAt(path)?._zod.def as { type: string; shape?: Record<string, unknown>; options?: z.core.$ZodType[] } | undefined;
  if (def?.type === 'union') return [...new Set((def.options ?? []).flatMap((o) => Object.keys((o._zod.def as { shape?: object }).shape ?? {})))];
  return def?.type === 'object' ? Object.keys(def.shape ?? {}) : [];
}

/** The (unwrapped) schema node describing the value at `path`, if the walk can tell. */
function schemaAt(path: readonly (string | number)[]): z.core.$ZodType | undefined {
  let node: z.core.$ZodType | undefined = unwrap(RunConfigSchema);
  for (const seg of path) {
    const def = node?._zod.def as
      | { type: string; shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType; valueType?: z.core.$ZodType; options?: z.core.$ZodType[] }
      | undefined;
    if (def?.type === 'object') node = def.shape?.[String(seg)];
    else if (def?.type === 'union') node = (def.options ?? []).map((o) => (o._zod.def as { shape?: Record<string, z.core.$ZodType> }).shape?.[String(seg)]).find(Boolean);
    else if (def?.type === 'array') node = def.element;
    else if (def?.type === 'record') node = def.valueType;
    else return undefined;
    node = unwrap(node);
  }
  return node;
}

function unwrap(node: z.core.$ZodType | undefined): z.core.$ZodType | undefined {
  let current = node;
  for (;;) {
    const def = current?._zod.def as { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType } | undefined;
    if (def?.innerType) current = def.innerType;
    else if (def?.type === 'pipe') current = def.in;
    else return current;
  }
}
