/**
 * Generated sbatch scripts and state reading on the real loopback Slurm (scripts/services/slurm.sh),
 * over SSH as the lab user: values with shell metacharacters stay data, the co-scheduled deployment
 * is waited for and torn down, and every ending is classified from what squeue, sacct and scontrol say,
 * including while slurmdbd or slurmctld is down.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SlurmCluster } from '../../backends/slurm/cluster.js';
import { REMOTE_FILES, renderSbatchScript, renderSecretsFile, slurmJobName, type SbatchScriptSpec } from '../../backends/slurm/script.js';
import { closeSshSessions, sshSession, type SshSession } from '../../backends/slurm/ssh.js';
import { classifyJob, type PollReading } from '../../backends/slurm/states.js';
import { shellQuote } from '../../common/shell.js';
import { SlurmExecutionSchema } from '../../config/schema.js';
import { freePort } from '../../common/ports.js';
import { labUp, slurmLab, slurmSuitesEnabled, type SlurmLab } from '../support/slurm-lab.js';

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Metacharacters in paths, names, flags and env values: each must arrive as data, none may run. */
const CANARY = '/tmp/evalflow-slurm-canary';
const NASTY = [
  `$(touch ${CANARY})`,
  `\`touch ${CANARY}\``,
  `; touch ${CANARY}`,
  `' ; touch ${CANARY} #`,
  `" ; touch ${CANARY} #`,
  `&& touch ${CANARY}`,
  `| touch ${CANARY}`,
  `> ${CANARY}`,
  '$HOME ${PATH} *',
  '# --time=00:00:01',
  'back\\slash "quoted" \'single\'',
  'ünïcødé ✓ tab\there',
];

describe.runIf(slurmSuitesEnabled)('sbatch scripts and job states on the loopback Slurm', () => {
  let lab: SlurmLab;
  let ssh: SshSession;
  let cluster: SlurmCluster;
  let root: string;
  let counter = 0;
  const invocation = randomBytes(8).toString('hex');

  beforeAll(async () => {
    lab = slurmLab();
    ssh = sshSession({ host: lab.host, port: lab.port, user: lab.user, keyPath: lab.keyPath, hostKeys: [lab.hostKey] });
    cluster = new SlurmCluster(ssh);
    root = `${lab.scratchDir}/jobs-test-${process.pid}`;
    await ssh.exec(`rm -f ${CANARY}`);
  });
  afterAll(async () => {
    await ssh?.exec(`rm -rf ${shellQuote(root)}`);
    closeSshSessions();
  });

  const settings = (over: Record<string, unknown> = {}) =>
    SlurmExecutionSchema.parse({ type: 'slurm', hostname: 'h', username: 'u', account: null, output_dir: '/x', partition: lab.partition, runtime: 'none', walltime: '00:05:00', ...over });

  /** Writes the job's files over SFTP and submits it; returns the Slurm job id and the dir. */
  async function submit(parts: Partial<SbatchScriptSpec> & Pick<SbatchScriptSpec, 'harness'>, secrets: Record<string, string> = {}, deploymentScript?: string) {
    counter++;
    const jobId = `${invocation}.${counter}`;
    const dir = parts.remoteJobDir ?? `${root}/job${counter}`;
    const spec: SbatchScriptSpec = { jobId, attempt: 1, remoteJobDir: dir, settings: settings(), envNames: Object.keys(secrets), generator: 'evalflow test', ...parts };
    await ssh.mkdirp(posix.join(dir, 'logs'));
    await ssh.mkdirp(posix.join(dir, 'artifacts'));
    await ssh.writeFile(posix.join(dir, REMOTE_FILES.secrets), renderSecretsFile(secrets), 0o600);
    if (deploymentScript) await ssh.writeFile(posix.join(dir, REMOTE_FILES.deployment), deploymentScript);
    await ssh.writeFile(posix.join(dir, REMOTE_FILES.script), renderSbatchScript(spec), 0o755);
    const id = await cluster.submit(posix.join(dir, REMOTE_FILES.script));
    return { id, dir, spec };
  }

  async function waitForEnd(id: string, dir: string, timeoutMs = 60_000): Promise<PollReading & { kind: 'found' | 'not-found' }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const reading = await cluster.poll(id, dir);
      if (reading.kind !== 'transient') {
        const outcome = classifyJob(reading.kind === 'found' ? reading.job : undefined, { builtinHarness: true, stageExit: null, resultsPresent: reading.files.resultsPresent });
        if (outcome.kind !== 'queued' && outcome.kind !== 'running') return reading;
      }
      if (Date.now() > deadline) throw new Error(`job ${id} did not end within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  it('keeps metacharacters in paths, names, flags and env values as data', async () => {
    const dir = `${root}/dir ${NASTY.slice(0, 4).join(' ')}`;
    const secrets = Object.fromEntries(NASTY.map((v, i) => [`NASTY_${i}`, v]));
    const { id, spec } = await submit(
      {
        remoteJobDir: dir,
        settings: settings({ sbatch_comment: NASTY.join(' '), sbatch_extra_flags: { 'mail-type': 'END', 'mail-user': NASTY[0] } }),
        harness: { argv: ['/bin/bash', '-c', 'printf "%s\\n" "$@"; for i in $(seq 0 11); do v=NASTY_$i; printf "%s\\n" "${!v}"; done', 'argv0', ...NASTY] },
      },
      secrets,
    );
    const reading = await waitForEnd(id, dir);
    expect(reading).toMatchObject({ kind: 'found', job: { state: 'COMPLETED', exitCode: 0 } });
    const log = (await ssh.readFile(posix.join(dir, REMOTE_FILES.clientLog)))?.toString('utf8') ?? '';
    expect(log.split('\n').slice(1, 1 + 2 * NASTY.length)).toEqual([...NASTY, ...NASTY].map((v) => v));
    const comment = await ssh.exec(`squeue --noheader --states=all --jobs=${id} --Format='Comment:|,Name:|'`);
    expect(comment.stdout.trim()).toBe(`${NASTY.join(' ')}|${slurmJobName(spec.settings, spec.jobId, 1)}|`);
    expect((await ssh.exec(`scontrol show job ${id}`)).stdout).toContain(`MailUser=${NASTY[0]}`);
    expect((await ssh.exec(`test -e ${CANARY}`)).code).toBe(1);
    // The secret values are in the 0600 file only, never in the script.
    const script = (await ssh.readFile(posix.join(dir, REMOTE_FILES.script)))?.toString('utf8') ?? '';
    expect(script).not.toContain('NASTY_0=');
    expect((await ssh.exec(`stat -c %a ${shellQuote(posix.join(dir, REMOTE_FILES.secrets))}`)).stdout.trim()).toBe('600');
  });

  it('starts a co-scheduled deployment, waits until it answers, and stops it with the job', async () => {
    const port = await freePort();
    const server = `exec ${lab.nodePath} -e "require('http').createServer((q, r) => r.end('pong ' + q.url)).listen(${port}, '127.0.0.1', () => console.log('listening'))"\n`;
    const { id, dir } = await submit(
      {
        deployment: { healthUrl: `http://127.0.0.1:${port}/health` },
        harness: { argv: ['curl', '-sS', `http://127.0.0.1:${port}/from-harness`] },
      },
      {},
      `sleep 2\n${server}`,
    );
    const reading = await waitForEnd(id, dir);
    expect(reading).toMatchObject({ kind: 'found', job: { state: 'COMPLETED' } });
    expect((await ssh.readFile(posix.join(dir, REMOTE_FILES.clientLog)))?.toString()).toContain('pong /from-harness');
    expect((await ssh.readFile(posix.join(dir, REMOTE_FILES.serverLog)))?.toString()).toContain('listening');
    expect((await ssh.exec(`curl -s -o /dev/null http://127.0.0.1:${port}/`)).code).not.toBe(0); // torn down with the job

    const dead = await submit({ deployment: { healthUrl: `http://127.0.0.1:${port}/health` }, harness: { argv: ['true'] } }, {}, 'exit 1\n');
    const deadReading = await waitForEnd(dead.id, dead.dir);
    expect(deadReading.kind === 'found' && classifyJob(deadReading.job, { builtinHarness: true, stageExit: null, resultsPresent: false })).toMatchObject({
      kind: 'failed',
      exitCode: 96,
      reason: expect.stringMatching(/deployment exited before it was ready/),
    });
  });

  it('classifies exit codes, an external scancel, and finds jobs by name', async () => {
    const failing = await submit({ harness: { argv: ['bash', '-c', 'exit 3'] } });
    const failed = await waitForEnd(failing.id, failing.dir);
    expect(failed.kind === 'found' && classifyJob(failed.job, { builtinHarness: true, stageExit: null, resultsPresent: false })).toMatchObject({ kind: 'failed', permanent: true, exitCode: 3 });

    const sleeping = await submit({ harness: { argv: ['sleep', '300'] } });
    const name = slurmJobName(sleeping.spec.settings, sleeping.spec.jobId, 1);
    expect(await cluster.jobsNamed(name)).toEqual([{ id: sleeping.id, state: expect.stringMatching(/PENDING|RUNNING/) }]);
    await ssh.exec(`scancel ${sleeping.id}`); // as a user would, outside evalflow
    const cancelled = await waitForEnd(sleeping.id, sleeping.dir);
    expect(cancelled.kind === 'found' && classifyJob(cancelled.job, { builtinHarness: true, stageExit: null, resultsPresent: false })).toMatchObject({
      kind: 'cancelled',
      reason: expect.stringMatching(/cancelled by \d+/),
    });
    expect(await cluster.jobsNamed('no-such-job-name')).toEqual([]);
  });

  it('falls back to scontrol while slurmdbd is down, and reports a stopped controller as transient', async () => {
    const { id, dir } = await submit({ harness: { argv: ['true'] } });
    await waitForEnd(id, dir);
    const pidOf = (file: string) => Number(readFileSync(file, 'utf8').trim());
    // slurm.sh up starts only daemons that are gone: wait for each to exit, not just for the signal.
    const stop = async (pidFile: string) => {
      const pid = pidOf(pidFile);
      process.kill(pid, 'SIGTERM');
      for (const deadline = Date.now() + 60_000; processExists(pid); ) {
        if (Date.now() > deadline) throw new Error(`pid ${pid} (${pidFile}) still running 60 s after SIGTERM`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    await stop(lab.pidFiles.slurmdbd);
    try {
      const reading = await cluster.poll(id, dir);
      expect(reading).toMatchObject({ kind: 'found', job: { state: 'COMPLETED', exitCode: 0, source: 'scontrol' } });
    } finally {
      labUp();
    }
    await stop(lab.pidFiles.slurmctld); // SIGTERM only: slurmctld saves its state
    try {
      const reading = await cluster.poll(id, dir);
      expect(reading).toMatchObject({ kind: 'transient', message: expect.stringMatching(/Unable to contact slurm controller/) });
    } finally {
      labUp();
    }
    expect(await cluster.poll(id, dir)).toMatchObject({ kind: 'found', job: { state: 'COMPLETED', source: 'sacct' } });
  });
});
