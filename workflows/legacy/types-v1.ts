/**
 * Frozen v1 (evalflow 0.1) workflow input, status and activity shapes, for the replay of 0.1 executions
 * (see evaluation-v1.ts). Do not change.
 */
import { z } from 'zod';
import { INVOCATION_ID_PATTERN, JOB_NAME_PATTERN } from '../../core/ids.js';

export { EVALUATION_WORKFLOW, evaluationWorkflowId, jobIdOf } from '../../core/ids.js';
export { SEARCH_ATTRIBUTES } from '../../core/search-attributes.js';
export { watchCheckpointSeconds } from '../watch-policy.js';

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

/** The 0.1 activities as the v1 code calls them (types only: replay never runs them). */
export interface V1Activities {
  prepareEndpoint(input: { url: string; apiKeyName: string | null; readinessTimeoutS: number }): Promise<{ readyAfterS: number }>;
  launchHarness(input: { evaluation: ResolvedEvaluationInput; attempt: number }): Promise<HarnessHandle>;
  watchHarness(input: { handle: HarnessHandle; returnAfterS: number }): Promise<{ state: 'running' | 'exited' | 'lost'; exitCode?: number; progress?: Progress }>;
  collectResults(input: { jobDir: string }): Promise<{
    resultsPath: string;
    samplesPath: string;
    metrics: Record<string, number>;
    samples: { total: number; scored: number; errors: number; cached: number };
    progress: Progress;
  }>;
  exportResults(input: {
    invocationId: string;
    jobId: string;
    taskName: string;
    jobDir: string;
    model: string;
    destinations: ExportDestination[];
  }): Promise<string[]>;
  stopHarness(input: { handle: HarnessHandle }): Promise<{ wasRunning: boolean }>;
}
