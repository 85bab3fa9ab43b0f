/**
 * Workflow inputs, results and query shapes: plain JSON, so that `temporal workflow start --input-file`
 * works and histories stay readable. Validated with zod when a workflow starts (bad input fails the
 * workflow with a non-retryable error instead of being retried forever). Pure: safe in the sandbox.
 */
import { z } from 'zod';
import { EnvRefsSchema } from '../core/env-refs.js';
import { ExportDestinationInputSchema } from '../core/exports.js';
import { ExecutorSpecSchema, type ExecutorHandle } from '../core/executor.js';
import { INVOCATION_ID_PATTERN, JOB_NAME_PATTERN } from '../core/ids.js';
import type { Progress } from '../core/progress.js';

export {
  EVALUATION_WORKFLOW,
  evaluationWorkflowId,
  INVOCATION_ID_PATTERN,
  INVOCATION_WORKFLOW,
  invocationWorkflowId,
  jobIdOf,
  TASK_QUEUE,
} from '../core/ids.js';
export { SEARCH_ATTRIBUTES } from '../core/search-attributes.js';
export type { Progress } from '../core/progress.js';
export type { ExecutorHandle } from '../core/executor.js';
export { ExportDestinationSchema, type ExportDestination } from '../core/exports.js';
export { watchCheckpointSeconds } from './watch-policy.js';

/** A model server to start for the job (`deployment:`); its settings are the executor's to validate. */
export const DeploymentSpecSchema = z.object({ type: z.string().min(1) }).passthrough();

export const EvaluationInputSchema = z
  .object({
    invocationId: z.string().regex(INVOCATION_ID_PATTERN, 'must be 16 lowercase hex characters'),
    taskIndex: z.number().int().nonnegative(),
    /** Full task name, e.g. `evalflow.gsm8k`. */
    taskName: z.string().min(1),
    /** `<task>.<index>`, e.g. `gsm8k.0`: the job's directory name. */
    jobName: z.string().regex(JOB_NAME_PATTERN),
    /** Absolute: `<output_dir>/<YYYYmmdd_HHMMSS>-<inv>/<jobName>` on the worker side. */
    jobDir: z.string().startsWith('/'),
    /** The task runs evalflow's built-in harness, whose exit codes carry meaning (core/harness-contract.ts). */
    builtinHarness: z.boolean(),
    /** Where and how the job runs: `kind` picks the executor, the rest is its own (backends/<kind>/). */
    executor: ExecutorSpecSchema,
    deployment: DeploymentSpecSchema.optional(),
    endpoint: z
      .object({
        url: z.string().regex(/^https?:\/\/\S+$/, 'must be an http(s) URL'),
        modelId: z.string().min(1),
        type: z.enum(['chat', 'completions']),
        apiKeyName: z.string().nullish(),
        readinessTimeoutS: z.number().positive(),
      })
      .strict(),
    /** The harness run config (config_ef.yaml); never contains secrets. */
    runConfig: z.record(z.string(), z.unknown()),
    /** Environment for the harness: names to read on the worker host or where it runs, or literals. */
    env: EnvRefsSchema.default({}),
    limits: z
      .object({
        /** Launches that may end without progress before the task fails (relaunches that progressed are free). */
        maxAttempts: z.number().int().min(1).default(3),
        heartbeatTimeoutS: z.number().min(10).default(60),
        /** Total run time over all launches (Slurm's `max_walltime`); unset: no bound. */
        maxWalltimeS: z.number().positive().optional(),
      })
      .strict()
      .prefault({}),
    /** Also the `{kind: 'local', format, …}` shape of workflows started before exporters were plug-ins (they keep replaying). */
    exports: z.array(ExportDestinationInputSchema).default([]),
    /** Launches of this job by earlier runs (a resume continues their numbering, and their caches). */
    attemptOffset: z.number().int().nonnegative().default(0),
  })
  .strict();
export type EvaluationInput = z.input<typeof EvaluationInputSchema>;
export type ResolvedEvaluationInput = z.output<typeof EvaluationInputSchema>;

const StageSchema = z.enum(['pending', 'deploying', 'preparing_endpoint', 'launching', 'queued', 'running', 'collecting', 'exporting', 'succeeded', 'failed', 'cancelled']);

/** A job a resume does not re-run: its input (for a later resume) and how it ended in the previous run. */
const CarriedTaskSchema = z
  .object({
    evaluation: EvaluationInputSchema,
    stage: StageSchema,
    attempt: z.number().int().nonnegative(),
    metrics: z.record(z.string(), z.number()).optional(),
    error: z.string().optional(),
    samples: z.object({ total: z.number(), scored: z.number(), errors: z.number(), cached: z.number() }).strict().optional(),
  })
  .strict();
export type CarriedTask = z.input<typeof CarriedTaskSchema>;

export const InvocationInputSchema = z
  .object({
    invocationId: z.string().regex(INVOCATION_ID_PATTERN, 'must be 16 lowercase hex characters'),
    /** Absolute: `<output_dir>/<YYYYmmdd_HHMMSS>-<inv>`. */
    runDir: z.string().startsWith('/'),
    model: z.string().min(1),
    /** For people and the EvalBackend search attribute: `local/process`, `local/docker`, `slurm`. */
    backend: z.string().min(1),
    mode: z.enum(['sequential', 'parallel']).default('sequential'),
    /** Parallel mode: how many tasks run at once (default: all). */
    maxParallel: z.number().int().min(1).optional(),
    tasks: z.array(EvaluationInputSchema).min(1),
    /** `evalflow resume`: the run this one continues, and the jobs it leaves as they ended there. */
    resume: z
      .object({
        previousRunId: z.string().min(1),
        carried: z.array(CarriedTaskSchema),
      })
      .strict()
      .optional(),
    /**
     * Payloads are encrypted (evalflow's codec, set by the client that starts the run). Search attributes
     * are never encrypted, so they then carry no config value: only the invocation id and the stage.
     */
    confidential: z.boolean().default(false),
  })
  .strict();
export type InvocationInput = z.input<typeof InvocationInputSchema>;

export type Stage = z.infer<typeof StageSchema>;

export const TERMINAL_STAGES: readonly Stage[] = ['succeeded', 'failed', 'cancelled'];

export interface SampleCounts {
  total: number;
  scored: number;
  errors: number;
  cached: number;
}

export interface TaskStatus {
  jobId: string;
  jobName: string;
  taskName: string;
  jobDir: string;
  stage: Stage;
  attempt: number;
  handle?: ExecutorHandle;
  server?: ExecutorHandle;
  progress?: Progress;
  metrics?: Record<string, number>;
  error?: string;
}

export interface EvaluationResult {
  jobId: string;
  jobName: string;
  taskName: string;
  jobDir: string;
  resultsPath: string;
  attempts: number;
  metrics: Record<string, number>;
  /** Absent when the harness's results.yml does not count samples (upstream's containers). */
  samples?: SampleCounts;
}

/** Details of a task's failure (ApplicationFailure details[0]): what it got to before it failed. */
export interface TaskFailureDetails {
  jobId: string;
  stage: Stage;
  attempts: number;
  metrics?: Record<string, number>;
  samples?: SampleCounts;
}

export interface InvocationStatus {
  invocationId: string;
  runDir: string;
  model: string;
  stage: Stage;
  tasks: TaskStatus[];
}

/** Child → parent, on stage changes only (progress is read live from the child's heartbeats). */
export interface TaskStageUpdate {
  jobId: string;
  stage: Stage;
  attempt: number;
  handle?: ExecutorHandle;
}
