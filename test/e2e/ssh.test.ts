/**
 * The SSH layer against the real sshd of the loopback lab (scripts/services/slurm.sh): key and agent
 * authentication, host keys (known_hosts, pinned, changed, unknown, trust on first use), one reused
 * connection, reconnection after an outage, SFTP of files and trees, 0600 secret files, quoting.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSshSessions, SshAuthError, SshHostKeyError, SshSession, sshSession, type SshOptions } from '../../backends/slurm/ssh.js';
import { shellQuote } from '../../common/shell.js';
import { tempDir } from '../support/run-helpers.js';
import { PrivateSshd, slurmLab, slurmSuitesEnabled, type SlurmLab } from '../support/slurm-lab.js';

describe.runIf(slurmSuitesEnabled)('SSH layer on the loopback sshd', () => {
  let lab: SlurmLab;
  let base: SshOptions;
  let dir: string;
  let remoteDir: string;

  beforeAll(async () => {
    lab = slurmLab();
    base = { host: lab.host, port: lab.port, user: lab.user, keyPath: lab.keyPath, knownHostsPath: lab.knownHostsPath, agentSocket: '' };
    dir = tempDir('evalflow-ssh-');
    remoteDir = `${lab.scratchDir}/ssh-test-${process.pid}`;
  });
  afterAll(async () => {
    await sshSession(base).exec(`rm -rf ${shellQuote(remoteDir)}`);
    closeSshSessions();
    rmSync(dir, { recursive: true, force: true });
  });

  it('authenticates with the key, verifies the host against known_hosts and reuses one connection', async () => {
    const session = sshSession(base);
    expect(sshSession({ ...base })).toBe(session);
    const results = await Promise.all(Array.from({ length: 12 }, () => session.exec('id -un')));
    expect(results.map((r) => r.stdout.trim())).toEqual(Array(12).fill(lab.user));
    expect(session.connectCount).toBe(1);
    const failing = await session.exec('echo oops >&2; exit 7');
    expect(failing).toEqual({ code: 7, stdout: '', stderr: 'oops\n' });
  });

  it('accepts a pinned host key and refuses a different pinned key', async () => {
    const pinned = new SshSession({ ...base, knownHostsPath: '/nonexistent', hostKeys: [lab.hostKey] });
    expect((await pinned.exec('true')).code).toBe(0);
    pinned.dispose();
    const other = readFileSync(lab.publicKeyPath, 'utf8'); // a valid ed25519 key, but not the host's
    const wrong = new SshSession({ ...base, hostKeys: [other], connectAttempts: 3 });
    const started = Date.now();
    await expect(wrong.exec('true')).rejects.toThrow(SshHostKeyError);
    await expect(wrong.exec('true')).rejects.toThrow(/does not match the pinned key.*SHA256:/s);
    expect(Date.now() - started).toBeLessThan(5000); // refused at once, never retried with backoff
    wrong.dispose();
  });

  it('refuses a changed key in known_hosts even with trust on first use', async () => {
    const knownHosts = join(dir, 'known_hosts_changed');
    writeFileSync(knownHosts, `[${lab.host}]:${lab.port} ${readFileSync(lab.publicKeyPath, 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
    const session = new SshSession({ ...base, knownHostsPath: knownHosts, trustOnFirstUse: true });
    await expect(session.exec('true')).rejects.toThrow(/has CHANGED.*ssh-keygen -R/s);
    session.dispose();
  });

  it('refuses an unknown host unless trust on first use is asked for, then records the key', async () => {
    const knownHosts = join(dir, 'known_hosts_empty');
    const refusing = new SshSession({ ...base, knownHostsPath: knownHosts });
    await expect(refusing.exec('true')).rejects.toThrow(/is unknown.*trust_on_first_use/s);
    refusing.dispose();
    expect(existsSync(knownHosts)).toBe(false);

    const trusting = new SshSession({ ...base, knownHostsPath: knownHosts, trustOnFirstUse: true });
    expect((await trusting.exec('true')).code).toBe(0);
    trusting.dispose();
    expect(readFileSync(knownHosts, 'utf8')).toBe(`[${lab.host}]:${lab.port} ${lab.hostKey}\n`);
    const known = new SshSession({ ...base, knownHostsPath: knownHosts });
    expect((await known.exec('true')).code).toBe(0);
    known.dispose();
  });

  it('authenticates through ssh-agent, and reports a refused key as an auth error', async () => {
    const socket = join(dir, 'agent.sock');
    const agent = spawnSync('ssh-agent', ['-a', socket], { encoding: 'utf8' });
    const pid = /SSH_AGENT_PID=(\d+)/.exec(agent.stdout)?.[1];
    expect(pid, agent.stderr).toBeDefined();
    try {
      expect(spawnSync('ssh-add', [lab.keyPath], { env: { ...process.env, SSH_AUTH_SOCK: socket } }).status).toBe(0);
      const viaAgent = new SshSession({ ...base, keyPath: undefined, agentSocket: socket });
      expect((await viaAgent.exec('id -un')).stdout.trim()).toBe(lab.user);
      viaAgent.dispose();
    } finally {
      process.kill(Number(pid), 'SIGTERM');
    }
    const strangerKey = join(dir, 'stranger');
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', strangerKey]);
    const stranger = new SshSession({ ...base, keyPath: strangerKey });
    await expect(stranger.exec('true')).rejects.toThrow(SshAuthError);
    stranger.dispose();
  });

  it('uploads and downloads files and trees over SFTP, and writes secret files 0600 and atomically', async () => {
    const session = sshSession(base);
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'a', 'b'), { recursive: true });
    writeFileSync(join(tree, 'top.txt'), 'top\n');
    writeFileSync(join(tree, 'a', 'b', 'deep.bin'), Buffer.alloc(300_000, 7));
    writeFileSync(join(tree, 'run.sh'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
    await session.upload(tree, `${remoteDir}/up`);
    expect((await session.exec(`cd ${shellQuote(remoteDir)}/up && ./run.sh && wc -c < a/b/deep.bin`)).stdout).toBe('ran\n300000\n');

    const back = join(dir, 'back');
    const files = await session.download(`${remoteDir}/up`, back, { exclude: (rel) => rel === 'top.txt' });
    expect(files.map((f) => f.slice(back.length + 1)).sort()).toEqual(['a/b/deep.bin', 'run.sh']);
    expect(readFileSync(join(back, 'a', 'b', 'deep.bin')).equals(Buffer.alloc(300_000, 7))).toBe(true);
    await session.download(`${remoteDir}/up/top.txt`, join(dir, 'top.txt'));
    expect(readFileSync(join(dir, 'top.txt'), 'utf8')).toBe('top\n');
    expect(statSync(join(back, 'run.sh')).size).toBeGreaterThan(0);

    const secrets = `${remoteDir}/.secrets.env`;
    await session.exec(`touch ${shellQuote(secrets)} && chmod 644 ${shellQuote(secrets)}`);
    await session.writeFile(secrets, "export API_KEY='s3cr3t'\n", 0o600);
    const check = await session.exec(`stat -c %a ${shellQuote(secrets)}; . ${shellQuote(secrets)} && printf %s "$API_KEY"`);
    expect(check.stdout).toBe('600\ns3cr3t');
    expect(await session.readFile(secrets)).toEqual(Buffer.from("export API_KEY='s3cr3t'\n"));
    expect(await session.readFile(`${remoteDir}/missing`)).toBeUndefined();
  });

  it('passes shell metacharacters through exec as data, never as code', async () => {
    const session = sshSession(base);
    const canary = `${remoteDir}/canary`;
    const values = [
      `$(touch ${canary})`,
      `\`touch ${canary}\``,
      `; touch ${canary}`,
      `' ; touch ${canary} ; '`,
      `" ; touch ${canary} ; "`,
      `&& touch ${canary}`,
      `| touch ${canary}`,
      `\ntouch ${canary}\n`,
      `> ${canary}`,
      '$HOME *',
      '#!/bin/sh',
    ];
    for (const value of values) {
      const res = await session.exec(`printf '%s' ${shellQuote(value)}`);
      expect(res.stdout).toBe(value);
    }
    expect((await session.exec(`test -e ${shellQuote(canary)}`)).code).toBe(1);
  });

  it('reconnects with backoff after the server went away and came back', async () => {
    const sshd = await PrivateSshd.start(lab);
    const session = new SshSession({ ...base, port: sshd.port, hostKeys: [lab.hostKey], connectAttempts: 8, backoffBaseMs: 250, backoffMaxMs: 2000 });
    try {
      expect((await session.exec('echo one')).stdout).toBe('one\n');
      await sshd.stop();
      const pending = session.exec('echo two');
      setTimeout(() => void sshd.resume(), 2000);
      expect((await pending).stdout).toBe('two\n');
      expect(session.connectCount).toBe(2);
    } finally {
      session.dispose();
      await sshd.stop();
    }
  });
});
