/**
 * From a validated launcher config to the workflow input: ids, run directory, and per task the harness
 * run config. Pure (ids and time are passed in), so it is unit-tested and shared by the CLI, the demo
 * and the client script.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { harnessRunConfig } from '../backends/container-job.js';
import { planExecution } from '../backends/plans.js';
import { walltimeSeconds } from '../backends/slurm/script.js';
import { evalflowVersion } from '../common/paths.js';
import type { TaskPlan } from '../config/plan.js';
import type { RunConfig } from '../config/schema.js';
import { ConfigError } from '../config/errors.js';
import { parseEnvRef, redactSecrets } from '../config/env.js';
import { writeYamlAtomic } from '../common/files.js';
import { EXPORT_DESTINATION_KINDS, type ExportDestination, type ExportDestinationKind } from '../core/exports.js';
import type { InvocationInput } from '../workflows/types.js';

export function newInvocationId(): string {
  return randomBytes(8).toString('hex');
}

/** `<YYYYmmdd_HHMMSS>-<inv>` in local time, as upstream names its run directories. */
export function runDirName(now: Date, invocationId: string): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}_${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return `${stamp}-${invocationId}`;
}

export function buildInvocationInput(
  cfg: RunConfig,
  plans: TaskPlan[],
  ids: { invocationId: string; now: Date },
): InvocationInput {
  const exec = cfg.execution;
  // Slurm jobs run in a remote dir under output_dir; their local side (fetched artifacts) is local_output_dir.
  const localOutputDir = exec.type === 'slurm' ? exec.local_output_dir : exec.output_dir;
  const runDir = join(localOutputDir, runDirName(ids.now, ids.invocationId));
  const exports = exportDestinations(cfg);
  const version = evalflowVersion();
  const jobs = plans.map((plan) => {
    const jobDir = join(runDir, plan.jobName);
    return { plan, jobDir, execution: planExecution(cfg, plan, jobDir) };
  });
  return {
    invocationId: ids.invocationId,
    runDir,
    model: jobs[0]?.plan.endpoint.modelId ?? cfg.target.api_endpoint.model_id ?? 'unknown',
    backend: jobs[0]?.execution.backend ?? cfg.execution.type,
    // Slurm queues every task at once, as upstream submits all its sbatch jobs together.
    mode: exec.type === 'slurm' ? 'parallel' : exec.mode,
    ...(exec.type === 'local' && exec.max_parallel_tasks ? { maxParallel: exec.max_parallel_tasks } : {}),
    tasks: jobs.map(({ plan, jobDir, execution }) => {
      const { outputDir, datasetDir } = execution.harnessPaths;
      const jobId = `${ids.invocationId}.${plan.index}`;
      const ownExtra = {
        // The built-in harness pauses through endpoint outages for as long as the endpoint may take to come up.
        // (Slurm's null means "the walltime": the harness's own default applies then.)
        ...(cfg.execution.endpoint_readiness_timeout != null ? { endpoint_outage_timeout: cfg.execution.endpoint_readiness_timeout } : {}),
        // One shared limit per endpoint for the invocation's built-in tasks (the worker serves it, keyed by invocation).
        ...(exec.type === 'local' && exec.endpoint_parallelism ? { endpoint_parallelism: exec.endpoint_parallelism, endpoint_limit_group: ids.invocationId } : {}),
      };
      const runConfig = harnessRunConfig({
        evaluatorConfig: execution.upstreamCommand ? plan.evaluatorConfig.merged : builtinExtra(plan, datasetDir, ownExtra),
        taskType: plan.task.name,
        outputDir,
        endpoint: plan.endpoint,
        metadata: {
          invocation_id: ids.invocationId,
          job_id: jobId,
          task: plan.task.fullName,
          versioning: { evalflow: version },
          // As upstream: the commands its container ran, for provenance.
          ...(execution.upstreamCommand ? { ...(plan.preCmd ? { pre_cmd: plan.preCmd } : {}), ...(plan.postCmd ? { post_cmd: plan.postCmd } : {}) } : {}),
        },
      });
      return {
        invocationId: ids.invocationId,
        taskIndex: plan.index,
        taskName: plan.task.fullName,
        jobName: plan.jobName,
        jobDir,
        builtinHarness: plan.task.builtin,
        executor: execution.executor,
        ...(execution.server ? { deployment: execution.server } : {}),
        endpoint: {
          url: plan.endpoint.url,
          modelId: plan.endpoint.modelId,
          type: plan.endpointType,
          apiKeyName: plan.endpoint.apiKeyName ?? null,
          readinessTimeoutS: readinessTimeoutS(cfg),
        },
        runConfig,
        // On Slurm the deployment is a step of the same job, whose steps share the job's environment.
        env: exec.type === 'slurm' && execution.server ? { ...plan.env, ...execution.server.env } : plan.env,
        limits: {
          maxAttempts: exec.max_attempts,
          heartbeatTimeoutS: exec.heartbeat_timeout,
          ...(exec.type === 'slurm' && exec.max_walltime ? { maxWalltimeS: walltimeSeconds(exec.max_walltime) } : {}),
        },
        exports,
      };
    }),
  };
}

/** The run directory, with the resolved config in it (secrets masked), as upstream saves it. */
export function writeLauncherConfig(runDir: string, cfg: RunConfig): void {
  mkdirSync(runDir, { recursive: true });
  writeYamlAtomic(join(runDir, 'launcher_config.yml'), redactSecrets(cfg));
}

/** Seconds to wait for the endpoint; Slurm's null means the job's walltime, as upstream. */
function readinessTimeoutS(cfg: RunConfig): number {
  const e = cfg.execution;
  if (e.type === 'local') return e.endpoint_readiness_timeout;
  return e.endpoint_readiness_timeout ?? walltimeSeconds(e.walltime);
}

/**
 * Evalflow's own keys for the built-in harness (`ownExtra`: the outage wait, the shared endpoint limit; a task's
 * own value wins), and its dataset dir in `params.extra.dataset_dir` (a host path for the process runtime). A harness started with upstream's container command gets NEMO_EVALUATOR_DATASET_DIR instead, and
 * its config stays as written.
 */
function builtinExtra(plan: TaskPlan, datasetDir: string | undefined, ownExtra: Record<string, unknown>): Record<string, unknown> {
  const merged = plan.evaluatorConfig.merged;
  if (!plan.task.builtin) return merged;
  // The task name is the built-in harness's config.type (a user's config.type is warned about as ignored).
  const config = { ...merged.config };
  delete config.type;
  const params = config.params ?? {};
  const extra = {
    ...ownExtra,
    ...(params.extra ?? {}),
    ...(datasetDir ? { dataset_dir: datasetDir } : {}),
  };
  return { ...merged, config: { ...config, params: { ...params, extra } } };
}

/** What `run` can start today; `--dry-run` shows every plan, runnable or not. */
export function assertRunnable(cfg: RunConfig, input: InvocationInput, env: Record<string, string | undefined> = process.env): void {
  for (const [i, dest] of (cfg.execution.auto_export?.destinations ?? []).entries()) {
    if (!isExportDestinationKind(dest)) {
      const key = `execution.auto_export.destinations[${i}]`;
      throw new ConfigError(`${key}: export destination '${dest}' is not supported (supported: ${EXPORT_DESTINATION_KINDS.join(', ')})`, key);
    }
  }
  // As upstream: commands from a config run in the harness container only when the user says they trust them.
  const runsCommands = input.tasks.some((task) => task.executor.command !== undefined);
  if (runsCommands && env[TRUST_PRE_CMD] !== '1') {
    const untrusted = cfg.evaluation.pre_cmd || cfg.evaluation.post_cmd ? 'evaluation' : undefined;
    const task = cfg.evaluation.tasks.findIndex((t) => t.pre_cmd || t.post_cmd);
    const at = untrusted ?? (task >= 0 ? `evaluation.tasks[${task}]` : undefined);
    if (at) {
      const section = at === 'evaluation' ? cfg.evaluation : cfg.evaluation.tasks[task];
      const key = `${at}.${section?.pre_cmd ? 'pre_cmd' : 'post_cmd'}`;
      throw new ConfigError(`${key}: runs a command from the config inside the harness container; set ${TRUST_PRE_CMD}=1 if you trust it (as upstream)`, key);
    }
  }
}

/** Upstream's opt-in for `pre_cmd`/`post_cmd` (read where `run` is called). */
export const TRUST_PRE_CMD = 'NEMO_EVALUATOR_TRUST_PRE_CMD';

function isExportDestinationKind(dest: string): dest is ExportDestinationKind {
  return (EXPORT_DESTINATION_KINDS as readonly string[]).includes(dest);
}

/**
 * Each auto-export destination with its `export.<dest>` settings (validated by its exporter when the
 * config was loaded) and the `export.env_vars` it reads; assertRunnable refuses destinations evalflow lacks.
 */
function exportDestinations(cfg: RunConfig): ExportDestination[] {
  const env = Object.fromEntries(Object.entries(cfg.export?.env_vars ?? {}).map(([name, value]) => [name, parseEnvRef(value, `export.env_vars.${name}`)]));
  return (cfg.execution.auto_export?.destinations ?? []).filter(isExportDestinationKind).map((kind) => ({ kind, settings: cfg.export?.[kind] ?? {}, env }));
}
