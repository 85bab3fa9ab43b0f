/**
 * A local MLflow tracking server for the exporter's tests and for trying exports by hand: PyPI
 * `mlflow` in its own venv (`.tools/mlflow-venv`, ~850 MB, installed once), a SQLite backend store
 * and a proxied artifact store (`--artifacts-destination`, so uploads go through the REST API),
 * listening on loopback only.
 *
 *   node dist/scripts/mlflow-server.js --install            # install only (CI does this up front)
 *   node dist/scripts/mlflow-server.js [--port 5000] [--dir D]   # run until Ctrl-C
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { toolsDir } from './temporal-dev-server.js';

export const MLFLOW_VERSION = '3.17.2';

/** The `mlflow` executable, installing PyPI mlflow into `.tools/mlflow-venv` when missing. */
export function ensureMlflow(log: (line: string) => void = () => undefined): string {
  const venv = join(toolsDir(), 'mlflow-venv');
  const bin = join(venv, 'bin', 'mlflow');
  if (existsSync(bin)) return bin;
  log(`installing MLflow (PyPI mlflow==${MLFLOW_VERSION}) into ${venv}`);
  mkdirSync(toolsDir(), { recursive: true });
  for (const [cmd, args] of [
    [process.env.PYTHON || 'python3', ['-m', 'venv', venv]],
    [join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', `mlflow==${MLFLOW_VERSION}`]],
  ] as const) {
    const res = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${res.status ?? res.signal})`);
  }
  if (!existsSync(bin)) throw new Error(`mlflow installed, but ${bin} is missing`);
  return bin;
}

export interface MlflowServer {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function startMlflowServer(opts: { port: number; dir: string; startTimeoutS?: number; log?: (line: string) => void }): Promise<MlflowServer> {
  const bin = ensureMlflow(opts.log);
  mkdirSync(join(opts.dir, 'artifacts'), { recursive: true });
  const logFile = join(opts.dir, 'mlflow-server.log');
  const logFd = openSync(logFile, 'a');
  // Its own process group: the server forks workers, and stop() must end all of them.
  const child = spawn(
    bin,
    ['server', '--host', '127.0.0.1', '--port', String(opts.port), '--backend-store-uri', `sqlite:///${join(opts.dir, 'mlflow.db')}`, '--artifacts-destination', join(opts.dir, 'artifacts'), '--workers', '1'],
    { stdio: ['ignore', logFd, logFd], detached: true },
  );
  closeSync(logFd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${opts.port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    process.kill(-child.pid, 'SIGTERM');
    const killer = setTimeout(() => child.pid !== undefined && process.kill(-child.pid, 'SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  };
  const deadline = Date.now() + (opts.startTimeoutS ?? 120) * 1000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mlflow server exited (${child.exitCode}); see ${logFile}:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    try {
      if ((await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) })).ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`mlflow server not healthy after ${opts.startTimeoutS ?? 120} s; see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return { url, process: child, stop };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { install: { type: 'boolean' }, port: { type: 'string' }, dir: { type: 'string' } } });
  const log = (line: string) => process.stderr.write(`${line}\n`);
  if (values.install) {
    log(ensureMlflow(log));
    return;
  }
  const server = await startMlflowServer({ port: Number(values.port ?? 5000), dir: values.dir ?? join(toolsDir(), 'mlflow'), log });
  log(`MLflow tracking server at ${server.url}; Ctrl-C to stop`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.stop();
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
