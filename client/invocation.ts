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
import type { ExportDestination, InvocationInput } from '../workflows/types.js';

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
    if (dest !== 'local') {
      throw new ConfigError(`execution.auto_export.destinations[${i}]: export destination '${dest}' is not supported yet (supported: local)`, `execution.auto_export.destinations[${i}]`);
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

/** The destinations this version exports to (assertRunnable refuses the others before a run). */
function exportDestinations(cfg: RunConfig): ExportDestination[] {
  const destinations = (cfg.execution.auto_export?.destinations ?? []).filter((dest) => dest === 'local');
  return destinations.map(() => {
    const local = cfg.export?.local;
    return {
      kind: 'local' as const,
      format: local?.format ?? 'json',
      ...(local?.output_dir ? { outputDir: local.output_dir } : {}),
      ...(local?.output_filename ? { outputFilename: local.output_filename } : {}),
    };
  });
}
