/**
 * The sbatch script of one attempt of one job, generated (pure) from the `execution` section: upstream's
 * `#SBATCH` keys, `--no-requeue` (evalflow's workflow resubmits, Slurm never does), a job name derived
 * from the job id and attempt, the Slurm log in the remote job dir, a co-scheduled deployment with a
 * health wait inside the job, and the harness, on the node (runtime `none`) or in its image through
 * pyxis (`srun --container-image`, as upstream). Every value goes through a quoting helper: shell words
 * through common/shell.ts, `#SBATCH` values through `sbatchValue` (sbatch parses them, not the shell).
 * Secrets are never in the script: it sources `.secrets.env` (0600), written next to it over SFTP.
 */
import { posix } from 'node:path';
import type { SlurmExecution } from '../../config/schema.js';
import { formatEnvFile } from '../../common/env-file.js';
import { shellCommand, shellQuote } from '../../common/shell.js';
import { ENV_NAME_RE } from '../../core/env-refs.js';

/** Files of a job's remote dir (besides the harness's own artifacts/ and logs/). */
export const REMOTE_FILES = {
  script: 'run.sub',
  secrets: '.secrets.env',
  deployment: 'deployment.sh',
  runConfig: 'config_ef.yaml',
  /** `<attempt> <slurm job id>` lines, one per submission: what a retried launch adopts. */
  jobIds: '.slurm_job_ids',
  slurmLog: (slurmJobId: string | number) => `logs/slurm-${slurmJobId}.log`,
  clientLog: 'logs/client_stdout.log',
  serverLog: 'logs/server_stdout.log',
} as const;

/** Exit codes of the job script itself (the harness's own codes pass through unchanged). */
export const SCRIPT_EXIT = { deploymentDied: 96, deploymentNotReady: 97 } as const;

export type SlurmJobSettings = Pick<
  SlurmExecution,
  | 'account'
  | 'partition'
  | 'num_nodes'
  | 'ntasks_per_node'
  | 'gres'
  | 'gpus_per_node'
  | 'walltime'
  | 'subproject'
  | 'sbatch_comment'
  | 'sbatch_extra_flags'
  | 'runtime'
  | 'mounts'
  | 'deployment'
  | 'endpoint_readiness_timeout'
>;

export interface SbatchScriptSpec {
  /** `<invocation>.<index>`. */
  jobId: string;
  attempt: number;
  /** Absolute, on the cluster. */
  remoteJobDir: string;
  settings: SlurmJobSettings;
  /** The harness command: run on the node (runtime none) or in `image` (pyxis). */
  harness: { argv: readonly string[]; image?: string; mounts?: Readonly<Record<string, string>> };
  /** A model server co-scheduled in the same job; the harness starts once `healthUrl` answers 200. */
  deployment?: { image?: string; healthUrl: string; mounts?: Readonly<Record<string, string>> };
  /** Names the secrets file exports (passed into containers by name, never by value). */
  envNames: readonly string[];
  /** For the header comment. */
  generator: string;
}

/** `<account>-<subproject>.<job id>-a<attempt>` (upstream: `<account>-<subproject>.<task>`): unique per attempt. */
export function slurmJobName(settings: Pick<SlurmExecution, 'account' | 'subproject'>, jobId: string, attempt: number): string {
  return `${settings.account ? `${settings.account}-` : ''}${settings.subproject}.${jobId}-a${attempt}`;
}

/**
 * An `#SBATCH` option value: sbatch (not the shell) splits directive lines at whitespace, honours
 * quotes and backslashes, and treats `#` as a comment. In double quotes with `\` and `"` escaped, any
 * one-line value is read back exactly.
 */
export function sbatchValue(value: string | number): string {
  const text = String(value);
  if (/[\n\r\0]/.test(text)) throw new Error('an #SBATCH value must be a single line');
  if (/^[A-Za-z0-9_.,:=/@%+-]+$/.test(text)) return text;
  return `"${text.replace(/[\\"]/g, '\\$&')}"`;
}

/** Seconds of a Slurm duration `[D-]HH:MM:SS`. */
export function walltimeSeconds(walltime: string): number {
  const match = /^(?:(\d+)-)?(\d+):(\d{2}):(\d{2})$/.exec(walltime);
  if (!match) throw new Error(`not a walltime: ${walltime}`);
  const [, days = '0', h = '0', m = '0', s = '0'] = match;
  return ((Number(days) * 24 + Number(h)) * 60 + Number(m)) * 60 + Number(s);
}

function directives(spec: SbatchScriptSpec): string[] {
  const s = spec.settings;
  const dir = spec.remoteJobDir;
  const flags: [string, string | number | true][] = [
    ['job-name', slurmJobName(s, spec.jobId, spec.attempt)],
    ['output', posix.join(dir, REMOTE_FILES.slurmLog('%j'))],
    ['no-requeue', true],
    ['time', s.walltime],
    ['nodes', s.num_nodes],
    ['ntasks-per-node', s.ntasks_per_node],
  ];
  if (s.account) flags.push(['account', s.account]);
  if (s.partition) flags.push(['partition', s.partition]);
  if (s.gres) flags.push(['gres', s.gres]);
  if (s.gpus_per_node != null) flags.push(['gpus-per-node', s.gpus_per_node]);
  if (s.sbatch_comment) flags.push(['comment', s.sbatch_comment]);
  for (const [flag, value] of Object.entries(s.sbatch_extra_flags).sort(([a], [b]) => a.localeCompare(b))) {
    if (value === false || value === null) continue;
    flags.push([flag, value]);
  }
  return flags.map(([flag, value]) => (value === true ? `#SBATCH --${flag}` : `#SBATCH --${flag}=${sbatchValue(value)}`));
}

/** `srun` for one step of this job: one task on the first node, sharing the allocation with the others. */
function srun(spec: SbatchScriptSpec, opts: { image?: string; mounts?: Readonly<Record<string, string>>; output?: string }): string[] {
  const argv = ['srun', '--overlap', '--nodes=1', '--ntasks=1', `--chdir=${spec.remoteJobDir}`];
  if (opts.output) argv.push(`--output=${opts.output}`);
  if (spec.settings.runtime === 'pyxis') {
    if (!opts.image) throw new Error(`job ${spec.jobId}: runtime pyxis needs a container image`);
    argv.push(`--container-image=${opts.image}`);
    const mounts = Object.entries(opts.mounts ?? {}).map(([src, dst]) => `${src}:${dst}`);
    if (mounts.length) argv.push(`--container-mounts=${mounts.join(',')}`);
    if (!spec.settings.mounts.mount_home) argv.push('--no-container-mount-home');
    if (spec.envNames.length) argv.push(`--container-env=${spec.envNames.join(',')}`);
  }
  return argv;
}

export function renderSbatchScript(spec: SbatchScriptSpec): string {
  if (!/^[0-9a-f]{16}\.\d+$/.test(spec.jobId)) throw new Error(`not a job id: ${spec.jobId}`);
  if (/[\n\r]/.test(spec.generator)) throw new Error('the generator line must be a single line');
  const dir = spec.remoteJobDir;
  const q = shellQuote;
  const at = (file: string) => q(posix.join(dir, file));
  const lines = [
    '#!/bin/bash',
    ...directives(spec),
    `# ${spec.generator}: job ${spec.jobId}, attempt ${spec.attempt}. Generated file: every value in it is quoted;`,
    `# secrets are only in ${REMOTE_FILES.secrets} (mode 0600, sourced below), never here.`,
    'set -uo pipefail',
    `cd ${q(dir)} || exit 1`,
    `echo "$(date -Is) evalflow: Slurm job \${SLURM_JOB_ID} (job ${spec.jobId}, attempt ${spec.attempt}) on $(hostname)"`,
    'set +x',
    `set -a; . ${at(REMOTE_FILES.secrets)} || exit 1; set +a`,
  ];

  if (spec.deployment) {
    const timeout = spec.settings.endpoint_readiness_timeout ?? walltimeSeconds(spec.settings.walltime);
    const step = srun(spec, { image: spec.deployment.image, mounts: spec.deployment.mounts, output: posix.join(dir, REMOTE_FILES.serverLog) });
    if (spec.settings.deployment?.n_tasks && spec.settings.deployment.n_tasks > 1) {
      step.splice(step.indexOf('--ntasks=1'), 1, `--ntasks=${spec.settings.deployment.n_tasks}`);
    }
    lines.push(
      '# The deployment: a step of this job, in the background; the harness starts once it answers.',
      `${shellCommand([...step, 'bash', posix.join(dir, REMOTE_FILES.deployment)])} &`,
      'server_pid=$!',
      `trap 'kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null' EXIT`,
      `deadline=$((SECONDS + ${Math.ceil(timeout)}))`,
      `until curl -sf -o /dev/null --max-time 10 ${q(spec.deployment.healthUrl)}; do`,
      `  kill -0 "$server_pid" 2>/dev/null || { echo "evalflow: the deployment exited before it was ready (see ${REMOTE_FILES.serverLog})" >&2; exit ${SCRIPT_EXIT.deploymentDied}; }`,
      `  [ "$SECONDS" -lt "$deadline" ] || { echo "evalflow: the deployment was not ready within ${Math.ceil(timeout)} s" >&2; exit ${SCRIPT_EXIT.deploymentNotReady}; }`,
      '  sleep 2',
      'done',
      `echo "$(date -Is) evalflow: deployment ready after $SECONDS s"`,
    );
  }

  const harness =
    spec.settings.runtime === 'pyxis' ? [...srun(spec, { image: spec.harness.image, mounts: spec.harness.mounts }), ...spec.harness.argv] : [...spec.harness.argv];
  lines.push(
    '# The harness; its response cache lets a later attempt skip the samples this one finished.',
    `echo "=== $(date -Is) Slurm job \${SLURM_JOB_ID}, attempt ${spec.attempt}: starting the harness" >> ${at(REMOTE_FILES.clientLog)}`,
    `${shellCommand(harness)} >> ${at(REMOTE_FILES.clientLog)} 2>&1`,
    'code=$?',
    'echo "$(date -Is) evalflow: the harness exited with code $code"',
    'exit "$code"',
    '',
  );
  return lines.join('\n');
}

/** `.secrets.env`: the resolved values (common/env-file.ts), then `export NAME="${VAR}"` for `runtime:VAR` references. */
export function renderSecretsFile(values: Readonly<Record<string, string>>, runtimeRefs: Readonly<Record<string, string>> = {}): string {
  const header = '# evalflow: environment of this job; mode 0600, sourced by run.sub. Do not share.\n';
  const runtime = Object.entries(runtimeRefs).map(([name, source]) => `export ${envName(name)}="\${${envName(source)}}"\n`);
  return `${header}${formatEnvFile({ ...values })}${runtime.join('')}`;
}

function envName(name: string): string {
  if (!ENV_NAME_RE.test(name)) throw new Error(`not an environment variable name: ${JSON.stringify(name)}`);
  return name;
}

/** `deployment.sh`, which the job's deployment step runs: the server command, every word quoted. */
export function deploymentScript(deployment: { argv: readonly string[] }): string {
  return `exec ${shellCommand([...deployment.argv])}\n`;
}
