/**
 * Runs untrusted Python (generated code plus its tests) for the code benchmarks: one `python3 -I` process per
 * program, in a fresh temporary directory that is removed afterwards.
 *
 * What it isolates:
 * - time: a wall-clock limit (the whole process group is killed) and a CPU-time limit (RLIMIT_CPU);
 * - memory: RLIMIT_AS (address space); processes: RLIMIT_NPROC (a fork bomb fails to fork);
 * - files: RLIMIT_FSIZE caps any file it writes; its working directory and HOME/TMPDIR are the temp dir;
 * - output: at most `maxOutputBytes` of stdout/stderr are kept, the rest is drained and dropped;
 * - network and user: when running as root (with `unshare` and `setpriv`), the program runs in a new network
 *   namespace with no interfaces but loopback (down), so it cannot reach anything, and as user and group `nobody`
 *   (65534), so it cannot write outside the temp dir (given to nobody) except where anyone may write, and RLIMIT_NPROC
 *   applies (root ignores it); otherwise (not root) it runs as the harness's user and network access is NOT blocked
 *   (the documented fallback: run the harness in a container for that);
 * - environment: an empty environment except PATH, HOME, TMPDIR; Python's isolated mode (-I) ignores PYTHON* vars
 *   and user site-packages.
 * What it does not isolate: reading the file system (anything world-readable stays readable), world-writable places
 * (/tmp, /dev/shm), and kernel resources beyond the limits above. It is a guard against accidents and runaway code, not a security boundary against hostile code:
 * run the harness in a container (execution.runtime: docker) or as an unprivileged user for that.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SandboxLimits {
  /** Wall-clock limit in ms (default 10 s). */
  timeoutMs?: number;
  /** Address-space limit in MiB (default 1024). */
  memoryMb?: number;
  /** Largest file the program may write, in MiB (default 16). */
  maxFileMb?: number;
  /** Stdout and stderr kept, each (default 64 KiB). */
  maxOutputBytes?: number;
}

export interface SandboxOptions extends SandboxLimits {
  /** Kills the program's process group when it aborts (the run was interrupted); the result is then `timeout`. */
  signal?: AbortSignal;
}

export type SandboxStatus = 'passed' | 'failed' | 'timeout';

export interface SandboxResult {
  status: SandboxStatus;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  /** Whether the network namespace was used (false: the program could reach the network). */
  networkIsolated: boolean;
}

let unshareWorks: boolean | undefined;

const NOBODY = 65534;
const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];

/** `unshare -n` and switching to nobody need root; probed once. */
export function networkIsolationAvailable(): boolean {
  if (unshareWorks === undefined) {
    const probe = spawnSync('unshare', ['-n', '--', ...AS_NOBODY, 'true'], { stdio: 'ignore', timeout: 5000 });
    unshareWorks = probe.status === 0;
  }
  return unshareWorks;
}

let python: string | null | undefined;

/** The real python3 binary (nobody cannot use a per-user shim such as pyenv's); null when there is none on PATH. */
export function findPython(): string | null {
  if (python === undefined) {
    const probe = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8', timeout: 10_000 });
    python = probe.status === 0 && probe.stdout.trim() !== '' ? probe.stdout.trim() : null;
  }
  return python;
}

function pythonPath(): string {
  return findPython() ?? 'python3';
}

/** A prelude that sets the resource limits from inside the child before any untrusted code runs. */
function prelude(limits: Required<SandboxLimits>): string {
  const mib = 1024 * 1024;
  const cpuSeconds = Math.max(1, Math.ceil(limits.timeoutMs / 1000));
  return [
    'import resource as _r',
    `_r.setrlimit(_r.RLIMIT_AS, (${limits.memoryMb * mib}, ${limits.memoryMb * mib}))`,
    `_r.setrlimit(_r.RLIMIT_CPU, (${cpuSeconds}, ${cpuSeconds}))`,
    `_r.setrlimit(_r.RLIMIT_FSIZE, (${limits.maxFileMb * mib}, ${limits.maxFileMb * mib}))`,
    // Forking is refused outright (the benchmarks' programs never need it); root ignores this, hence nobody.
    '_r.setrlimit(_r.RLIMIT_NPROC, (0, 0))',
    'del _r',
    '',
  ].join('\n');
}

/** Runs `program` (Python source) under the limits; status `passed` means exit code 0. */
export async function runPython(program: string, options: SandboxOptions = {}): Promise<SandboxResult> {
  const { signal: abort, ...limits } = options;
  const full: Required<SandboxLimits> = { timeoutMs: 10_000, memoryMb: 1024, maxFileMb: 16, maxOutputBytes: 64 * 1024, ...limits };
  const dir = await mkdtemp(join(tmpdir(), 'evalflow-sandbox-'));
  const started = Date.now();
  try {
    const file = join(dir, 'program.py');
    await writeFile(file, prelude(full) + program);
    const isolated = networkIsolationAvailable();
    if (isolated) {
      await chown(dir, NOBODY, NOBODY);
      await chown(file, NOBODY, NOBODY);
    }
    const python = [pythonPath(), '-I', '-B', file];
    const [command, ...args] = isolated ? ['unshare', '-n', '--', ...AS_NOBODY, ...python] : python;
    const child = spawn(command as string, args, {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, TMPDIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const capture = (stream: NodeJS.ReadableStream) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      stream.on('data', (chunk: Buffer) => {
        if (kept >= full.maxOutputBytes) return;
        const part = chunk.subarray(0, full.maxOutputBytes - kept);
        chunks.push(part);
        kept += part.length;
      });
      return () => Buffer.concat(chunks).toString('utf8');
    };
    const stdout = capture(child.stdout);
    const stderr = capture(child.stderr);
    let timedOut = false;
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, full.timeoutMs);
    const onAbort = () => {
      timedOut = true;
      killGroup();
    };
    abort?.addEventListener('abort', onAbort, { once: true });
    if (abort?.aborted) onAbort();
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c, s) => resolve({ code: c, signal: s }));
    });
    clearTimeout(timer);
    abort?.removeEventListener('abort', onAbort);
    killGroup(); // anything it left behind in its group
    return {
      status: timedOut || signal === 'SIGXCPU' ? 'timeout' : code === 0 ? 'passed' : 'failed',
      exitCode: code,
      signal,
      stdout: stdout(),
      stderr: stderr(),
      durationMs: Date.now() - started,
      networkIsolated: isolated,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
