/**
 * Reading a Slurm job's state, pure: one poll is one remote command (`pollCommand`) that asks squeue
 * (live jobs, and finished ones for MinJobAge), then sacct (slurmdbd; the durable record) or, when sacct
 * cannot answer, `scontrol show job`, and reads the harness's progress and stage files. `parsePoll` turns
 * its output into what the controller knows; `classifyJob` maps that onto an outcome. A controller that
 * cannot be reached ("Unable to contact slurm controller") is transient: never a failure.
 */
import { posix } from 'node:path';
import { shellQuote } from '../../common/shell.js';
import { outcomeOfExit as harnessOutcomeOfExit, withStageFailure, type StageFailure } from '../../core/harness-contract.js';
import type { Outcome } from '../../core/outcome.js';
import { SCRIPT_EXIT } from './script.js';

/** The outcome kinds the Slurm executor reports (the executor interface's classification). */
/** A Slurm job is never "lost": a vanished job is resumable (the run dir tells how far it got). */
export type SlurmOutcome = Exclude<Outcome, { kind: 'lost' }>;

export interface SlurmJobRecord {
  jobId: string;
  /** Base state (`CANCELLED by 1001` → `CANCELLED`). */
  state: string;
  /** squeue's reason, or sacct's `by <uid>` detail. */
  reason?: string;
  exitCode?: number;
  /** The signal that ended the job's script, if any. */
  signal?: number;
  elapsedS?: number;
  source: 'squeue' | 'sacct' | 'scontrol';
}

export type PollReading =
  | { kind: 'found'; job: SlurmJobRecord; files: RemoteRunFiles }
  | { kind: 'not-found'; files: RemoteRunFiles }
  /** The controller (or the link to it) did not answer: try again later, change nothing. */
  | { kind: 'transient'; message: string };

/** What the poll read from the remote job dir. */
export interface RemoteRunFiles {
  progressJson?: string;
  progressCount?: string;
  stageExit?: string;
  resultsPresent: boolean;
}

const MARK = '@@evalflow';

/** Messages of a controller (or slurmdbd) that is down or overloaded: retry, never fail. */
const TRANSIENT = [
  /Unable to contact slurm controller/i,
  /Socket timed out/i,
  /Connection refused/i,
  /Connection timed out/i,
  /Zero Bytes were transmitted/i,
  /Transport endpoint is not connected/i,
  /Slurm backup controller in standby mode/i,
  /Resource temporarily unavailable/i,
  /slurm_receive_msg/i,
  /Unable to establish controller machine/i,
];

export function isTransientSlurmError(text: string): boolean {
  return TRANSIENT.some((re) => re.test(text));
}

/** Slurm job ids as sbatch prints them (`123`, or `123;cluster` with --parsable on a federation). */
export const SLURM_JOB_ID_RE = /^\d+$/;

/**
 * One shell command for one poll: each section starts with `@@evalflow <name> <exit code>`. sacct is asked
 * only when squeue no longer shows the job as live; scontrol only when sacct could not answer.
 */
export function pollCommand(slurmJobId: string, remoteJobDir: string): string {
  if (!SLURM_JOB_ID_RE.test(slurmJobId)) throw new Error(`not a Slurm job id: ${slurmJobId}`);
  const id = slurmJobId;
  const file = (name: string) => shellQuote(posix.join(remoteJobDir, name));
  return [
    `sq=$(squeue --noheader --states=all --jobs=${id} --Format='JobID:|,State:|,Reason:|,exit_code:|,TimeUsed:|' 2>&1); rc=$?`,
    `printf '%s squeue %s\\n%s\\n' ${MARK} "$rc" "$sq"`,
    'case "$sq" in',
    `  *'|PENDING|'*|*'|RUNNING|'*|*'|CONFIGURING|'*|*'|COMPLETING|'*|*'|SUSPENDED|'*|*'|REQUEUED|'*) ;;`,
    '  *)',
    `    sa=$(sacct --noheader --parsable2 --allocations --jobs=${id} --format=JobIDRaw,State,ExitCode,ElapsedRaw 2>&1); rc=$?`,
    `    printf '%s sacct %s\\n%s\\n' ${MARK} "$rc" "$sa"`,
    `    if [ "$rc" -ne 0 ] || [ -z "$sa" ]; then sc=$(scontrol --oneliner show job ${id} 2>&1); rc=$?; printf '%s scontrol %s\\n%s\\n' ${MARK} "$rc" "$sc"; fi`,
    '    ;;',
    'esac',
    `for f in artifacts/progress.json artifacts/progress logs/stage.exit; do [ -f ${shellQuote(remoteJobDir)}/"$f" ] && { printf '%s file:%s 0\\n' ${MARK} "$f"; cat ${shellQuote(remoteJobDir)}/"$f"; echo; }; done`,
    `[ -f ${file('artifacts/results.yml')} ] && printf '%s results 0\\n' ${MARK}`,
    'true',
  ].join('\n');
}

interface Section {
  rc: number;
  text: string;
}

function sections(output: string): Map<string, Section> {
  const map = new Map<string, Section>();
  let current: { name: string; rc: number; lines: string[] } | undefined;
  const flush = () => {
    if (current) map.set(current.name, { rc: current.rc, text: current.lines.join('\n').trim() });
  };
  for (const line of output.split('\n')) {
    const m = /^@@evalflow (\S+) (\d+)$/.exec(line);
    if (m) {
      flush();
      current = { name: m[1] ?? '', rc: Number(m[2]), lines: [] };
    } else current?.lines.push(line);
  }
  flush();
  return map;
}

export function parsePoll(output: string, slurmJobId: string): PollReading {
  const s = sections(output);
  const files: RemoteRunFiles = { resultsPresent: s.has('results') };
  const json = s.get('file:artifacts/progress.json')?.text;
  const count = s.get('file:artifacts/progress')?.text;
  const stage = s.get('file:logs/stage.exit')?.text;
  if (json !== undefined) files.progressJson = json;
  if (count !== undefined) files.progressCount = count;
  if (stage !== undefined) files.stageExit = stage;

  const squeue = s.get('squeue');
  if (!squeue) return { kind: 'transient', message: 'no answer from the poll command' };
  const live = squeue.rc === 0 ? parseSqueue(squeue.text, slurmJobId) : undefined;
  if (squeue.rc !== 0 && isTransientSlurmError(squeue.text)) return { kind: 'transient', message: firstLine(squeue.text) };
  const sacct = s.get('sacct');
  const scontrol = s.get('scontrol');
  if (live && !sacct) return { kind: 'found', job: live, files };
  if (sacct && sacct.rc === 0 && sacct.text) {
    const record = parseSacct(sacct.text, slurmJobId);
    if (record) return { kind: 'found', job: record, files };
  }
  if (scontrol && scontrol.rc === 0) {
    const record = parseScontrol(scontrol.text, slurmJobId);
    if (record) return { kind: 'found', job: record, files };
  }
  // The finished job squeue still shows (sacct and scontrol could not say more).
  if (live) return { kind: 'found', job: live, files };
  if (scontrol && scontrol.rc !== 0 && isTransientSlurmError(scontrol.text)) return { kind: 'transient', message: firstLine(scontrol.text) };
  // squeue and scontrol said "Invalid job id"; sacct (if it works) had no record.
  return { kind: 'not-found', files };
}

function firstLine(text: string): string {
  return text.split('\n').find((l) => l.trim())?.trim() ?? text;
}

/** `--Format='JobID:|,State:|,Reason:|,exit_code:|,TimeUsed:|'` lines; exit_code is the raw wait status. */
export function parseSqueue(text: string, slurmJobId: string): SlurmJobRecord | undefined {
  for (const line of text.split('\n')) {
    const [id, state, reason, status, used] = line.split('|').map((f) => f.trim());
    if (id !== slurmJobId || !state) continue;
    const record: SlurmJobRecord = { jobId: id, state, source: 'squeue' };
    if (reason && reason !== 'None') record.reason = reason;
    const wait = Number(status);
    if (status && Number.isInteger(wait)) Object.assign(record, fromWaitStatus(wait));
    const elapsed = durationSeconds(used ?? '');
    if (elapsed !== undefined) record.elapsedS = elapsed;
    return record;
  }
  return undefined;
}

/** `JobIDRaw|State|ExitCode|ElapsedRaw` lines (`--parsable2 --allocations`); the last line of the id wins. */
export function parseSacct(text: string, slurmJobId: string): SlurmJobRecord | undefined {
  let found: SlurmJobRecord | undefined;
  for (const line of text.split('\n')) {
    const [id, stateText, exit, elapsed] = line.split('|');
    if (id?.trim() !== slurmJobId || !stateText) continue;
    const [state = '', ...detail] = stateText.trim().split(/\s+/);
    const record: SlurmJobRecord = { jobId: slurmJobId, state, source: 'sacct' };
    if (detail.length) record.reason = detail.join(' ');
    Object.assign(record, fromExitPair(exit ?? ''));
    const seconds = Number(elapsed);
    if (elapsed?.trim() && Number.isFinite(seconds)) record.elapsedS = seconds;
    found = record;
  }
  return found;
}

/** `scontrol --oneliner show job`: `Key=value` pairs; only keys that come before any free text are read. */
export function parseScontrol(text: string, slurmJobId: string): SlurmJobRecord | undefined {
  const fields = new Map<string, string>();
  for (const token of text.split(/\s+/)) {
    const eq = token.indexOf('=');
    if (eq > 0 && !fields.has(token.slice(0, eq))) fields.set(token.slice(0, eq), token.slice(eq + 1));
  }
  if (fields.get('JobId') !== slurmJobId) return undefined;
  const state = fields.get('JobState');
  if (!state) return undefined;
  const record: SlurmJobRecord = { jobId: slurmJobId, state, source: 'scontrol' };
  const reason = fields.get('Reason');
  if (reason && reason !== 'None') record.reason = reason;
  Object.assign(record, fromExitPair(fields.get('ExitCode') ?? ''));
  const elapsed = durationSeconds(fields.get('RunTime') ?? '');
  if (elapsed !== undefined) record.elapsedS = elapsed;
  return record;
}

/** `3:0` → exit 3; `0:15` → signal 15. */
function fromExitPair(text: string): Pick<SlurmJobRecord, 'exitCode' | 'signal'> {
  const m = /^(\d+):(\d+)$/.exec(text.trim());
  if (!m) return {};
  const signal = Number(m[2]);
  return signal ? { exitCode: Number(m[1]), signal } : { exitCode: Number(m[1]) };
}

function fromWaitStatus(status: number): Pick<SlurmJobRecord, 'exitCode' | 'signal'> {
  const signal = status & 0x7f;
  return signal ? { exitCode: 0, signal } : { exitCode: (status >> 8) & 0xff };
}

/** Slurm durations: `[D-][HH:]MM:SS` (squeue, scontrol); undefined for anything else. */
export function durationSeconds(text: string): number | undefined {
  const m = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d{2})$/.exec(text.trim());
  if (!m) return undefined;
  const [, d = '0', h = '0', min = '0', s = '0'] = m;
  return ((Number(d) * 24 + Number(h)) * 60 + Number(min)) * 60 + Number(s);
}

const QUEUED = ['PENDING', 'REQUEUED', 'REQUEUE_FED', 'REQUEUE_HOLD', 'RESV_DEL_HOLD'];
const RUNNING = ['RUNNING', 'CONFIGURING', 'COMPLETING', 'SUSPENDED', 'STAGE_OUT', 'SIGNALING', 'RESIZING', 'STOPPED'];
/** Ends that a new attempt recovers from: the harness resumes from its response cache. */
const RESUMABLE: Record<string, string> = {
  TIMEOUT: 'the Slurm job reached its time limit (execution.walltime)',
  PREEMPTED: 'the Slurm job was preempted',
  NODE_FAIL: 'the node of the Slurm job failed',
  BOOT_FAIL: 'the node of the Slurm job failed to boot',
};

export interface ClassifyContext {
  /** The job script's exit codes come from evalflow's harness (2: bad run config, 3: too many errors). */
  builtinHarness: boolean;
  /** Exit code of the harness from logs/stage.exit, when it wrote one. */
  stageExit: number | null;
  /** The harness's own failure message from logs/stage.exit (a dataset line, the endpoint's last error). */
  stageFailure?: StageFailure | null;
  resultsPresent: boolean;
}

/** The outcome of a Slurm job as the controller (or, once it forgot the job, the run dir) tells it. */
export function classifyJob(job: SlurmJobRecord | undefined, ctx: ClassifyContext): SlurmOutcome {
  if (!job) {
    if (ctx.stageExit !== null) return outcomeOfExit(ctx.stageExit, ctx);
    if (ctx.resultsPresent) return { kind: 'succeeded' };
    return { kind: 'resumable', reason: 'the Slurm job vanished (no record in squeue, sacct or scontrol) before the run finished' };
  }
  const { state } = job;
  if (QUEUED.includes(state)) return job.reason ? { kind: 'queued', reason: job.reason } : { kind: 'queued' };
  if (RUNNING.includes(state)) return { kind: 'running' };
  if (state === 'COMPLETED') return { kind: 'succeeded' };
  const resumable = RESUMABLE[state];
  if (resumable) return { kind: 'resumable', reason: resumable };
  if (state === 'CANCELLED') return { kind: 'cancelled', reason: `the Slurm job ${job.jobId} was cancelled${job.reason ? ` ${job.reason}` : ''} (scancel)` };
  if (state === 'OUT_OF_MEMORY') return { kind: 'oomKilled', reason: `the Slurm job ${job.jobId} ran out of memory` };
  if (state === 'FAILED' && job.signal) return { kind: 'failed', reason: `the Slurm job ${job.jobId} was killed by signal ${job.signal}`, permanent: false };
  if (state === 'FAILED' && job.exitCode !== undefined) {
    // The harness's own record is exact; the job's exit code is the script's, which passes the harness's through.
    return outcomeOfExit(ctx.stageExit ?? job.exitCode, ctx);
  }
  return { kind: 'failed', reason: `the Slurm job ${job.jobId} ended ${state}${job.reason ? ` (${job.reason})` : ''}`, permanent: false };
}

/** Exit codes of the job script around the harness (deployment problems), else the harness contract's. */
function outcomeOfExit(code: number, ctx: ClassifyContext): SlurmOutcome {
  if (code === SCRIPT_EXIT.deploymentDied) return { kind: 'failed', exitCode: code, permanent: false, reason: 'the deployment exited before it was ready (see logs/server_stdout.log)' };
  if (code === SCRIPT_EXIT.deploymentNotReady) return { kind: 'failed', exitCode: code, permanent: false, reason: 'the deployment was not ready within execution.endpoint_readiness_timeout' };
  return withStageFailure(harnessOutcomeOfExit(code, ctx.builtinHarness), ctx.stageFailure ?? null) as SlurmOutcome;
}
