import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ProcessExecutor, readProgress, type ProcessHandle } from '../../backends/local/process.js';
import type { LaunchSpec } from '../../backends/types.js';

const HOST = { id: 'test-host-0000abcd', hostname: 'test-host' };

const root = mkdtempSync(join(tmpdir(), 'evalflow-process-backend-'));
const started = new Set<number>();

/**
 * A stand-in for the harness: same argv contract (`run_eval --run_config F --stage_dir D`), same stage files.
 * It appends its pid to $PIDS_FILE, writes logs/stage.running and artifacts/progress.json, then waits for
 * <jobDir>/release (which holds the exit code) and exits with it, writing logs/stage.exit. SIGTERM writes
 * exit 143 (unless $IGNORE_TERM). $GRANDCHILD_PID_FILE: also starts a `sleep` in its process group.
 */
const FAKE_HARNESS = `
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
const args = process.argv.slice(2);
const stageDir = args[args.indexOf('--stage_dir') + 1];
const jobDir = process.cwd();
const atomic = (file, text) => { writeFileSync(file + '.tmp', text); renameSync(file + '.tmp', file); };
const exit = (code) => { atomic(join(stageDir, 'stage.exit'), new Date().toISOString() + ' ' + code + '\\n'); process.exit(code); };
appendFileSync(process.env.PIDS_FILE, process.pid + '\\n');
console.log('fake harness', process.pid, args.join(' '));
if (process.env.GRANDCHILD_PID_FILE) {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  writeFileSync(process.env.GRANDCHILD_PID_FILE, String(child.pid));
}
process.on('SIGTERM', () => { if (!process.env.IGNORE_TERM) exit(143); });
mkdirSync(join(jobDir, 'artifacts'), { recursive: true });
atomic(join(jobDir, 'artifacts', 'progress.json'), JSON.stringify({ total: 10, done: 3, cached: 1, errors: 0 }));
atomic(join(stageDir, 'stage.running'), new Date().toISOString() + ' ' + process.pid + '\\n');
const deadline = Date.now() + 60000;
const timer = setInterval(() => {
  const release = join(jobDir, 'release');
  if (existsSync(release)) {
    clearInterval(timer);
    atomic(join(jobDir, 'artifacts', 'progress.json'), JSON.stringify({ total: 10, done: 10, cached: 1, errors: 0 }));
    exit(Number(readFileSync(release, 'utf8')));
  } else if (Date.now() > deadline) process.exit(99);
}, 20);
`;
const entry = join(root, 'fake-harness.mjs');
writeFileSync(entry, FAKE_HARNESS);

afterEach(() => {
  for (const pid of started) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  started.clear();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

let jobs = 0;
function job(env: Record<string, string> = {}, attempt = 1): LaunchSpec & { pidsFile: string } {
  const jobDir = join(root, `run-${jobs}`, `gsm8k.${jobs}`);
  jobs++;
  mkdirSync(jobDir, { recursive: true });
  const pidsFile = join(jobDir, 'pids.txt');
  return {
    jobId: `0123456789abcdef.${jobs}`,
    name: `evalflow-0123456789abcdef.${jobs}-a${attempt}`,
    jobDir,
    attempt,
    executor: { kind: 'process' },
    builtinHarness: true,
    runConfig: { config: { type: 'gsm8k', output_dir: join(jobDir, 'artifacts') } },
    env: { PIDS_FILE: pidsFile, ...env },
    runtimeEnv: {},
    pidsFile,
  };
}

async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}
const gone = (pid: number) => {
  const s = procState(pid);
  return s === undefined || s === 'Z' || s === 'X';
};

const pidsOf = (spec: { pidsFile: string }) => readFileSync(spec.pidsFile, 'utf8').trim().split('\n').map(Number);

async function launchRunning(backend: ProcessExecutor, spec: LaunchSpec): Promise<ProcessHandle> {
  const handle = await backend.launch(spec);
  started.add(handle.pid);
  await waitFor('stage.running', () => existsSync(join(spec.jobDir, 'logs', 'stage.running')));
  return handle;
}

const RUNNING = { kind: 'running' };
const SAMPLE_PROGRESS = { total: 10, done: 3, cached: 1, errors: 0 };

describe('ProcessExecutor', () => {
  const backend = new ProcessExecutor({ host: HOST, harnessEntry: entry, graceMs: 5000 });

  it('launches the harness detached with the run config and stage dir, and writes a marker', async () => {
    const spec = job();
    const handle = await launchRunning(backend, spec);
    expect(handle).toMatchObject({ executor: 'process', role: 'harness', name: spec.name, jobDir: spec.jobDir, attempt: 1, hostId: HOST.id });
    expect(handle.display).toBe(`pid ${handle.pid} on test-host`);
    expect(handle.pid).toBeGreaterThan(0);
    expect(handle.startTicks).toBeGreaterThan(0);
    const marker = join(spec.jobDir, 'logs', 'harness.a1.json');
    expect(JSON.parse(readFileSync(marker, 'utf8'))).toEqual(handle);
    expect(parse(readFileSync(join(spec.jobDir, 'config_ef.yaml'), 'utf8'))).toEqual(spec.runConfig);
    // Its own process group (detached), so stop() can signal the whole group.
    const stat = readFileSync(`/proc/${handle.pid}/stat`, 'utf8');
    const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    expect(pgrp).toBe(handle.pid);
    const cmdline = readFileSync(`/proc/${handle.pid}/cmdline`, 'utf8').split('\0');
    expect(cmdline.slice(1, 7)).toEqual([entry, 'run_eval', '--run_config', join(spec.jobDir, 'config_ef.yaml'), '--stage_dir', join(spec.jobDir, 'logs')]);
    await waitFor('stdout in the log', () => readFileSync(join(spec.jobDir, 'logs', 'client_stdout.log'), 'utf8').includes(`fake harness ${handle.pid}`));
    expect(readFileSync(join(spec.jobDir, 'logs', 'client_stdout.log'), 'utf8')).toContain(`${spec.name}: launching harness (attempt 1)`);
  });

  it('is idempotent: a second launch of the same attempt returns the same handle without spawning', async () => {
    const spec = job();
    const first = await launchRunning(backend, spec);
    const second = await backend.launch(spec);
    expect(second).toEqual(first);
    await new Promise((r) => setTimeout(r, 300)); // a second process would have registered by now
    expect(pidsOf(spec)).toEqual([first.pid]);
  });

  it('polls running (with progress), then the outcome of the harness exit code', async () => {
    const spec = job();
    const handle = await launchRunning(backend, spec);
    await waitFor('progress', () => readProgress(spec.jobDir));
    expect(await backend.poll(handle)).toEqual({ outcome: RUNNING, progress: SAMPLE_PROGRESS });
    writeFileSync(join(spec.jobDir, 'release'), '3');
    const status = await waitFor('exit', async () => {
      const s = await backend.poll(handle);
      return s.outcome.kind !== 'running' ? s : undefined;
    });
    expect(status).toEqual({
      outcome: { kind: 'failed', exitCode: 3, permanent: true, resultsWritten: true, reason: 'too many samples failed after retries (exit code 3)' },
      progress: { total: 10, done: 10, cached: 1, errors: 0 },
    });
    // Still "exited" once the process is long gone: stage.exit is the record.
    await waitFor('process gone', () => gone(handle.pid));
    expect(await backend.poll(handle)).toEqual(status);
  });

  it('untilChange wakes when the harness records its end, else after maxWaitMs; at once once it has ended', async () => {
    const spec = job();
    const handle = await launchRunning(backend, spec);
    let t0 = Date.now();
    await backend.untilChange(handle, 300);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    const woken = backend.untilChange(handle, 60_000);
    t0 = Date.now();
    writeFileSync(join(spec.jobDir, 'release'), '0');
    await woken;
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((await backend.poll(handle)).outcome).toEqual({ kind: 'succeeded' });
    t0 = Date.now();
    await backend.untilChange(handle, 60_000);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('reports exit code 0 as succeeded, not lost', async () => {
    const spec = job();
    const handle = await launchRunning(backend, spec);
    writeFileSync(join(spec.jobDir, 'release'), '0');
    await waitFor('process gone', () => gone(handle.pid));
    expect((await backend.poll(handle)).outcome).toEqual({ kind: 'succeeded' });
  });

  it('reports a harness killed with SIGKILL (no stage.exit) as lost, keeping its last progress', async () => {
    const spec = job();
    const handle = await launchRunning(backend, spec);
    process.kill(handle.pid, 'SIGKILL');
    await waitFor('process gone', () => gone(handle.pid));
    expect(await backend.poll(handle)).toEqual({
      outcome: { kind: 'lost', reason: `the harness process ${handle.pid} disappeared without recording an exit code` },
      progress: SAMPLE_PROGRESS,
    });
    expect(existsSync(join(spec.jobDir, 'logs', 'stage.exit'))).toBe(false);
  });

  it('does not mistake a reused pid for the harness (start time differs → lost)', async () => {
    const spec = job();
    const handle = await launchRunning(backend, spec);
    expect((await backend.poll(handle)).outcome.kind).toBe('running');
    expect((await backend.poll({ ...handle, startTicks: handle.startTicks + 1 })).outcome.kind).toBe('lost');
    expect(await backend.stop({ ...handle, startTicks: handle.startTicks + 1 })).toBe(false);
    expect(gone(handle.pid)).toBe(false); // the foreign-looking process was left alone
  });

  it('stop() sends SIGTERM to the process group, returns true, then false once it is gone', async () => {
    const grandchildFile = join(root, `grandchild-${jobs}.pid`);
    const spec = job({ GRANDCHILD_PID_FILE: grandchildFile });
    const handle = await launchRunning(backend, spec);
    const grandchild = await waitFor('grandchild pid', () => (existsSync(grandchildFile) ? Number(readFileSync(grandchildFile, 'utf8')) : undefined));
    started.add(grandchild);
    expect(gone(grandchild)).toBe(false);

    const t0 = Date.now();
    expect(await backend.stop(handle)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(4000); // it honoured SIGTERM: no wait for the grace period
    expect(gone(handle.pid)).toBe(true);
    await waitFor('grandchild gone (group signalled)', () => gone(grandchild), 3000);
    expect((await backend.poll(handle)).outcome).toEqual({ kind: 'resumable', reason: 'the harness was stopped by SIGTERM (exit code 143)' });
    expect(await backend.stop(handle)).toBe(false);
  });

  it('stop() escalates to SIGKILL after the grace period when SIGTERM is ignored', async () => {
    const impatient = new ProcessExecutor({ host: HOST, harnessEntry: entry, graceMs: 400 });
    const spec = job({ IGNORE_TERM: '1' });
    const handle = await launchRunning(impatient, spec);
    const t0 = Date.now();
    expect(await impatient.stop(handle)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
    await waitFor('process gone', () => gone(handle.pid), 3000);
    expect((await impatient.poll(handle)).outcome.kind).toBe('lost');
  });

  it('adopts a running harness when the marker is missing (worker died before writing it)', async () => {
    const spec = job();
    const handle = await launchRunning(backend, spec);
    const marker = join(spec.jobDir, 'logs', 'harness.a1.json');
    rmSync(marker);
    const adopted = await backend.launch(spec);
    expect(adopted).toEqual(handle); // same pid and start time, found via /proc/<pid>/cmdline
    expect(JSON.parse(readFileSync(marker, 'utf8'))).toEqual(handle);
    await new Promise((r) => setTimeout(r, 300));
    expect(pidsOf(spec)).toEqual([handle.pid]);
    expect((await backend.poll(adopted)).outcome.kind).toBe('running');
  });

  it('a new attempt after an exit starts a fresh process and clears the old stage files', async () => {
    const spec = job();
    const first = await launchRunning(backend, spec);
    writeFileSync(join(spec.jobDir, 'release'), '1');
    await waitFor('first exit', async () => (await backend.poll(first)).outcome.kind === 'failed');
    await waitFor('process gone', () => gone(first.pid));
    rmSync(join(spec.jobDir, 'release'));
    rmSync(join(spec.jobDir, 'logs', 'stage.running'));

    const second = await backend.launch({ ...spec, attempt: 2, name: spec.name.replace(/-a1$/, '-a2') });
    started.add(second.pid);
    expect(second.pid).not.toBe(first.pid);
    expect(second.attempt).toBe(2);
    // The old stage.exit is gone, so the new attempt is not reported as exited.
    expect(existsSync(join(spec.jobDir, 'logs', 'stage.exit'))).toBe(false);
    expect((await backend.poll(second)).outcome.kind).toBe('running');
    await waitFor('second running', () => existsSync(join(spec.jobDir, 'logs', 'stage.running')));
    expect(pidsOf(spec)).toEqual([first.pid, second.pid]);
    expect(existsSync(join(spec.jobDir, 'logs', 'harness.a2.json'))).toBe(true);
  });

  it("passes spec.env to the harness, and of the worker's environment only what a process needs", async () => {
    process.env.EVALFLOW_TEST_WORKER_SECRET = 'not-for-the-harness';
    try {
      const spec = job({ EVALFLOW_TEST_VALUE: 'from-spec' });
      const handle = await launchRunning(backend, spec);
      const environ = readFileSync(`/proc/${handle.pid}/environ`, 'utf8').split('\0');
      expect(environ).toContain('EVALFLOW_TEST_VALUE=from-spec');
      expect(environ).toContain(`PATH=${process.env.PATH}`);
      expect(environ.filter((e) => e.startsWith('EVALFLOW_TEST_WORKER_SECRET='))).toEqual([]);
    } finally {
      delete process.env.EVALFLOW_TEST_WORKER_SECRET;
    }
  });
});

describe('ProcessExecutor: launches that cannot crash the worker or run twice', () => {
  const backend = new ProcessExecutor({ host: HOST, harnessEntry: entry, graceMs: 2000 });

  it('two concurrent launches of one (job, attempt) start one harness; the loser retries into the same handle', async () => {
    const spec = job();
    const other = new ProcessExecutor({ host: HOST, harnessEntry: entry });
    const results = await Promise.allSettled([backend.launch(spec), other.launch(spec)]);
    const handles = results.filter((r): r is PromiseFulfilledResult<ProcessHandle> => r.status === 'fulfilled').map((r) => r.value);
    for (const h of handles) started.add(h.pid);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as Error).name).toBe('LaunchInProgressError');
    const retried = await other.launch(spec);
    expect(handles.every((h) => h.pid === retried.pid)).toBe(true);
    await waitFor('stage.running', () => existsSync(join(spec.jobDir, 'logs', 'stage.running')));
    await new Promise((r) => setTimeout(r, 300));
    expect(pidsOf(spec)).toEqual([retried.pid]);
    expect(existsSync(join(spec.jobDir, 'logs', 'harness.a1.lock'))).toBe(false);
  });

  it('takes over the lock of a launch whose process died', async () => {
    const spec = job();
    mkdirSync(join(spec.jobDir, 'logs'), { recursive: true });
    writeFileSync(join(spec.jobDir, 'logs', 'harness.a1.lock'), JSON.stringify({ pid: 999_999_999, startTicks: 1, hostId: HOST.id }));
    const handle = await launchRunning(backend, spec);
    expect(pidsOf(spec)).toEqual([handle.pid]);
  });

  it('a harness that cannot be spawned fails the launch with the cause instead of crashing the process', async () => {
    const spec = job();
    const broken = new ProcessExecutor({ host: HOST, harnessEntry: entry, nodePath: join(root, 'no-such-node') });
    await expect(broken.launch(spec)).rejects.toThrow(/could not start the harness .*no-such-node.*ENOENT/);
    expect(existsSync(join(spec.jobDir, 'logs', 'harness.a1.lock'))).toBe(false);
    expect(existsSync(join(spec.jobDir, 'logs', 'harness.a1.json'))).toBe(false);
  });

  it('stopJob stops a harness found by its job dir, without any handle', async () => {
    const spec = job();
    const handle = await launchRunning(backend, spec);
    expect(await backend.stopJob({ jobId: spec.jobId, jobDir: spec.jobDir })).toBe(1);
    await waitFor('process gone', () => gone(handle.pid), 3000);
    expect(await backend.stopJob({ jobId: spec.jobId, jobDir: spec.jobDir })).toBe(0);
  });

  it('never classifies a handle of another host: polling or stopping it is an error, not "lost"', async () => {
    const spec = job();
    const handle = await launchRunning(backend, spec);
    const elsewhere = new ProcessExecutor({ host: { id: 'other-host-1234abcd', hostname: 'other-host' }, harnessEntry: entry });
    await expect(elsewhere.poll(handle)).rejects.toThrow(/runs on host test-host-0000abcd, not on this worker's host other-host-1234abcd/);
    await expect(elsewhere.stop(handle)).rejects.toThrow(/runs on host/);
    expect(gone(handle.pid)).toBe(false);
  });

  it('resolves runtime: references where the harness runs; a missing one names the variable and host', async () => {
    process.env.EVALFLOW_TEST_RUNTIME_VAR = 'runtime-value';
    try {
      const spec = { ...job(), runtimeEnv: { FROM_RUNTIME: 'EVALFLOW_TEST_RUNTIME_VAR' } };
      const handle = await launchRunning(backend, spec);
      expect(readFileSync(`/proc/${handle.pid}/environ`, 'utf8').split('\0')).toContain('FROM_RUNTIME=runtime-value');
      const missing = { ...job(), runtimeEnv: { X: 'EVALFLOW_TEST_UNSET_VAR' } };
      await expect(backend.launch(missing)).rejects.toThrow('env var X = runtime:EVALFLOW_TEST_UNSET_VAR: EVALFLOW_TEST_UNSET_VAR is not set on test-host, where it is read');
    } finally {
      delete process.env.EVALFLOW_TEST_RUNTIME_VAR;
    }
  });
});

describe('readProgress', () => {
  it('returns undefined for a missing or malformed progress.json', () => {
    const dir = join(root, 'progress-cases');
    mkdirSync(join(dir, 'artifacts'), { recursive: true });
    expect(readProgress(dir)).toBeUndefined();
    writeFileSync(join(dir, 'artifacts', 'progress.json'), '{"done": 1');
    expect(readProgress(dir)).toBeUndefined();
    writeFileSync(join(dir, 'artifacts', 'progress.json'), '{"done": "1", "total": 2}');
    expect(readProgress(dir)).toBeUndefined();
    writeFileSync(join(dir, 'artifacts', 'progress.json'), '{"done": 1, "total": 2, "cached": 0, "errors": 0}');
    expect(readProgress(dir)).toEqual({ done: 1, total: 2, cached: 0, errors: 0 });
  });
});
