/**
 * Workflow inputs, results and query shapes: plain JSON, so that `temporal workflow start --input-file`
 * works and histories stay readable. Validated with zod when a workflow starts (bad input fails the
 * workflow with a non-retryable error instead of being retried forever). Pure: safe in the sandbox.
 */
import { z } from 'zod';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const TASK_QUEUE = 'evalflow';
export const INVOCATION_WORKFLOW = 'InvocationWorkflow';
export const EVALUATION_WORKFLOW = 'EvaluationWorkflow';

export const SEARCH_ATTRIBUTES = {
  invocation: defineSearchAttributeKey('EvalInvocation', SearchAttributeType.KEYWORD),
  task: defineSearchAttributeKey('EvalTask', SearchAttributeType.KEYWORD),
  model: defineSearchAttributeKey('EvalModel', SearchAttributeType.KEYWORD),
  backend: defineSearchAttributeKey('EvalBackend', SearchAttributeType.KEYWORD),
  stage: defineSearchAttributeKey('EvalStage', SearchAttributeType.KEYWORD),
} as const;

export const INVOCATION_ID_PATTERN = /^[0-9a-f]{16}$/;
const JOB_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export const invocationWorkflowId = (invocationId: string) => `evalflow-${invocationId}`;
export const evaluationWorkflowId = (jobId: string) => `evalflow-${jobId}`;

const EnvRefSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('host'), name: z.string().min(1) }).strict(),
  z.object({ kind: z.literal('lit'), value: z.string() }).strict(),
  z.object({ kind: z.literal('runtime'), name: z.string().min(1) }).strict(),
]);

export const ExportDestinationSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('local'),
      format: z.enum(['json', 'csv']).default('json'),
      /** Directory of the processed_results file; default: the invocation's run dir. */
      outputDir: z.string().min(1).optional(),
      outputFilename: z.string().min(1).optional(),
    })
    .strict(),
]);
export type ExportDestination = z.infer<typeof ExportDestinationSchema>;

export const EvaluationInputSchema = z
  .object({
    invocationId: z.string().regex(INVOCATION_ID_PATTERN, 'must be 16 lowercase hex characters'),
    taskIndex: z.number().int().nonnegative(),
    /** Full task name, e.g. `evalflow.gsm8k`. */
    taskName: z.string().min(1),
    /** `<task>.<index>`, e.g. `gsm8k.0`: the job's directory name. */
    jobName: z.string().regex(JOB_NAME_PATTERN),
    /** Absolute: `<output_dir>/<YYYYmmdd_HHMMSS>-<inv>/<jobName>`. */
    jobDir: z.string().startsWith('/'),
    backend: z.literal('local'),
    /** `process`: the built-in harness as a local process. `docker`: the task's container (planned; see launchHarness). */
    runtime: z.enum(['process', 'docker']),
    /** Image of a container task (runtime docker). */
    container: z.string().min(1).optional(),
    endpoint: z
      .object({
        url: z.string().regex(/^https?:\/\/\S+$/, 'must be an http(s) URL'),
        modelId: z.string().min(1),
        type: z.enum(['chat', 'completions']),
        apiKeyName: z.string().nullish(),
        readinessTimeoutS: z.number().positive(),
      })
      .strict(),
    /** The harness run config (run_config.yml); never contains secrets. */
    runConfig: z.record(z.string(), z.unknown()),
    /** Environment for the harness: names to read on the worker host, or literals. */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), EnvRefSchema).default({}),
    limits: z
      .object({
        maxAttempts: z.number().int().min(1).default(3),
        heartbeatTimeoutS: z.number().min(10).default(60),
      })
      .strict()
      .prefault({}),
    exports: z.array(ExportDestinationSchema).default([]),
  })
  .strict();
export type EvaluationInput = z.input<typeof EvaluationInputSchema>;
export type ResolvedEvaluationInput = z.output<typeof EvaluationInputSchema>;

export const InvocationInputSchema = z
  .object({
    invocationId: z.string().regex(INVOCATION_ID_PATTERN, 'must be 16 lowercase hex characters'),
    /** Absolute: `<output_dir>/<YYYYmmdd_HHMMSS>-<inv>`. */
    runDir: z.string().startsWith('/'),
    model: z.string().min(1),
    backend: z.string().min(1),
    mode: z.enum(['sequential', 'parallel']).default('sequential'),
    /** Parallel mode: how many tasks run at once (default: all). */
    maxParallel: z.number().int().min(1).optional(),
    tasks: z.array(EvaluationInputSchema).min(1),
  })
  .strict();
export type InvocationInput = z.input<typeof InvocationInputSchema>;

export type Stage =
  | 'pending'
  | 'preparing_endpoint'
  | 'launching'
  | 'running'
  | 'collecting'
  | 'exporting'
  | 'succeeded'
  | 'failed'
  | 'cancelled';

export const TERMINAL_STAGES: readonly Stage[] = ['succeeded', 'failed', 'cancelled'];

export interface Progress {
  total: number;
  done: number;
  cached: number;
  errors: number;
}

/** Where the harness runs: enough to find it again from any worker. */
export interface HarnessHandle {
  backend: 'local';
  runtime: 'process';
  /** Deterministic name: `evalflow-<jobId>-a<attempt>`. */
  name: string;
  jobDir: string;
  attempt: number;
  pid: number;
  /** Process start time (clock ticks since boot) to tell our pid from a reused one. */
  startTicks: number;
}

export interface TaskStatus {
  jobId: string;
  jobName: string;
  taskName: string;
  jobDir: string;
  stage: Stage;
  attempt: number;
  handle?: HarnessHandle;
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
  samples: { total: number; scored: number; errors: number; cached: number };
}

export interface InvocationStatus {
  invocationId: string;
  runDir: string;
  model: string;
  stage: Stage;
  tasks: TaskStatus[];
}

/** Child → parent: a task's stage, progress or outcome changed. */
export type TaskUpdate = Partial<Omit<TaskStatus, 'jobId'>> & { jobId: string };

export function jobIdOf(invocationId: string, taskIndex: number): string {
  return `${invocationId}.${taskIndex}`;
}

/**
 * How long one watchHarness call may run before it returns progress to the workflow: short at first
 * (live progress in queries), then a tenth of the elapsed time, capped at an hour, so a 7-day job adds
 * only a few hundred events to its history.
 */
export function watchCheckpointSeconds(elapsedS: number): number {
  return Math.round(Math.min(3600, Math.max(15, elapsedS / 10)));
}
