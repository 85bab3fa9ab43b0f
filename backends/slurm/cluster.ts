/**
 * A Slurm cluster seen through one SSH session: submit a script, find a job by name, poll it, cancel it,
 * read a log tail. Controller outages ("Unable to contact slurm controller") and SSH outages surface as
 * `SlurmTransientError`, so callers wait and ask again instead of failing a task.
 */
import { posix } from 'node:path';
import { shellQuote } from '../../common/shell.js';
import { SshConnectionError, type SshSession } from './ssh.js';
import { isTransientSlurmError, parsePoll, pollCommand, SLURM_JOB_ID_RE, type PollReading } from './states.js';

/** The controller or the link to it is down: ask again later. */
export class SlurmTransientError extends Error {
  override readonly name = 'SlurmTransientError';
}
/** Slurm refused the request (bad partition, account, option): retrying will not help. */
export class SlurmRequestError extends Error {
  override readonly name = 'SlurmRequestError';
}

/** Slurm commands wait ~10 s for a controller that is down, scontrol up to ~20 s. */
const COMMAND_TIMEOUT_MS = 60_000;

export class SlurmCluster {
  constructor(readonly ssh: SshSession) {}

  /** `sbatch --parsable <script>` in the script's directory; the new job's id. */
  async submit(scriptPath: string): Promise<string> {
    const res = await this.run(`cd ${shellQuote(posix.dirname(scriptPath))} && sbatch --parsable ${shellQuote(scriptPath)}`);
    const id = res.stdout.trim().split(';')[0] ?? '';
    if (res.code === 0 && SLURM_JOB_ID_RE.test(id)) return id;
    const message = `${res.stderr}${res.stdout}`.trim();
    if (isTransientSlurmError(message)) throw new SlurmTransientError(`sbatch on ${this.ssh.target}: ${message}`);
    throw new SlurmRequestError(`sbatch on ${this.ssh.target} refused ${scriptPath}: ${message || `exit code ${res.code}`}`);
  }

  /** Ids of the jobs with this name that the controller still knows (live, or finished within MinJobAge), oldest first. */
  async jobsNamed(name: string): Promise<{ id: string; state: string }[]> {
    const res = await this.run(`squeue --noheader --states=all --name=${shellQuote(name)} --format='%i|%T'`);
    if (res.code !== 0) this.raise('squeue', res.stderr);
    return res.stdout
      .split('\n')
      .map((line) => line.trim().split('|'))
      .filter((f): f is [string, string] => SLURM_JOB_ID_RE.test(f[0] ?? '') && Boolean(f[1]))
      .map(([id, state]) => ({ id, state }))
      .sort((a, b) => Number(a.id) - Number(b.id));
  }

  async poll(slurmJobId: string, remoteJobDir: string): Promise<PollReading> {
    try {
      const res = await this.ssh.exec(pollCommand(slurmJobId, remoteJobDir), { timeoutMs: COMMAND_TIMEOUT_MS });
      return parsePoll(res.stdout, slurmJobId);
    } catch (err) {
      if (err instanceof SshConnectionError) return { kind: 'transient', message: err.message };
      throw err;
    }
  }

  /** `scancel`; Slurm answers 0 even for unknown ids, so callers confirm with a poll. */
  async cancel(slurmJobId: string): Promise<void> {
    if (!SLURM_JOB_ID_RE.test(slurmJobId)) throw new Error(`not a Slurm job id: ${slurmJobId}`);
    const res = await this.run(`scancel ${slurmJobId}`);
    if (res.code !== 0) this.raise('scancel', res.stderr);
  }

  /** The last `bytes` of a remote file ('' when it does not exist). */
  async tail(remotePath: string, bytes = 4000): Promise<string> {
    const res = await this.run(`tail -c ${Math.max(1, Math.floor(bytes))} ${shellQuote(remotePath)} 2>/dev/null || true`);
    return res.stdout;
  }

  private async run(command: string) {
    try {
      return await this.ssh.exec(command, { timeoutMs: COMMAND_TIMEOUT_MS });
    } catch (err) {
      if (err instanceof SshConnectionError) throw new SlurmTransientError(err.message);
      throw err;
    }
  }

  private raise(what: string, stderr: string): never {
    const message = `${what} on ${this.ssh.target}: ${stderr.trim()}`;
    if (isTransientSlurmError(stderr)) throw new SlurmTransientError(message);
    throw new SlurmRequestError(message);
  }
}
