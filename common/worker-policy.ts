/**
 * The worker-side policy of a shared worker: which environment variables a run config may read (through
 * `host:`, `runtime:` and `api_key_name`) and which directories its output and dataset paths may be in.
 * Set by whoever runs the worker, in its environment; unset means no restriction (as before):
 *
 *   EVALFLOW_ALLOW_ENV=NGC_API_KEY,HF_TOKEN,OPENAI_*     names, or prefixes ending in `*`
 *   EVALFLOW_ALLOW_OUTPUT_DIRS=/data/evals:/scratch/evals  absolute directories, `:`-separated
 *   EVALFLOW_ALLOW_DATASET_DIRS=/data/datasets
 *
 * Activities check at the point of use, because a workflow input can be written by anyone who can start a
 * workflow, not only by the evalflow CLI. A refusal fails the task (non-retryable) naming the variable or
 * the path and the policy variable, never a value.
 */
import { existsSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { ConfigError } from '../config/errors.js';
import { ENV_NAME_RE, type EnvRefs } from '../core/env-refs.js';

export const POLICY_ENV = {
  env: 'EVALFLOW_ALLOW_ENV',
  outputDirs: 'EVALFLOW_ALLOW_OUTPUT_DIRS',
  datasetDirs: 'EVALFLOW_ALLOW_DATASET_DIRS',
} as const;

export const POLICY_REFUSED = 'PolicyRefused';

export interface WorkerPolicy {
  /** Allowed env var names; a trailing `*` allows a prefix. Undefined: all. */
  env?: readonly string[];
  /** Directories (canonical) that output paths must be in. Undefined: anywhere. */
  outputDirs?: readonly string[];
  /** Directories (canonical) that dataset paths must be in. Undefined: anywhere. */
  datasetDirs?: readonly string[];
}

/** Reads the policy from the worker's environment; a malformed value is a ConfigError (the worker does not start). */
export function workerPolicyFromEnv(env: Record<string, string | undefined>): WorkerPolicy {
  const policy: { -readonly [K in keyof WorkerPolicy]: WorkerPolicy[K] } = {};
  const names = env[POLICY_ENV.env];
  if (names !== undefined) {
    policy.env = names.split(',').map((n) => n.trim()).filter((n) => n !== '');
    for (const name of policy.env) {
      if (!ENV_NAME_RE.test(name.endsWith('*') ? `${name.slice(0, -1)}X` : name)) {
        throw new ConfigError(`${POLICY_ENV.env}: '${name}' is not an environment variable name (or a prefix ending in '*')`, POLICY_ENV.env);
      }
    }
  }
  for (const key of ['outputDirs', 'datasetDirs'] as const) {
    const value = env[POLICY_ENV[key]];
    if (value === undefined) continue;
    const dirs = value.split(':').filter((d) => d !== '');
    for (const dir of dirs) {
      if (!isAbsolute(dir)) throw new ConfigError(`${POLICY_ENV[key]}: '${dir}' is not an absolute directory`, POLICY_ENV[key]);
    }
    policy[key] = dirs.map(canonicalPath);
  }
  return policy;
}

export function envNameAllowed(policy: WorkerPolicy, name: string): boolean {
  return policy.env === undefined || policy.env.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

/**
 * Refuses reading env var `name` unless the policy allows it. `use` says where the config asked for it
 * (`env var HF_TOKEN = host:HF_TOKEN`, `target.api_endpoint.api_key_name`).
 */
export function assertEnvAllowed(policy: WorkerPolicy, name: string, use: string): void {
  if (envNameAllowed(policy, name)) return;
  throw ApplicationFailure.nonRetryable(
    `${use}: this worker's policy does not let configs read the environment variable ${name} (allowed by ${POLICY_ENV.env}: ${policy.env?.join(', ') || 'none'})`,
    POLICY_REFUSED,
  );
}

/** Refuses a job's `host:` and `runtime:` references the policy does not allow (literals are not reads). */
export function assertEnvRefsAllowed(policy: WorkerPolicy, refs: EnvRefs): void {
  for (const [name, ref] of Object.entries(refs)) {
    if (ref.kind !== 'lit') assertEnvAllowed(policy, ref.name, `env var ${name} = ${ref.kind}:${ref.name}`);
  }
}

/** Refuses an output (`kind: 'output'`) or dataset path outside the policy's directories. `use` names the config key. */
export function assertPathAllowed(policy: WorkerPolicy, kind: 'output' | 'dataset', path: string, use: string): void {
  const dirs = kind === 'output' ? policy.outputDirs : policy.datasetDirs;
  if (dirs === undefined) return;
  const target = canonicalPath(path);
  if (dirs.some((dir) => isWithin(dir, target))) return;
  const variable = kind === 'output' ? POLICY_ENV.outputDirs : POLICY_ENV.datasetDirs;
  throw ApplicationFailure.nonRetryable(
    `${use}: ${kind} path ${path} is outside the directories this worker's policy allows (${variable}: ${dirs.join(':') || 'none'})`,
    POLICY_REFUSED,
  );
}

function isWithin(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/**
 * The absolute path with `..` and symlinks resolved as far as the path exists, so neither `/allowed/../etc`
 * nor a symlink inside an allowed directory can lead out of it.
 */
export function canonicalPath(path: string): string {
  let existing = resolve(path);
  const rest: string[] = [];
  while (!existsSync(existing)) {
    const parent = dirname(existing);
    if (parent === existing) break;
    rest.unshift(existing.slice(parent.length).replace(/^\/+/, ''));
    existing = parent;
  }
  let real: string;
  try {
    real = realpathSync(existing);
  } catch {
    real = existing;
  }
  return resolve(real, ...rest);
}

/**
 * What a harness launch reads and writes, checked against the policy: the job dir, the API key variable
 * (named twice: by the workflow input and by the run config the harness reads, which a hand-written input
 * could make differ) and, for a harness process on this host, the run config's output_dir, its dataset
 * dir and `dataset_path` (a container or a remote job sees its own paths; its executor checks the host
 * paths it mounts or writes).
 */
export function assertLaunchAllowed(
  policy: WorkerPolicy,
  launch: { jobDir: string; runConfig: Record<string, unknown>; harnessOnThisHost: boolean; apiKeyName?: string | null; datasetDirEnv?: string },
): void {
  const { jobDir } = launch;
  assertPathAllowed(policy, 'output', jobDir, 'execution.output_dir');
  const runConfig = launch.runConfig as {
    config?: { output_dir?: unknown; params?: { extra?: { dataset_dir?: unknown; dataset_path?: unknown } | null } };
    target?: { api_endpoint?: { api_key_name?: unknown } };
  };
  for (const name of new Set([launch.apiKeyName, runConfig.target?.api_endpoint?.api_key_name])) {
    if (typeof name === 'string' && name !== '') assertEnvAllowed(policy, name, 'target.api_endpoint.api_key_name');
  }
  if (!launch.harnessOnThisHost) return;
  const outputDir = runConfig.config?.output_dir;
  if (typeof outputDir === 'string') assertPathAllowed(policy, 'output', resolve(jobDir, outputDir), 'config.output_dir');
  // The harness runs in the job dir and falls back to NEMO_EVALUATOR_DATASET_DIR (see harness/engine.ts).
  const extra = runConfig.config?.params?.extra;
  const datasetDir = typeof extra?.dataset_dir === 'string' ? extra.dataset_dir : launch.datasetDirEnv;
  if (datasetDir !== undefined) {
    const use = typeof extra?.dataset_dir === 'string' ? 'dataset_dir' : 'NEMO_EVALUATOR_DATASET_DIR';
    assertPathAllowed(policy, 'dataset', resolve(jobDir, datasetDir), use);
  }
  if (typeof extra?.dataset_path === 'string') {
    assertPathAllowed(policy, 'dataset', resolve(jobDir, datasetDir ?? '', extra.dataset_path), 'config.params.extra.dataset_path');
  }
}
