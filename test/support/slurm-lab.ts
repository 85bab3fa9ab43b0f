/**
 * The loopback Slurm + sshd of scripts/services/slurm.sh, as the tests see it: its connection facts
 * (connection.json). Suites that need it run when EVALFLOW_E2E=1 (then a missing cluster is a
 * failure) or when the cluster is up on this machine.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';
import { packageRoot } from '../../common/paths.js';
import { freePort } from '../../common/ports.js';

const FACTS_FILE = join(process.env.EVALFLOW_SLURM_DIR ?? '/tmp/evalflow-slurm', 'connection.json');

const LabSchema = z.object({
  host: z.string(),
  port: z.number().int(),
  user: z.string(),
  keyPath: z.string(),
  publicKeyPath: z.string(),
  hostKey: z.string(),
  knownHostsPath: z.string(),
  home: z.string(),
  scratchDir: z.string(),
  partition: z.string(),
  nodePath: z.string(),
  sshd: z.object({ binary: z.string(), config: z.string(), pidFile: z.string() }),
  pidFiles: z.object({ slurmctld: z.string(), slurmd: z.string(), slurmdbd: z.string(), sshd: z.string() }),
});
export type SlurmLab = z.infer<typeof LabSchema>;

/** Whether the Slurm suites run here: always under EVALFLOW_E2E=1, otherwise when the lab is up. */
export const slurmSuitesEnabled = process.env.EVALFLOW_E2E === '1' || existsSync(FACTS_FILE);

/** The lab's facts; throws (fails the suite) when the cluster was not brought up. */
export function slurmLab(): SlurmLab {
  if (!existsSync(FACTS_FILE)) {
    throw new Error(`no loopback Slurm: ${FACTS_FILE} is missing. Run \`sudo scripts/services/slurm.sh up\` (.ci/run does).`);
  }
  return LabSchema.parse(JSON.parse(readFileSync(FACTS_FILE, 'utf8')));
}

/** `scripts/services/slurm.sh up`: starts whatever lab daemon is not running (idempotent). */
export function labUp(): void {
  const res = spawnSync('bash', [join(packageRoot(), 'scripts', 'services', 'slurm.sh'), 'up'], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`slurm.sh up failed: ${res.stderr}`);
}

/**
 * A second sshd of the lab's configuration on a free port, owned by the test: it can be stopped and
 * restarted (an SSH outage) without touching the shared one on port 2222.
 */
export class PrivateSshd {
  private proc: ChildProcess | undefined;
  private constructor(
    private readonly lab: SlurmLab,
    readonly port: number,
  ) {}

  static async start(lab: SlurmLab): Promise<PrivateSshd> {
    const sshd = new PrivateSshd(lab, await freePort());
    await sshd.resume();
    return sshd;
  }

  async resume(): Promise<void> {
    const pidFile = `/tmp/evalflow-test-sshd-${this.port}.pid`;
    this.proc = spawn(this.lab.sshd.binary, ['-D', '-e', '-f', this.lab.sshd.config, '-p', String(this.port), '-o', `PidFile=${pidFile}`], {
      stdio: 'ignore',
    });
    for (let i = 0; i < 100; i++) {
      if (await canConnect(this.port)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`private sshd on port ${this.port} did not start`);
  }

  /** Stops the listener and every connection it serves (their per-connection sshd children too). */
  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (!proc?.pid) return;
    const children = spawnSync('pgrep', ['-P', String(proc.pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    proc.kill('SIGTERM');
    for (const child of children) {
      try {
        process.kill(Number(child), 'SIGTERM');
      } catch {
        // already gone
      }
    }
    await new Promise<void>((r) => (proc.exitCode !== null || proc.signalCode !== null ? r() : proc.once('exit', () => r())));
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}
