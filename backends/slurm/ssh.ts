/**
 * The SSH layer of the Slurm executor, on npm `ssh2`: key authentication (a key file and/or the agent
 * at SSH_AUTH_SOCK), verified host keys (host-keys.ts), keepalive, one reused connection per
 * (host, port, user) in a worker process, reconnection with backoff, exec, and SFTP transfers of files
 * and directories. Commands are built by the caller with common/shell.ts; secrets never travel on a
 * command line: `writeFile` with mode 0600 puts them in a file that scripts source.
 */
import { PermanentError } from '../../core/errors.js';
import { appendFileSync, createReadStream, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { Client, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import {
  expectedKeyTypes,
  hostKeyAlgorithmsFor,
  knownHostsLine,
  parseKnownHosts,
  parsePublicKey,
  verifyHostKey,
  type HostKeyPolicy,
} from './host-keys.js';

export interface SshOptions {
  host: string;
  port: number;
  user: string;
  /** Private key file (OpenSSH or PEM, unencrypted; use the agent for encrypted keys). */
  keyPath?: string;
  /** ssh-agent socket; default SSH_AUTH_SOCK. */
  agentSocket?: string;
  /** Pinned host keys (`ssh-ed25519 AAAA…`); when set, known_hosts is not consulted. */
  hostKeys?: readonly string[];
  /** Default ~/.ssh/known_hosts. */
  knownHostsPath?: string;
  /** Accept and record the key of a host that has none in known_hosts (never a changed key). */
  trustOnFirstUse?: boolean;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  readyTimeoutMs?: number;
  /** Reconnection: attempts per operation and the backoff between them (doubling, capped). */
  connectAttempts?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Most channels (exec/SFTP) open at once on the one connection (sshd's MaxSessions is 10). */
  maxChannels?: number;
}

export interface ExecResult {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

/** The host key was refused: never retried, never a transient failure. */
export class SshHostKeyError extends PermanentError {
  override readonly name = 'SshHostKeyError';
}
/** The server refused every offered credential: retrying will not help. */
export class SshAuthError extends PermanentError {
  override readonly name = 'SshAuthError';
}
/** The connection could not be made or was lost: retrying later may help. */
export class SshConnectionError extends Error {
  override readonly name = 'SshConnectionError';
}

/** No channel could be opened for a command: nothing ran, so it is safe to retry. */
class ChannelOpenError extends SshConnectionError {}

const SFTP_FAILURE = 4;
const SFTP_NO_SUCH_FILE = 2;

export class SshSession {
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private sftpChannel: Promise<SFTPWrapper> | undefined;
  private activeChannels = 0;
  private readonly waiting: (() => void)[] = [];
  private closed = false;
  /** Connections made so far (1 = never reconnected); for tests and logs. */
  connectCount = 0;

  constructor(readonly options: SshOptions) {}

  get target(): string {
    return `${this.options.user}@${this.options.host}:${this.options.port}`;
  }

  /** Runs a command with the remote user's login shell; the exit code is returned, not thrown. */
  async exec(command: string, opts: { timeoutMs?: number; stdin?: string } = {}): Promise<ExecResult> {
    // A channel that could not be opened ran nothing: retried (sshd may still count a just-closed channel
    // against MaxSessions, or the connection died before its close event arrived).
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.execOnce(command, opts);
      } catch (err) {
        if (!(err instanceof ChannelOpenError) || attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  }

  private async execOnce(command: string, opts: { timeoutMs?: number; stdin?: string }): Promise<ExecResult> {
    return this.withChannel(async (client) => {
      return new Promise<ExecResult>((resolve, reject) => {
        client.exec(command, (err, stream) => {
          if (err) {
            // No channel, so the command did not run: retried. A connection that cannot open one is dropped first.
            if (!/open failed/i.test(err.message)) this.drop(client);
            return reject(new ChannelOpenError(`exec on ${this.target} failed: ${err.message}`));
          }
          let stdout = '';
          let stderr = '';
          let settled = false;
          const timer =
            opts.timeoutMs === undefined
              ? undefined
              : setTimeout(() => {
                  settled = true;
                  stream.close();
                  reject(new SshConnectionError(`command on ${this.target} did not finish within ${opts.timeoutMs} ms`));
                }, opts.timeoutMs);
          stream.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
          stream.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
          stream.on('close', (code: number | null, signal?: string) => {
            if (timer) clearTimeout(timer);
            if (settled) return;
            settled = true;
            // No exit status: the connection went away under the command.
            if (code === null || code === undefined) {
              if (signal) resolve({ code: null, signal, stdout, stderr });
              else reject(new SshConnectionError(`connection to ${this.target} lost while running a command`));
              return;
            }
            resolve(signal ? { code, signal, stdout, stderr } : { code, stdout, stderr });
          });
          if (opts.stdin !== undefined) stream.end(opts.stdin);
          else stream.end();
        });
      });
    });
  }

  /** Writes `content` to a remote file atomically (temp file + rename), created with `mode` from the start. */
  async writeFile(remotePath: string, content: string | Buffer, mode = 0o644): Promise<void> {
    const sftp = await this.sftp();
    const tmp = `${remotePath}.${process.pid}.${Date.now()}.tmp`;
    await new Promise<void>((resolve, reject) => {
      const out = sftp.createWriteStream(tmp, { flags: 'w', mode });
      out.on('error', reject);
      out.on('close', () => resolve());
      out.end(content);
    }).catch((err: Error) => {
      throw this.sftpError(err, `write ${tmp}`);
    });
    await this.sftpCall<void>((cb) => sftp.chmod(tmp, mode, cb), `chmod ${tmp}`);
    await this.rename(sftp, tmp, remotePath);
  }

  /** A remote file's content, or undefined when it does not exist. */
  async readFile(remotePath: string): Promise<Buffer | undefined> {
    const sftp = await this.sftp();
    return new Promise<Buffer | undefined>((resolve, reject) => {
      sftp.readFile(remotePath, (err: (Error & { code?: number }) | null | undefined, data: Buffer) => {
        if (err && err.code === SFTP_NO_SUCH_FILE) resolve(undefined);
        else if (err) reject(this.sftpError(err, `read ${remotePath}`));
        else resolve(data);
      });
    });
  }

  /** Up to `length` bytes of a remote file from `offset` (empty past its end or when it does not exist). */
  async readRange(remotePath: string, offset: number, length: number): Promise<Buffer> {
    const sftp = await this.sftp();
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const stream = sftp.createReadStream(remotePath, { start: offset, end: offset + length - 1 });
      stream.on('data', (d: Buffer) => chunks.push(d));
      stream.on('error', (err: Error & { code?: number }) => (err.code === SFTP_NO_SUCH_FILE ? resolve(Buffer.alloc(0)) : reject(this.sftpError(err, `read ${remotePath}`))));
      stream.on('end', () => resolve(Buffer.concat(chunks)));
    });
  }

  /** `mkdir -p` over SFTP. */
  async mkdirp(remoteDir: string, mode = 0o755): Promise<void> {
    const sftp = await this.sftp();
    const parts = posix.normalize(remoteDir).split('/').filter(Boolean);
    let path = remoteDir.startsWith('/') ? '' : '.';
    for (const part of parts) {
      path = `${path}/${part}`;
      const exists = await this.statKind(sftp, path);
      if (exists === 'dir') continue;
      if (exists === 'file') throw new Error(`${this.target}:${path} exists and is not a directory`);
      await new Promise<void>((resolve, reject) =>
        sftp.mkdir(path, { mode }, (err) => {
          // Lost a race with another creator: fine if it is a directory now.
          if (err && (err as { code?: number }).code !== SFTP_FAILURE) reject(this.sftpError(err, `mkdir ${path}`));
          else resolve();
        }),
      );
    }
  }

  /** Uploads a file or a directory tree (modes kept), creating remote parents. */
  async upload(localPath: string, remotePath: string): Promise<void> {
    const sftp = await this.sftp();
    const stat = statSync(localPath);
    if (stat.isDirectory()) {
      await this.mkdirp(remotePath, stat.mode & 0o777);
      for (const entry of readdirSync(localPath)) await this.upload(join(localPath, entry), posix.join(remotePath, entry));
      return;
    }
    await this.mkdirp(posix.dirname(remotePath));
    await new Promise<void>((resolve, reject) => {
      const out = sftp.createWriteStream(remotePath, { flags: 'w', mode: stat.mode & 0o777 });
      out.on('error', (err: Error) => reject(this.sftpError(err, `upload ${remotePath}`)));
      out.on('close', () => resolve());
      createReadStream(localPath).on('error', reject).pipe(out);
    });
  }

  /** Downloads a file or a directory tree into `localPath`; returns the files written. */
  async download(remotePath: string, localPath: string, opts: { exclude?: (relPath: string) => boolean } = {}): Promise<string[]> {
    const sftp = await this.sftp();
    const written: string[] = [];
    const walk = async (remote: string, local: string, rel: string): Promise<void> => {
      if (rel && opts.exclude?.(rel)) return;
      const kind = await this.statKind(sftp, remote);
      if (kind === undefined) throw new Error(`${this.target}:${remote} does not exist`);
      if (kind === 'dir') {
        mkdirSync(local, { recursive: true });
        const entries = await this.sftpCall<{ filename: string }[]>((cb) => sftp.readdir(remote, cb), `readdir ${remote}`);
        for (const e of entries.sort((a, b) => a.filename.localeCompare(b.filename))) {
          await walk(posix.join(remote, e.filename), join(local, e.filename), rel ? `${rel}/${e.filename}` : e.filename);
        }
        return;
      }
      mkdirSync(dirname(local), { recursive: true });
      await this.sftpCall<void>((cb) => sftp.fastGet(remote, local, cb), `download ${remote}`);
      written.push(local);
    };
    await walk(remotePath, localPath, '');
    return written;
  }

  /** Forgets a connection that no longer works (a later call connects again). */
  private drop(client: Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.sftpChannel = undefined;
    client.end();
  }

  /** Ends the connection; a later call connects again. */
  close(): void {
    this.sftpChannel = undefined;
    this.client?.end();
    this.client = undefined;
    this.connecting = undefined;
  }

  /** Ends the connection for good (used when the pool drops this session). */
  dispose(): void {
    this.closed = true;
    this.close();
  }

  private async sftp(): Promise<SFTPWrapper> {
    const client = await this.connection();
    if (!this.sftpChannel) {
      this.sftpChannel = new Promise<SFTPWrapper>((resolve, reject) =>
        client.sftp((err, sftp) => {
          if (err) return reject(new SshConnectionError(`SFTP on ${this.target} failed: ${err.message}`));
          sftp.on('close', () => {
            if (this.sftpChannel === current) this.sftpChannel = undefined;
          });
          resolve(sftp);
        }),
      );
      const current = this.sftpChannel;
      current.catch(() => {
        if (this.sftpChannel === current) this.sftpChannel = undefined;
      });
    }
    return this.sftpChannel;
  }

  private async statKind(sftp: SFTPWrapper, path: string): Promise<'dir' | 'file' | undefined> {
    return new Promise((resolve, reject) =>
      sftp.stat(path, (err, stats) => {
        if (err && (err as { code?: number }).code === SFTP_NO_SUCH_FILE) resolve(undefined);
        else if (err) reject(this.sftpError(err, `stat ${path}`));
        else resolve(stats.isDirectory() ? 'dir' : 'file');
      }),
    );
  }

  private async rename(sftp: SFTPWrapper, from: string, to: string): Promise<void> {
    // POSIX rename replaces the target atomically; plain SFTP rename fails when the target exists.
    await this.sftpCall<void>((cb) => sftp.ext_openssh_rename(from, to, cb), `rename ${from}`);
  }

  private sftpCall<T>(fn: (cb: (err: Error | null | undefined, value: T) => void) => void, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => fn((err, value) => (err ? reject(this.sftpError(err, what)) : resolve(value))));
  }

  private sftpError(err: Error, what: string): Error {
    if (!this.client) return new SshConnectionError(`SFTP ${what} on ${this.target}: connection lost (${err.message})`);
    return new Error(`SFTP ${what} on ${this.target}: ${err.message}`);
  }

  private async withChannel<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    const max = this.options.maxChannels ?? 6;
    while (this.activeChannels >= max) await new Promise<void>((r) => this.waiting.push(r));
    this.activeChannels++;
    try {
      return await fn(await this.connection());
    } finally {
      this.activeChannels--;
      this.waiting.shift()?.();
    }
  }

  /** The live connection, or a new one: retried with backoff on connection errors, never on key or auth errors. */
  private async connection(): Promise<Client> {
    if (this.closed) throw new Error(`SSH session ${this.target} was disposed`);
    if (this.client) return this.client;
    if (!this.connecting) {
      const attempt = this.connectWithBackoff();
      this.connecting = attempt;
      attempt.then(
        (c) => {
          if (this.connecting === attempt) this.client = c;
        },
        () => undefined,
      );
      attempt.finally(() => {
        if (this.connecting === attempt) this.connecting = undefined;
      }).catch(() => undefined);
    }
    return this.connecting;
  }

  private async connectWithBackoff(): Promise<Client> {
    const attempts = this.options.connectAttempts ?? 5;
    const base = this.options.backoffBaseMs ?? 500;
    const max = this.options.backoffMaxMs ?? 15_000;
    let lastError: Error | undefined;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, Math.min(max, base * 2 ** (i - 1))));
      try {
        return await this.connectOnce();
      } catch (err) {
        if (err instanceof SshHostKeyError || err instanceof SshAuthError) throw err;
        lastError = err as Error;
      }
    }
    throw new SshConnectionError(`cannot connect to ${this.target} after ${attempts} attempts: ${lastError?.message ?? 'unknown error'}`);
  }

  private connectOnce(): Promise<Client> {
    const o = this.options;
    const policy = hostKeyPolicy(o);
    const types = expectedKeyTypes(policy);
    let refusal: string | undefined;
    const config: ConnectConfig = {
      host: o.host,
      port: o.port,
      username: o.user,
      readyTimeout: o.readyTimeoutMs ?? 20_000,
      keepaliveInterval: o.keepaliveIntervalMs ?? 15_000,
      keepaliveCountMax: o.keepaliveCountMax ?? 3,
      hostVerifier: (key: Buffer) => {
        const verdict = verifyHostKey(policy, key);
        if (!verdict.ok) {
          refusal = verdict.message;
          return false;
        }
        if (verdict.how === 'trusted-on-first-use' && policy.knownHostsPath) {
          mkdirSync(dirname(policy.knownHostsPath), { recursive: true, mode: 0o700 });
          appendFileSync(policy.knownHostsPath, knownHostsLine(o.host, o.port, key), { mode: 0o600 });
        }
        return true;
      },
      ...(types.length ? { algorithms: { serverHostKey: hostKeyAlgorithmsFor(types) as never } } : {}),
    };
    if (o.keyPath) config.privateKey = readFileSync(o.keyPath);
    const agent = o.agentSocket ?? process.env.SSH_AUTH_SOCK;
    if (agent) config.agent = agent;
    if (!config.privateKey && !config.agent) {
      return Promise.reject(new SshAuthError(`no SSH credentials for ${this.target}: set execution.ssh.key_file or run an ssh-agent (SSH_AUTH_SOCK)`));
    }

    return new Promise<Client>((resolve, reject) => {
      const client = new Client();
      let ready = false;
      client.on('ready', () => {
        ready = true;
        this.connectCount++;
        resolve(client);
      });
      client.on('error', (err: Error & { level?: string }) => {
        if (ready) return; // a live connection's error is followed by 'close'
        if (refusal) reject(new SshHostKeyError(refusal));
        else if (err.level === 'client-authentication') {
          reject(new SshAuthError(`${this.target} refused the SSH key${o.keyPath ? ` ${o.keyPath}` : ''}${agent ? ' and the agent keys' : ''}: ${err.message}`));
        } else reject(new SshConnectionError(`cannot connect to ${this.target}: ${err.message}`));
      });
      client.on('close', () => {
        if (this.client === client) {
          this.client = undefined;
          this.sftpChannel = undefined;
        }
        if (!ready) reject(new SshConnectionError(`connection to ${this.target} closed during the handshake`));
      });
      client.connect(config);
    });
  }
}

function hostKeyPolicy(o: SshOptions): HostKeyPolicy {
  if (o.hostKeys?.length) {
    const pinned = o.hostKeys.map((text, i) => {
      const key = parsePublicKey(text);
      if (!key) throw new SshHostKeyError(`pinned host key #${i + 1} for ${o.host} is not a public key line like 'ssh-ed25519 AAAA…'`);
      return key;
    });
    return { host: o.host, port: o.port, pinned };
  }
  const knownHostsPath = o.knownHostsPath ?? join(homedir(), '.ssh', 'known_hosts');
  let text = '';
  try {
    text = readFileSync(knownHostsPath, 'utf8');
  } catch {
    // no file yet: every key is unknown
  }
  return { host: o.host, port: o.port, knownHosts: parseKnownHosts(text), knownHostsPath, trustOnFirstUse: o.trustOnFirstUse ?? false };
}

const pool = new Map<string, SshSession>();

/**
 * The worker's one session for (host, port, user) and these settings: connections are reused across
 * activities. (Different settings for the same target, e.g. another key, get a session of their own.)
 */
export function sshSession(options: SshOptions): SshSession {
  const key = `${options.user}@${options.host}:${options.port} ${JSON.stringify(options)}`;
  let session = pool.get(key);
  if (!session) {
    session = new SshSession(options);
    pool.set(key, session);
  }
  return session;
}

/** Closes every pooled connection (worker shutdown, tests). */
export function closeSshSessions(): void {
  for (const session of pool.values()) session.dispose();
  pool.clear();
}
