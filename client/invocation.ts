/**
 * From a validated launcher config to the workflow input: ids, run directory, and per task the harness
 * run config. Pure (ids and time are passed in), so it is unit-tested and shared by the CLI, the demo
 * and the client script.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { planExecution } from '../backends/plans.js';
import { walltimeSeconds } from '../backends/slurm/script.js';
import type { TaskPlan } from '../config/plan.js';
import type { RunConfig } from '../config/schema.js';
import { ConfigError } from '../config/errors.js';
import { parseEnvRef } from '../config/env.js';
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
  const endpoint = cfg.target.api_endpoint;
  const exports = exportDestinations(cfg);
  const jobs = plans.map((plan) => {
    const jobDir = join(runDir, plan.jobName);
    return { plan, jobDir, execution: planExecution(cfg, plan, jobDir) };
  });
  return {
    invocationId: ids.invocationId,
    runDir,
    model: endpoint.model_id,
    backend: jobs[0]?.execution.backend ?? cfg.execution.type,
    // Slurm queues every task at once, as upstream submits all its sbatch jobs together.
    mode: exec.type === 'slurm' ? 'parallel' : exec.mode,
    ...(exec.type === 'local' && exec.max_parallel_tasks ? { maxParallel: exec.max_parallel_tasks } : {}),
    tasks: jobs.map(({ plan, jobDir, execution }) => {
      const { params = {} } = plan.evaluatorConfig.config;
      const { outputDir, datasetDir } = execution.harnessPaths;
      const extra = {
        // The built-in harness pauses through endpoint outages for as long as the endpoint may take to come up.
        // (Slurm's null means "the walltime": the harness's own default applies then.)
        ...(plan.task.builtin && cfg.execution.endpoint_readiness_timeout != null
          ? { endpoint_outage_timeout: cfg.execution.endpoint_readiness_timeout }
          : {}),
        // One shared limit per endpoint for the invocation's built-in tasks (the worker serves it, keyed by invocation).
        ...(plan.task.builtin && exec.type === 'local' && exec.endpoint_parallelism
          ? { endpoint_parallelism: exec.endpoint_parallelism, endpoint_limit_group: ids.invocationId }
          : {}),
        ...(params.extra ?? {}),
        ...(datasetDir ? { dataset_dir: datasetDir } : {}),
      };
      const apiEndpoint = plan.evaluatorConfig.target.api_endpoint;
      // The task's nemo_evaluator_config wins over the target's own setting.
      const stream = apiEndpoint.stream ?? endpoint.stream;
      return {
        invocationId: ids.invocationId,
        taskIndex: plan.index,
        taskName: plan.task.fullName,
        jobName: plan.jobName,
        jobDir,
        builtinHarness: plan.task.builtin,
        executor: execution.executor,
        endpoint: {
          url: endpoint.url,
          modelId: endpoint.model_id,
          type: plan.endpointType,
          apiKeyName: endpoint.api_key_name ?? null,
          readinessTimeoutS: readinessTimeoutS(cfg),
        },
        runConfig: {
          config: { type: plan.task.name, output_dir: outputDir, params: { ...params, extra } },
          target: {
            api_endpoint: {
              url: endpoint.url,
              model_id: endpoint.model_id,
              type: plan.endpointType,
              ...(endpoint.api_key_name ? { api_key_name: endpoint.api_key_name } : {}),
              ...(stream != null ? { stream } : {}),
            },
          },
          metadata: { invocation_id: ids.invocationId, job_id: `${ids.invocationId}.${plan.index}`, task: plan.task.fullName },
        },
        env: plan.env,
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

/** Seconds to wait for the endpoint; Slurm's null means the job's walltime, as upstream. */
function readinessTimeoutS(cfg: RunConfig): number {
  const e = cfg.execution;
  if (e.type === 'local') return e.endpoint_readiness_timeout;
  return e.endpoint_readiness_timeout ?? walltimeSeconds(e.walltime);
}

/** What `run` can start today; `--dry-run` shows every plan, runnable or not. */
export function assertRunnable(cfg: RunConfig, input: InvocationInput): void {
  for (const [i, dest] of (cfg.execution.auto_export?.destinations ?? []).entries()) {
    if (!isExportDestinationKind(dest)) {
      const key = `execution.auto_export.destinations[${i}]`;
      throw new ConfigError(`${key}: export destination '${dest}' is not supported (supported: ${EXPORT_DESTINATION_KINDS.join(', ')})`, key);
    }
  }
  for (const task of input.tasks) {
    if (task.executor.kind === 'docker' && !task.builtinHarness) {
      const key = `evaluation.tasks[${task.taskIndex}].name`;
      throw new ConfigError(
        `${key}: task ${task.taskName} runs in upstream's harness container, which this version cannot start yet (it runs evalflow.* tasks in the built-in harness image); use --dry-run to see the plan`,
        key,
      );
    }
  }
}

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
