/**
 * Local executor, process runtime: the built-in harness as a detached child process (own process group,
 * output to logs/client_stdout.log), so it outlives the worker that started it.
 *
 * Launch is exclusive and idempotent per (job, attempt): an O_EXCL lock file guards the spawn, a marker
 * file (logs/harness.a<N>.json) records the handle, and a harness found running with this job's stage dir
 * is adopted. The harness's own stage files tell a finished run from a lost one. A handle names its host
 * (hostname, boot and PID namespace): pids mean nothing elsewhere, so the activity layer routes its polls
 * and stops to that host's workers.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, watch, writeSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { stringify } from 'yaml';
import { ExecutorHandleSchema } from '../../core/executor.js';
import { outcomeOfStageExit, parseProgress, PROGRESS_FILES, STAGE_FILES } from '../../core/harness-contract.js';
import type { Outcome, PollResult } from '../../core/outcome.js';
import type { Progress } from '../../core/progress.js';
import { writeFileAtomic, writeJsonAtomic } from '../../common/files.js';
import { distPath } from '../../common/paths.js';
import type { DeploySpec, Executor, JobRef, LaunchSpec, LogChunk } from '../types.js';
import { PermanentError } from '../../core/errors.js';
import { ensureModel } from '../../model-server/model-file.js';
import { llamaCppArgs, ServerSpecSchema } from '../server-spec.js';
import { resolveRuntimeEnv } from '../../core/env-refs.js';
import { ENDPOINT_LIMITS_ENV } from '../../harness/shared-limit.js';
import { readLogFrom } from './files.js';
import type { HostIdentity } from './host.js';

/** The harness's and the model server's output, in the job's logs dir. */
const HARNESS_LOG = 'client_stdout.log';
const SERVER_LOG = 'server_stdout.log';

export const ProcessHandleSchema = ExecutorHandleSchema.extend({
  executor: z.literal('process'),
  pid: z.number().int().positive(),
  /** Process start time (clock ticks since boot) to tell our pid from a reused one. */
  startTicks: z.number().int().nonnegative(),
  /** The host (and PID namespace) the pid belongs to. */
  hostId: z.string().min(1),
});
export type ProcessHandle = z.infer<typeof ProcessHandleSchema>;

export interface ProcessExecutorOptions {
  host: HostIdentity;
  /** Node binary for the harness (default: the worker's). */
  nodePath?: string;
  /** Harness entry point (default: dist/harness/cli.js of this installation). */
  harnessEntry?: string;
  /** Model server entry point for the llama_cpp deployment (default: dist/model-server/main.js). */
  modelServerEntry?: string;
  /** SIGTERM → SIGKILL grace period for stop. */
  graceMs?: number;
  /** The worker's endpoint-limit socket (harness/shared-limit.ts), given to every harness it launches. */
  endpointLimitsSocket?: string;
}

/** Only evalflow's llama_cpp server runs as a host process; the others need their container. */
export class UnsupportedDeploymentError extends PermanentError {}

/** A launch of this (job, attempt) is in progress elsewhere; the activity retries and then adopts it. */
export class LaunchInProgressError extends Error {
  override name = 'LaunchInProgressError';
}

export class ProcessExecutor implements Executor<ProcessHandle> {
  readonly kind = 'process' as const;
  readonly hostBound = true;
  private readonly nodePath: string;
  private readonly harnessEntry: string;
  private readonly modelServerEntry: string;
  private readonly graceMs: number;

  constructor(private readonly opts: ProcessExecutorOptions) {
    this.nodePath = opts.nodePath ?? process.execPath;
    this.harnessEntry = opts.harnessEntry ?? distPath('harness', 'cli.js');
    this.modelServerEntry = opts.modelServerEntry ?? distPath('model-server', 'main.js');
    this.graceMs = opts.graceMs ?? 10_000;
  }

  parseHandle(raw: unknown): ProcessHandle {
    return ProcessHandleSchema.parse(raw);
  }

  /**
   * Starts (or adopts) the job's llama_cpp model server as a detached host process listening on
   * `deployment.port`, its output in logs/server_stdout.log. A retried deploy finds it by its marker, or by
   * its working directory (the job's logs dir) when the worker died before writing the marker.
   */
  async deploy(spec: DeploySpec): Promise<ProcessHandle> {
    const server = ServerSpecSchema.parse(spec.deployment);
    if (server.type !== 'llama_cpp') {
      throw new UnsupportedDeploymentError(`a '${server.type}' deployment runs in its container: use execution.runtime=docker`);
    }
    const logsDir = join(spec.jobDir, 'logs');
    mkdirSync(logsDir, { recursive: true });
    const marker = join(logsDir, SERVER_MARKER);
    const adopted = this.adoptServer(spec, marker);
    if (adopted) return adopted;
    const lock = join(logsDir, 'server.lock');
    if (!this.takeLock(lock)) throw new LaunchInProgressError(`another worker is starting ${spec.name} right now (${lock}); retrying`);
    try {
      const again = this.adoptServer(spec, marker);
      if (again) return again;
      // The default model is fetched once into this installation's .tools/models.
      const modelPath = server.modelPath ?? (await ensureModel());
      const env = { ...baseEnvironment(process.env), ...resolveRuntimeEnv(spec.runtimeEnv, process.env, this.opts.host.hostname), ...spec.env };
      const pid = await this.spawnDetached({
        what: `the model server of ${spec.name}`,
        argv: [this.modelServerEntry, ...llamaCppArgs(server, modelPath)],
        cwd: logsDir,
        logFile: join(logsDir, SERVER_LOG),
        banner: `${spec.name}: starting the llama_cpp model server on port ${server.port} (${modelPath})`,
        env,
      });
      const handle = { ...this.handle(spec.name, spec.jobDir, 0, pid, readProcess(pid)?.startTicks ?? 0), role: 'server' as const, healthUrl: server.healthUrl };
      writeJsonAtomic(marker, handle);
      return handle;
    } finally {
      rmSync(lock, { force: true });
    }
  }

  async launch(spec: LaunchSpec): Promise<ProcessHandle> {
    const logsDir = join(spec.jobDir, 'logs');
    mkdirSync(logsDir, { recursive: true });
    const marker = join(logsDir, `harness.a${spec.attempt}.json`);
    const adopted = this.adopt(spec, marker);
    if (adopted) return adopted;

    const env = {
      ...baseEnvironment(process.env),
      ...resolveRuntimeEnv(spec.runtimeEnv, process.env, this.opts.host.hostname),
      ...spec.env,
      ...(this.opts.endpointLimitsSocket ? { [ENDPOINT_LIMITS_ENV]: this.opts.endpointLimitsSocket } : {}),
    };
    const lock = join(logsDir, `harness.a${spec.attempt}.lock`);
    if (!this.takeLock(lock)) {
      // Taken by a live launch on this host: adopt its result once it is there.
      throw new LaunchInProgressError(`another worker is launching ${spec.name} right now (${lock}); retrying`);
    }
    try {
      const again = this.adopt(spec, marker);
      if (again) return again;
      const pid = await this.spawnHarness(spec, logsDir, env);
      const handle = this.handle(spec.name, spec.jobDir, spec.attempt, pid, readProcess(pid)?.startTicks ?? 0);
      writeJsonAtomic(marker, handle);
      return handle;
    } finally {
      rmSync(lock, { force: true });
    }
  }

  async poll(handle: ProcessHandle): Promise<PollResult> {
    this.assertLocal(handle);
    if (handle.role === 'server') {
      return isAlive(handle)
        ? { outcome: { kind: 'running' } }
        : { outcome: { kind: 'failed', permanent: true, reason: `the model server process ${handle.pid} exited (see logs/server_stdout.log)` } };
    }
    const progress = readProgress(handle.jobDir);
    const result = (outcome: PollResult['outcome']): PollResult => (progress ? { outcome, progress } : { outcome });
    const ended = readStageOutcome(handle.jobDir);
    if (ended) return result(ended);
    if (isAlive(handle)) return result({ kind: 'running' });
    // It may have written stage.exit between the two checks.
    const lateEnd = readStageOutcome(handle.jobDir);
    if (lateEnd) return result(lateEnd);
    return result({ kind: 'lost', reason: `the harness process ${handle.pid} disappeared without recording an exit code` });
  }

  /** Until the harness renames its `stage.exit` into place (inotify on the logs dir), or `maxWaitMs`. */
  untilChange(handle: ProcessHandle, maxWaitMs: number): Promise<void> {
    const logsDir = join(handle.jobDir, 'logs');
    return new Promise((resolve) => {
      let watcher: FSWatcher | undefined;
      const done = () => {
        clearTimeout(timer);
        watcher?.close();
        resolve();
      };
      const timer = setTimeout(done, maxWaitMs);
      try {
        watcher = watch(logsDir, (_event, name) => name === STAGE_FILES.exit && done());
        watcher.on('error', () => watcher?.close()); // the timer alone, rather than a busy poll loop
      } catch {
        return; // no logs dir to watch: the timer alone
      }
      // Written between the last poll and the watch.
      if (existsSync(join(logsDir, STAGE_FILES.exit))) done();
    });
  }

  async stop(handle: ProcessHandle): Promise<boolean> {
    this.assertLocal(handle);
    if (!isAlive(handle)) return false;
    await this.terminate(handle.pid, () => isAlive(handle));
    return true;
  }

  async stopJob(job: JobRef): Promise<number> {
    const logsDir = join(job.jobDir, 'logs');
    let stopped = 0;
    // Harnesses first, then the model server they were sending to (one pass over /proc finds both).
    const { harness, server } = findJobProcesses(logsDir);
    for (const found of [...harness, ...server]) {
      await this.terminate(found.pid, () => readProcess(found.pid)?.startTicks === found.startTicks && !isZombie(found.pid));
      stopped++;
    }
    return stopped;
  }

  async fetchArtifacts(): Promise<void> {
    // Written in place: the job dir is on this host.
  }

  async readLog(handle: ProcessHandle, offset: number): Promise<LogChunk> {
    return readLogFrom(join(handle.jobDir, 'logs', handle.role === 'server' ? SERVER_LOG : HARNESS_LOG), offset);
  }

  /** Pids mean something only on their host: a handle from elsewhere was routed wrongly, never "lost". */
  private assertLocal(handle: ProcessHandle): void {
    if (handle.hostId !== this.opts.host.id) {
      throw new Error(`${handle.name} runs on host ${handle.hostId}, not on this worker's host ${this.opts.host.id}: its activities must run on task queue ${handle.taskQueue ?? '(none)'}`);
    }
  }

  /** The handle of a launch that already happened: from its marker, or a running harness found by its stage dir. */
  private adopt(spec: LaunchSpec, marker: string): ProcessHandle | undefined {
    if (existsSync(marker)) return this.parseHandle(JSON.parse(readFileSync(marker, 'utf8')));
    // Started, but the worker died before writing the marker: adopt the running process. spawnDetached creates the
    // log before it spawns, so without a log nothing was ever started for this job: no need to scan /proc.
    if (!existsSync(join(spec.jobDir, 'logs', HARNESS_LOG))) return undefined;
    const running = findJobProcesses(join(spec.jobDir, 'logs')).harness[0];
    if (!running) return undefined;
    const handle = this.handle(spec.name, spec.jobDir, spec.attempt, running.pid, running.startTicks);
    writeJsonAtomic(marker, handle);
    return handle;
  }

  private adoptServer(spec: DeploySpec, marker: string): ProcessHandle | undefined {
    if (existsSync(marker)) return this.parseHandle(JSON.parse(readFileSync(marker, 'utf8')));
    if (!existsSync(join(spec.jobDir, 'logs', SERVER_LOG))) return undefined;
    const running = findJobProcesses(join(spec.jobDir, 'logs')).server[0];
    if (!running) return undefined;
    const server = ServerSpecSchema.parse(spec.deployment);
    const handle = { ...this.handle(spec.name, spec.jobDir, 0, running.pid, running.startTicks), role: 'server' as const, healthUrl: server.healthUrl };
    writeJsonAtomic(marker, handle);
    return handle;
  }

  /** O_EXCL lock naming its holder; a lock whose holder process is gone is taken over. */
  private takeLock(lock: string): boolean {
    for (let tries = 0; tries < 2; tries++) {
      try {
        const fd = openSync(lock, 'wx');
        writeSync(fd, JSON.stringify({ pid: process.pid, startTicks: readProcess(process.pid)?.startTicks ?? 0, hostId: this.opts.host.id }));
        closeSync(fd);
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      if (!this.isStaleLock(lock)) return false;
      rmSync(lock, { force: true });
    }
    return false;
  }

  private isStaleLock(lock: string): boolean {
    try {
      const holder = JSON.parse(readFileSync(lock, 'utf8')) as { pid?: number; startTicks?: number; hostId?: string };
      if (holder.hostId !== this.opts.host.id || typeof holder.pid !== 'number') return false;
      const info = readProcess(holder.pid);
      return !info || info.startTicks !== holder.startTicks;
    } catch {
      // Unreadable: written by a launch that died between open and write.
      return true;
    }
  }

  private async spawnHarness(spec: LaunchSpec, logsDir: string, env: NodeJS.ProcessEnv): Promise<number> {
    rmSync(join(logsDir, STAGE_FILES.exit), { force: true });
    rmSync(join(logsDir, STAGE_FILES.running), { force: true });
    const runConfigFile = join(spec.jobDir, 'config_ef.yaml');
    writeFileAtomic(runConfigFile, stringify(spec.runConfig));
    return this.spawnDetached({
      what: `the harness for ${spec.name}`,
      argv: [this.harnessEntry, 'run_eval', '--run_config', runConfigFile, '--stage_dir', logsDir],
      cwd: spec.jobDir,
      logFile: join(logsDir, HARNESS_LOG),
      banner: `${spec.name}: launching harness (attempt ${spec.attempt})`,
      env,
    });
  }

  /** Spawns a node program detached (its own process group); resolves once it runs, rejects (instead of crashing the worker) if it cannot start. */
  private async spawnDetached(p: { what: string; argv: string[]; cwd: string; logFile: string; banner: string; env: NodeJS.ProcessEnv }): Promise<number> {
    const log = openSync(p.logFile, 'a');
    try {
      writeSync(log, `=== ${new Date().toISOString()} ${p.banner}\n`);
      const child = spawn(this.nodePath, p.argv, { cwd: p.cwd, detached: true, stdio: ['ignore', log, log], env: p.env });
      const pid = await new Promise<number>((resolve, reject) => {
        child.once('error', (err) => reject(new Error(`could not start ${p.what} (${this.nodePath} ${p.argv[0]}): ${err.message}`, { cause: err })));
        child.once('spawn', () => (child.pid === undefined ? reject(new Error(`no pid for ${p.what}`)) : resolve(child.pid)));
      });
      child.unref();
      return pid;
    } finally {
      closeSync(log);
    }
  }

  private async terminate(pid: number, alive: () => boolean): Promise<void> {
    signalGroup(pid, 'SIGTERM');
    const deadline = Date.now() + this.graceMs;
    while (Date.now() < deadline) {
      if (!alive()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    signalGroup(pid, 'SIGKILL');
  }

  private handle(name: string, jobDir: string, attempt: number, pid: number, startTicks: number): ProcessHandle {
    return {
      executor: 'process',
      role: 'harness',
      name,
      jobDir,
      attempt,
      display: `pid ${pid} on ${this.opts.host.hostname}`,
      pid,
      startTicks,
      hostId: this.opts.host.id,
    };
  }
}

/**
 * What the harness inherits from the worker: what a process needs to run and to reach an endpoint (path,
 * locale, time zone, temp dir, proxies, CA certificates), nothing else. Like a container, it sees only the
 * job's own env on top, so the worker's other variables (credentials of other jobs) never reach it.
 */
const INHERITED_ENV = /^(PATH|HOME|USER|LOGNAME|SHELL|LANG|LANGUAGE|LC_[A-Z]+|TZ|TMPDIR|(HTTPS?|NO|ALL)_PROXY|(https?|no|all)_proxy|SSL_CERT_FILE|SSL_CERT_DIR|NODE_EXTRA_CA_CERTS)$/;

export function baseEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => INHERITED_ENV.test(name)));
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal); // detached: the harness leads its own process group
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

function readStageOutcome(jobDir: string): Outcome | null {
  try {
    return outcomeOfStageExit(readFileSync(join(jobDir, 'logs', STAGE_FILES.exit), 'utf8'), true);
  } catch {
    return null;
  }
}

export function readProgress(jobDir: string): Progress | undefined {
  const read = (name: string) => {
    try {
      return readFileSync(join(jobDir, 'artifacts', name), 'utf8');
    } catch {
      return undefined;
    }
  };
  const json = read(PROGRESS_FILES.json);
  return parseProgress(json !== undefined ? { json } : { count: read(PROGRESS_FILES.count) });
}

interface ProcessInfo {
  state: string;
  startTicks: number;
}

/** State and start time from /proc/<pid>/stat (Linux); undefined when there is no such process. */
function readProcess(pid: number): ProcessInfo | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name (which may contain spaces): state is field 3, starttime field 22.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', startTicks: Number(fields[19]) };
}

function isZombie(pid: number): boolean {
  const state = readProcess(pid)?.state;
  return state === 'Z' || state === 'X';
}

function isAlive(handle: ProcessHandle): boolean {
  const info = readProcess(handle.pid);
  if (!info || info.state === 'Z' || info.state === 'X') return false;
  return handle.startTicks === 0 || info.startTicks === handle.startTicks;
}

/** The marker of the job's model server (its handle), next to the harness markers. */
const SERVER_MARKER = 'server.json';

interface FoundProcess {
  pid: number;
  startTicks: number;
}

/**
 * The job's live processes, in one pass over /proc: harnesses (their command line carries this job's `--stage_dir`)
 * and model servers (evalflow's model server running in the job's logs dir).
 */
function findJobProcesses(logsDir: string): { harness: FoundProcess[]; server: FoundProcess[] } {
  const harnessNeedle = `\0--stage_dir\0${logsDir}\0`;
  const serverNeedle = `${join('model-server', 'main.js')}\0`;
  const found = { harness: [] as FoundProcess[], server: [] as FoundProcess[] };
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = `\0${readFileSync(`/proc/${entry}/cmdline`, 'utf8')}`;
    } catch {
      continue;
    }
    const pid = Number(entry);
    const kind = cmdline.includes(harnessNeedle) ? 'harness' : cmdline.includes(serverNeedle) && cwdOf(pid) === logsDir ? 'server' : undefined;
    if (!kind) continue;
    const info = readProcess(pid);
    if (info && info.state !== 'Z') found[kind].push({ pid, startTicks: info.startTicks });
  }
  return found;
}

function cwdOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}
