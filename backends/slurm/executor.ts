/**
 * The Slurm executor: one sbatch job per launch, reached over SSH (one pooled connection per cluster
 * and user in a worker). Launch is idempotent: before sbatch it looks for this attempt's job in the job-id
 * file of the remote job dir, then by its name in squeue, and adopts what it finds. Polls are rate-limited
 * to `execution.poll_interval`, and an unreachable controller or login node is never a failure: the last
 * known state stands until the cluster answers again. Artifacts come back over SFTP; the remote copy stays.
 */
import { posix, join } from 'node:path';
import { stringify } from 'yaml';
import { parseProgress, parseStageExit, parseStageFailure } from '../../core/harness-contract.js';
import type { Outcome, PollResult } from '../../core/outcome.js';
import { evalflowVersion } from '../../common/paths.js';
import { shellQuote } from '../../common/shell.js';
import type { Executor, JobRef, LaunchSpec, LogChunk } from '../types.js';
import { SlurmCluster, SlurmTransientError } from './cluster.js';
import { deploymentScript, REMOTE_FILES, renderSbatchScript, renderSecretsFile, slurmJobName } from './script.js';
import { SlurmHandleSchema, SlurmSpecSchema, sshOptionsOf, type SlurmConnection, type SlurmHandle } from './spec.js';
import { sshSession } from './ssh.js';
import { classifyJob } from './states.js';

const LOG_CHUNK = 256 * 1024;
/** Artifacts that stay on the cluster: the response cache can be large and only matters for a resume there. */
const STAYS_REMOTE = /^cache(\/|$)/;

export class SlurmExecutor implements Executor<SlurmHandle> {
  readonly kind = 'slurm' as const;
  readonly hostBound = false;
  private readonly lastPoll = new Map<string, { at: number; result: PollResult }>();

  parseHandle(raw: unknown): SlurmHandle {
    return SlurmHandleSchema.parse(raw);
  }

  /** The deployment is a step of the harness's own job (spec.deployment): nothing to start before the launch. */
  async deploy(): Promise<null> {
    return null;
  }

  async launch(spec: LaunchSpec): Promise<SlurmHandle> {
    const s = SlurmSpecSchema.parse(spec.executor);
    const cluster = clusterOf(s.connection);
    const dir = s.remoteJobDir;
    const name = slurmJobName(s.settings, spec.jobId, spec.attempt);
    const handle = (slurmJobId: string): SlurmHandle => ({
      executor: 'slurm',
      role: 'harness',
      name: spec.name,
      jobDir: spec.jobDir,
      attempt: spec.attempt,
      display: `Slurm job ${slurmJobId} on ${s.connection.host}`,
      slurmJobId,
      slurmJobName: name,
      remoteJobDir: dir,
      connection: s.connection,
      builtinHarness: spec.builtinHarness,
      pollIntervalS: s.pollIntervalS,
    });

    const adopted = (await this.recordedJobIds(cluster, dir)).get(spec.attempt) ?? (await cluster.jobsNamed(name)).at(-1)?.id;
    if (adopted) {
      await this.recordJobId(cluster, dir, spec.attempt, adopted);
      return handle(adopted);
    }

    const ssh = cluster.ssh;
    await ssh.mkdirp(posix.join(dir, 'logs'));
    await ssh.mkdirp(posix.join(dir, 'artifacts'));
    // A finished earlier attempt's exit record must not speak for this one.
    await ssh.exec(`rm -f ${shellQuote(posix.join(dir, 'logs/stage.exit'))} ${shellQuote(posix.join(dir, 'logs/stage.running'))}`);
    await ssh.writeFile(posix.join(dir, REMOTE_FILES.runConfig), stringify(spec.runConfig, { lineWidth: 0 }));
    await ssh.writeFile(posix.join(dir, REMOTE_FILES.secrets), renderSecretsFile(spec.env, spec.runtimeEnv), 0o600);
    if (s.deployment) await ssh.writeFile(posix.join(dir, REMOTE_FILES.deployment), deploymentScript(s.deployment), 0o755);
    const script = renderSbatchScript({
      jobId: spec.jobId,
      attempt: spec.attempt,
      remoteJobDir: dir,
      settings: s.settings,
      harness: s.harness,
      ...(s.deployment ? { deployment: s.deployment } : {}),
      envNames: [...Object.keys(spec.env), ...Object.keys(spec.runtimeEnv)],
      generator: `evalflow ${evalflowVersion()}`,
    });
    const scriptPath = posix.join(dir, REMOTE_FILES.script);
    await ssh.writeFile(scriptPath, script, 0o755);
    const slurmJobId = await cluster.submit(scriptPath);
    await this.recordJobId(cluster, dir, spec.attempt, slurmJobId);
    return handle(slurmJobId);
  }

  async poll(handle: SlurmHandle): Promise<PollResult> {
    const last = this.lastPoll.get(handle.slurmJobId);
    if (last && Date.now() - last.at < handle.pollIntervalS * 1000) return last.result;
    const cluster = clusterOf(handle.connection);
    const reading = await cluster.poll(handle.slurmJobId, handle.remoteJobDir);
    if (reading.kind === 'transient') {
      // The controller or the login node is unreachable: nothing is known to have changed.
      const result = last?.result ?? { outcome: { kind: 'queued', reason: `waiting for the cluster: ${reading.message}` } };
      this.lastPoll.set(handle.slurmJobId, { at: Date.now(), result });
      return result;
    }
    const { files } = reading;
    let outcome: Outcome = classifyJob(reading.kind === 'found' ? reading.job : undefined, {
      builtinHarness: handle.builtinHarness,
      stageExit: files.stageExit === undefined ? null : parseStageExit(files.stageExit),
      stageFailure: files.stageExit === undefined ? null : parseStageFailure(files.stageExit),
      resultsPresent: files.resultsPresent,
    });
    if (outcome.kind === 'failed') {
      const tail = (await cluster.tail(posix.join(handle.remoteJobDir, REMOTE_FILES.clientLog), 1500).catch(() => '')).trim();
      if (tail) outcome = { ...outcome, reason: `${outcome.reason}; last log lines:\n${tail}` };
    }
    const progress = parseProgress({
      ...(files.progressJson === undefined ? {} : { json: files.progressJson }),
      ...(files.progressCount === undefined ? {} : { count: files.progressCount }),
    });
    const result: PollResult = {
      outcome,
      ...(progress ? { progress } : {}),
      ...(reading.kind === 'found' && reading.job.elapsedS !== undefined ? { elapsedS: reading.job.elapsedS } : {}),
    };
    if (outcome.kind === 'queued' || outcome.kind === 'running') this.lastPoll.set(handle.slurmJobId, { at: Date.now(), result });
    else this.lastPoll.delete(handle.slurmJobId);
    return result;
  }

  async stop(handle: SlurmHandle): Promise<boolean> {
    this.lastPoll.delete(handle.slurmJobId);
    const cluster = clusterOf(handle.connection);
    const reading = await cluster.poll(handle.slurmJobId, handle.remoteJobDir);
    if (reading.kind === 'found') {
      const outcome = classifyJob(reading.job, { builtinHarness: handle.builtinHarness, stageExit: null, resultsPresent: false });
      if (outcome.kind !== 'queued' && outcome.kind !== 'running') return false;
    } else if (reading.kind === 'not-found') return false;
    await cluster.cancel(handle.slurmJobId);
    return true;
  }

  /** Cancels every job of this job's attempts still queued or running (found by the job-id file). */
  async stopJob(job: JobRef): Promise<number> {
    const parsed = SlurmSpecSchema.safeParse(job.executor);
    if (!parsed.success) return 0;
    const cluster = clusterOf(parsed.data.connection);
    let stopped = 0;
    for (const id of new Set((await this.recordedJobIds(cluster, parsed.data.remoteJobDir)).values())) {
      const live = await cluster.poll(id, parsed.data.remoteJobDir);
      if (live.kind !== 'found' || !['PENDING', 'RUNNING', 'CONFIGURING', 'SUSPENDED', 'REQUEUED'].includes(live.job.state)) continue;
      await cluster.cancel(id);
      stopped++;
    }
    return stopped;
  }

  async fetchArtifacts(handle: SlurmHandle): Promise<void> {
    const ssh = clusterOf(handle.connection).ssh;
    await ssh.download(posix.join(handle.remoteJobDir, 'artifacts'), join(handle.jobDir, 'artifacts'), { exclude: (rel) => STAYS_REMOTE.test(rel) });
    await ssh.download(posix.join(handle.remoteJobDir, 'logs'), join(handle.jobDir, 'logs'));
  }

  async readLog(handle: SlurmHandle, offset: number): Promise<LogChunk> {
    const ssh = clusterOf(handle.connection).ssh;
    const buf = await ssh.readRange(posix.join(handle.remoteJobDir, REMOTE_FILES.clientLog), offset, LOG_CHUNK);
    const lastNewline = buf.lastIndexOf(0x0a);
    const end = lastNewline >= 0 ? lastNewline + 1 : buf.length === LOG_CHUNK ? buf.length : 0;
    return { data: buf.subarray(0, end).toString('utf8'), offset: offset + end };
  }

  /** `<attempt> <slurm job id>` lines of the job-id file: what earlier launches submitted. */
  private async recordedJobIds(cluster: SlurmCluster, dir: string): Promise<Map<number, string>> {
    const text = (await cluster.ssh.readFile(posix.join(dir, REMOTE_FILES.jobIds)))?.toString('utf8') ?? '';
    const ids = new Map<number, string>();
    for (const line of text.split('\n')) {
      const m = /^(\d+) (\d+)$/.exec(line.trim());
      if (m) ids.set(Number(m[1]), m[2] as string);
    }
    return ids;
  }

  private async recordJobId(cluster: SlurmCluster, dir: string, attempt: number, slurmJobId: string): Promise<void> {
    const file = shellQuote(posix.join(dir, REMOTE_FILES.jobIds));
    const line = `${attempt} ${slurmJobId}`;
    const res = await cluster.ssh.exec(`grep -qx ${shellQuote(line)} ${file} 2>/dev/null || echo ${shellQuote(line)} >> ${file}`);
    if (res.code !== 0) throw new SlurmTransientError(`cannot record Slurm job ${slurmJobId} in ${dir}: ${res.stderr.trim()}`);
  }
}

function clusterOf(connection: SlurmConnection): SlurmCluster {
  return new SlurmCluster(sshSession(sshOptionsOf(connection)));
}
