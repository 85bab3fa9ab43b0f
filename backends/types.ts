/**
 * The one Backend interface: where and how a harness runs. Implementations are idempotent and
 * re-attachable: `launch` adopts a harness it already started for the same (job, attempt), and
 * `poll`/`stop` work from the handle alone, from any worker.
 */
import type { HarnessHandle, Progress } from '../workflows/types.js';

export interface LaunchSpec {
  /** Deterministic: `evalflow-<jobId>-a<attempt>`. */
  name: string;
  jobDir: string;
  attempt: number;
  /** The harness run config (run_config.yml content), without secrets. */
  runConfig: Record<string, unknown>;
  /** Resolved environment for the harness; held in memory only, never written or logged. */
  env: Record<string, string>;
}

export type HarnessStatus =
  | { state: 'running'; progress?: Progress }
  | { state: 'exited'; exitCode: number; progress?: Progress }
  /** The harness is gone without recording an exit (killed, or its machine went away). */
  | { state: 'lost'; progress?: Progress };

export interface Backend {
  launch(spec: LaunchSpec): Promise<HarnessHandle>;
  poll(handle: HarnessHandle): Promise<HarnessStatus>;
  /** Stops the harness if it still runs (SIGTERM, then SIGKILL after `graceMs`); true if it was running. */
  stop(handle: HarnessHandle, graceMs?: number): Promise<boolean>;
}
