/**
 * The one Executor interface (upstream's word; `execution.type` and the local runtime pick one): where
 * and how a job's harness (and model server, if the job deploys one) runs. Implementations are idempotent
 * and re-attachable: `launch` adopts what it already started for the same (job, attempt), and everything
 * else works from the handle alone, from any worker that can reach the executor (for host-bound
 * executors, from a worker on that host: the activity layer routes there).
 */
import type { ExecutorHandle, ExecutorKind, ExecutorSpec } from '../core/executor.js';
import type { PollResult } from '../core/outcome.js';

export interface JobRef {
  /** `<invocation>.<index>`. */
  jobId: string;
  jobDir: string;
  /** The job's executor spec, where the caller has it (a remote executor needs it to reach its cluster). */
  executor?: ExecutorSpec;
}

export interface LaunchSpec extends JobRef {
  attempt: number;
  /** Deterministic (`launchName`): the container name, Slurm job name, marker files. */
  name: string;
  /** The executor's own settings from the workflow input (validated by the executor). */
  executor: ExecutorSpec;
  /** The task runs evalflow's built-in harness (its exit codes carry meaning). */
  builtinHarness: boolean;
  /** The harness run config (config_ef.yaml content), without secrets. */
  runConfig: Record<string, unknown>;
  /** Values resolved by the activity (`host:`, `lit:`); held in memory only, never written or logged. */
  env: Record<string, string>;
  /** `runtime:` references: NAME → the variable to read where the harness runs (the executor resolves them). */
  runtimeEnv: Record<string, string>;
}

export interface DeploySpec extends JobRef {
  name: string;
  executor: ExecutorSpec;
  deployment: { type: string } & Record<string, unknown>;
  env: Record<string, string>;
  runtimeEnv: Record<string, string>;
}

/** A chunk of a log and where the next read starts. */
export interface LogChunk {
  data: string;
  offset: number;
}

export interface Executor<H extends ExecutorHandle = ExecutorHandle> {
  readonly kind: ExecutorKind;
  /** Processes and containers live on one host: their activities must run on a worker there. */
  readonly hostBound: boolean;
  /** Validates a handle read back from a workflow (the executor's own variant of ExecutorHandle). */
  parseHandle(raw: unknown): H;
  /** Starts the harness, or adopts the one already started for (job, attempt). */
  launch(spec: LaunchSpec): Promise<H>;
  /**
   * Starts the job's model server, or adopts it; null when the executor runs the server inside the
   * harness launch instead (a Slurm job co-schedules both).
   */
  deploy?(spec: DeploySpec): Promise<H | null>;
  poll(handle: H): Promise<PollResult>;
  /**
   * Resolves when the job may have changed state (its end recorded), or after `maxWaitMs`: lets the watcher
   * see a short job's end at once instead of at its next poll. Executors without a cheap signal omit it.
   */
  untilChange?(handle: H, maxWaitMs: number): Promise<void>;
  /** Stops what the handle names if it still runs (graceful, then forced); true if it was running. */
  stop(handle: H): Promise<boolean>;
  /**
   * Stops and cleans up everything of the job, whatever handles the workflow holds (a launch cut short
   * by a cancellation leaves no handle behind); returns how many things it stopped.
   */
  stopJob(job: JobRef): Promise<number>;
  /** Brings the job's artifacts into `handle.jobDir/artifacts` (a no-op where they are written there). */
  fetchArtifacts(handle: H): Promise<void>;
  /** The harness (or server) log from byte `offset`. */
  readLog(handle: H, offset: number): Promise<LogChunk>;
}

/** Builds the executors a worker (or a test, or the CLI for logs) uses, keyed by kind. */
export type ExecutorRegistry = ReadonlyMap<ExecutorKind, Executor>;
