/**
 * Throughput benchmark of the built-in harness against the deterministic fixture endpoint
 * (DESIGN.md §6). A measurement script, not a test: it prints figures and ratios and never fails
 * on a missed target. About a minute with the defaults.
 *
 *   node dist/bench/throughput.js [--only baseline|harness|gsm8k|latency[,…]] [--json out.json] [--repeat N]
 *
 * Sections:
 *   baseline  a bare undici Pool (connections = c, keep-alive) sending the harness's own request
 *             bodies for 10,000 distinct custom samples, c = 1, 16, 64 (after a 1,000-request warm-up)
 *   harness   `run_eval` end to end (process start → exit) on those 10,000 samples at parallelism
 *             1, 16, 64: N / wall, N / runtime_seconds, start-up, client CPU, ratio to the baseline
 *   gsm8k     1,000 GSM8K samples at parallelism 64: wall, start-up, client CPU per request
 *   latency   a 50 ms endpoint at parallelism 1, 16, 64, 256, as a fraction of parallelism / 50 ms,
 *             with a bare undici Pool at the same parallelism as a control
 *
 * As for the §6 anchors, the fixture server runs pinned to core 0 and every measured client (the
 * baseline worker, the harness) to core 1 when `taskset` and two cores are there; the output says
 * whether pinning was used. The fixture runs in a small wrapper process (`--worker fixture`) around
 * the same `startFixtureServer` the standalone CLI uses (record off), which also reports when the
 * first and the last request of a run arrive, how many requests and TCP connections it saw, and
 * its own CPU. So each harness run splits into start-up (process start → first request), request
 * phase (first → last request) and tail (last request → exit). Client CPU is user + system time
 * of the whole process from /usr/bin/time (10 ms resolution). Every harness run gets a fresh
 * output_dir (the response cache would otherwise answer it).
 *
 * The machine is measured too: "other load" is the CPU (in cores) that processes other than the
 * client and the fixture used during a run, from /proc/stat. On a shared machine it is often
 * well above 0 and every figure is depressed by it; use `--repeat 3` for medians then.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { packageRoot } from '../common/paths.js';
import { requestKey } from '../harness/cache.js';
import { buildRequestBody } from '../harness/client.js';
import { custom } from '../harness/tasks/custom.js';
import { defaultAnswer, FIXTURE_MODEL, startFixtureServer } from '../common/fixture-endpoint.js';

// ------------------------------------------------------------------------------------------ constants

const SECTIONS = ['baseline', 'harness', 'gsm8k', 'latency'] as const;
type Section = (typeof SECTIONS)[number];

const CONCURRENCIES = [1, 16, 64];
const N_REQUESTS = 10_000;
const N_WARMUP = 1_000;
const N_GSM8K = 1_000;
const LATENCY_MS = 50;
/** Samples per latency run: ~3 s of requests each at the physical limit (N·latency/parallelism). */
const LATENCY_RUNS: Array<{ c: number; n: number }> = [
  { c: 1, n: 60 },
  { c: 16, n: 1_000 },
  { c: 64, n: 4_000 },
  { c: 256, n: 16_000 },
];
const DATASET_ROWS = Math.max(N_REQUESTS, ...LATENCY_RUNS.map((r) => r.n));
const CHILD_TIMEOUT_MS = 120_000;

/** DESIGN §6 anchors (lm-eval 0.4.13 on this kind of machine). */
const LM_EVAL = { e2e1000Gsm8kS: 8.6, rpsAt64: 5_500 };
const TARGET = {
  rpsAt64: 15_000,
  ratioToBare: 0.75,
  ratioToLatencyLimit: 0.95,
  startupS: 0.5,
  cpuMsPerRequest: 0.1,
  e2eSpeedup: 8,
};

/** Wall-clock ms comparable across processes (sub-ms resolution). */
function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Machine-wide busy CPU seconds so far (all cores, from /proc/stat), or null where unavailable. */
function machineBusyS(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return busy / CLK_TCK;
  } catch {
    return null;
  }
}

const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/**
 * CPU used by processes other than the measured client and the fixture during a run, in cores
 * (the orchestrating process, idle while it waits, is counted too, so a few % is the floor).
 */
function otherCores(busy0: number | null, busy1: number | null, ownCpuS: number, wallS: number): number | null {
  if (busy0 === null || busy1 === null || wallS <= 0) return null;
  return Math.max(0, (busy1 - busy0 - ownCpuS) / wallS);
}

// ------------------------------------------------------------------------------------------ prompts

/** The `extra` of the custom task as the engine hands it to the task (engine keys removed). */
function customExtra(datasetPath: string): Record<string, unknown> {
  return { dataset_path: datasetPath, prompt_template: '{{q}}', scorer: 'exact', answer_field: 'answer' };
}

/**
 * `rows` distinct samples with GSM8K-sized questions; each answer is what the fixture will reply,
 * so an exact-match accuracy of 1 shows that every response came back and was scored.
 */
function writeCustomDataset(file: string, rows: number, gsm8kFile: string): void {
  let questions: string[] = [];
  if (existsSync(gsm8kFile)) {
    questions = readFileSync(gsm8kFile, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => (JSON.parse(l) as { question: string }).question);
  }
  if (questions.length === 0) questions = ['A farmer has 17 cows and buys 5 more each week. How many cows does the farmer have after 9 weeks?'];
  const lines: string[] = [];
  for (let i = 0; i < rows; i++) {
    const q = `${questions[i % questions.length] ?? ''} (sample ${i})`;
    lines.push(JSON.stringify({ q, answer: defaultAnswer(q) }));
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
}

/** The request bodies the harness builds for the first `n` custom samples (same functions, same params). */
async function harnessBodies(datasetDir: string, datasetPath: string, n: number): Promise<Array<Record<string, unknown>>> {
  const extra = customExtra(datasetPath);
  const samples = (await custom.loadSamples({ datasetDir, extra })).slice(0, n);
  const params = { ...custom.defaultParams, temperature: 0 };
  return samples.map((s) => buildRequestBody(custom.buildPrompt(s, 'chat', { extra }), FIXTURE_MODEL, params, false));
}

// ------------------------------------------------------------------------------------------ workers

/** `--worker fixture`: the fixture server, plus a line protocol on stdin/stdout for marks. */
async function fixtureWorker(latencyMs: number): Promise<void> {
  // Count TCP connections (keep-alive check) by wrapping the server the fixture creates.
  let connections = 0;
  const original = http.createServer;
  const counting = function (this: unknown, ...args: unknown[]): http.Server {
    const server = Reflect.apply(original, http, args) as http.Server;
    server.on('connection', () => connections++);
    return server;
  };
  Object.assign(http, { createServer: counting });
  const server = await startFixtureServer({ latencyMs, record: false });
  Object.assign(http, { createServer: original });
  process.stdout.write(`listening ${server.url}\n`);
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const [cmd, id, expect] = line.trim().split(/\s+/);
    if (cmd !== 'mark' || id === undefined) return;
    const cpu = process.cpuUsage();
    const total = server.totalRequests();
    process.stdout.write(`mark ${id} ${now()} ${total} ${connections} ${cpu.user + cpu.system}\n`);
    void server.waitForRequests(total + 1).then(() => process.stdout.write(`first ${id} ${now()}\n`));
    const n = Number(expect);
    if (Number.isInteger(n) && n > 1) void server.waitForRequests(total + n).then(() => process.stdout.write(`last ${id} ${now()}\n`));
  });
  rl.on('close', () => {
    void server.close().then(() => process.exit(0));
  });
}

interface BareResult {
  c: number;
  n: number;
  warmupRps: number;
  rps: number;
  seconds: number;
  errors: number;
  cpuMsPerRequest: number;
  /** Fixture CPU per request over warm-up + measured requests (set by the orchestrator). */
  serverCpuUsPerRequest?: number | null;
  serverConnections?: number;
  otherCores?: number | null;
}

/** `--worker baseline`: a bare undici Pool sending pre-built bodies; prints `result <json>`. */
async function baselineWorker(url: string, datasetDir: string, datasetPath: string, c: number, n: number, warmup: number): Promise<void> {
  const payloads = (await harnessBodies(datasetDir, datasetPath, Math.max(n, warmup))).map((b) => JSON.stringify(b));
  const target = new URL(`${url}/v1/chat/completions`);
  const pool = new Pool(target.origin, { connections: c, pipelining: 1, keepAliveTimeout: 30_000 });
  const headers = { 'content-type': 'application/json' };
  let errors = 0;
  const blast = async (count: number): Promise<number> => {
    let next = 0;
    const t0 = performance.now();
    const worker = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        const res = await pool.request({ method: 'POST', path: target.pathname, headers, body: payloads[i % payloads.length] });
        await res.body.text();
        if (res.statusCode !== 200) errors++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(c, count) }, worker));
    return (performance.now() - t0) / 1000;
  };
  const warmupS = await blast(warmup);
  errors = 0;
  const cpu0 = process.cpuUsage();
  const seconds = await blast(n);
  const cpu = process.cpuUsage(cpu0);
  await pool.close();
  const result: BareResult = {
    c,
    n,
    warmupRps: warmup / warmupS,
    rps: n / seconds,
    seconds,
    errors,
    cpuMsPerRequest: (cpu.user + cpu.system) / 1000 / n,
  };
  process.stdout.write(`result ${JSON.stringify(result)}\n`);
}

// ------------------------------------------------------------------------------------------ processes

interface Env {
  root: string;
  script: string;
  cli: string;
  tmp: string;
  pinned: boolean;
  pinNote: string;
  timeBin: string | null;
  preload: string;
  datasetDir: string;
  datasetPath: string;
  gsm8kDir: string;
}

function onPath(bin: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, bin);
    if (dir && existsSync(p)) return p;
  }
  return null;
}

function detectPinning(): { pinned: boolean; note: string } {
  const cores = availableParallelism();
  if (cores < 2) return { pinned: false, note: `no (only ${cores} core available)` };
  if (onPath('taskset') === null) return { pinned: false, note: 'no (taskset not found)' };
  const probe = spawnSync('taskset', ['-c', '1', 'true']);
  if (probe.status !== 0) return { pinned: false, note: `no (taskset -c 1 failed: ${probe.stderr.toString().trim()})` };
  return { pinned: true, note: 'yes (fixture on core 0, clients on core 1)' };
}

function pinnedCommand(env: Env, core: 0 | 1, argv: string[]): [string, string[]] {
  return env.pinned ? ['taskset', ['-c', String(core), ...argv]] : [argv[0] as string, argv.slice(1)];
}

/** Kills a child started with `detached: true` and its process group (it and what it exec'd). */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

class Fixture {
  private readonly pending = new Map<string, (fields: string[]) => void>();
  /** Arrival times of `first`/`last` events, keyed `kind id`. */
  private readonly events = new Map<string, number>();
  private readonly eventWaiters = new Map<string, (t: number) => void>();
  private seq = 0;

  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(env: Env, latencyMs: number): Promise<Fixture> {
    const [cmd, args] = pinnedCommand(env, 0, [process.execPath, env.script, '--worker', 'fixture', '--latency-ms', String(latencyMs)]);
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const sink: { fixture?: Fixture } = {};
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('fixture server did not start in 20 s')), 20_000);
      child.once('exit', (code) => reject(new Error(`fixture server exited (${code})`)));
      lines.on('line', (line) => {
        if (line.startsWith('listening ')) {
          clearTimeout(timer);
          resolve(line.slice('listening '.length).trim());
        } else sink.fixture?.onLine(line);
      });
    });
    sink.fixture = new Fixture(url, child);
    return sink.fixture;
  }

  private onLine(line: string): void {
    const fields = line.trim().split(' ');
    const [kind, id] = fields;
    if (id === undefined) return;
    if (kind === 'mark') {
      this.pending.get(id)?.(fields);
      this.pending.delete(id);
    } else if (kind === 'first' || kind === 'last') {
      const t = Number(fields[2]);
      const key = `${kind} ${id}`;
      this.events.set(key, t);
      this.eventWaiters.get(key)?.(t);
      this.eventWaiters.delete(key);
    }
  }

  /**
   * Snapshot of the server's counters. `event(mark, 'first')` then gives the arrival of the next
   * request and, when `expect` is given, `event(mark, 'last')` the arrival of the expect-th one.
   */
  async mark(expect?: number): Promise<FixtureMark> {
    const id = String(++this.seq);
    const fields = await new Promise<string[]>((resolve) => {
      this.pending.set(id, resolve);
      this.child.stdin?.write(`mark ${id}${expect === undefined ? '' : ` ${expect}`}\n`);
    });
    return { id, at: Number(fields[2]), requests: Number(fields[3]), connections: Number(fields[4]), cpuUs: Number(fields[5]) };
  }

  /** Arrival time of a mark's first / last request, or null if it does not come within `waitMs`. */
  async event(mark: FixtureMark, kind: 'first' | 'last', waitMs = 500): Promise<number | null> {
    const key = `${kind} ${mark.id}`;
    const known = this.events.get(key);
    if (known !== undefined) return known;
    return new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        this.eventWaiters.delete(key);
        resolve(null);
      }, waitMs);
      this.eventWaiters.set(key, (t) => {
        clearTimeout(timer);
        resolve(t);
      });
    });
  }

  stop(): void {
    this.child.stdin?.end();
    const child = this.child;
    setTimeout(() => killGroup(child), 2_000).unref();
  }
}

interface FixtureMark {
  id: string;
  at: number;
  requests: number;
  connections: number;
  cpuUs: number;
}

interface ChildRun {
  code: number | null;
  stdout: string;
  stderr: string;
  startedAt: number;
  exitedAt: number;
  /** Client user + system CPU in ms, or null when it could not be measured. */
  cpuMs: number | null;
}

/** Runs a command to completion (killed after CHILD_TIMEOUT_MS), timing process start to exit. */
async function runChild(cmd: string, args: string[], extraEnv: Record<string, string> = {}): Promise<ChildRun> {
  const startedAt = now();
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, ...extraEnv } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => killGroup(child), CHILD_TIMEOUT_MS);
  let exitedAt = 0;
  child.once('exit', () => (exitedAt = now()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  clearTimeout(timer);
  return { code, stdout, stderr, startedAt, exitedAt, cpuMs: null };
}

/** Runs a node script on the client core, measuring its CPU with /usr/bin/time (else a preload). */
async function runNodeClient(env: Env, nodeArgs: string[]): Promise<ChildRun> {
  const cpuFile = join(env.tmp, `cpu-${process.hrtime.bigint()}.txt`);
  let argv: string[];
  if (env.timeBin !== null) argv = [env.timeBin, '-o', cpuFile, '-f', '%U %S', process.execPath, ...nodeArgs];
  else argv = [process.execPath, '--import', env.preload, ...nodeArgs];
  const [cmd, args] = pinnedCommand(env, 1, argv);
  const run = await runChild(cmd, args, env.timeBin === null ? { BENCH_CPU_FILE: cpuFile } : {});
  if (existsSync(cpuFile)) {
    // /usr/bin/time may prefix "Command exited with non-zero status N"; the figures are on the last line.
    const last = readFileSync(cpuFile, 'utf8').trim().split('\n').pop() ?? '';
    const [u, s] = last.split(/\s+/).map(Number);
    if (u !== undefined && s !== undefined && Number.isFinite(u) && Number.isFinite(s)) {
      run.cpuMs = env.timeBin !== null ? (u + s) * 1000 : (u + s) / 1000;
    }
  }
  return run;
}

// ------------------------------------------------------------------------------------------ harness runs

interface HarnessRun {
  task: string;
  parallelism: number;
  n: number;
  exitCode: number | null;
  /** Process start → exit, as seen by this script. */
  wallS: number;
  /** The harness's own `evaluation.runtime_seconds`. */
  runtimeS: number | null;
  /** wall − runtime_seconds: node start, imports, result files, exit. */
  outsideRuntimeS: number | null;
  /** Process start → first request at the fixture. */
  startupS: number | null;
  /** First → last request at the fixture. */
  requestPhaseS: number | null;
  /** Last request at the fixture → process exit (last responses, scoring, result files, exit). */
  tailS: number | null;
  rpsWall: number;
  rpsRuntime: number | null;
  /** (N − 1) / request phase: the pure request rate. */
  rpsPhase: number | null;
  clientCpuMs: number | null;
  clientCpuMsPerRequest: number | null;
  serverRequests: number;
  serverConnections: number;
  serverCpuUsPerRequest: number | null;
  /** Other processes' CPU during the run, in cores (machine noise). */
  otherCores: number | null;
  requestsSent: number | null;
  failedSamples: number | null;
  score: string | null;
  /** Distinct stderr lines of the harness (warnings), shortened. */
  stderr: string[];
  outputDir: string;
}

let runSeq = 0;

async function runHarness(
  env: Env,
  fixture: Fixture,
  opts: { task: 'custom' | 'gsm8k'; n: number; parallelism: number },
): Promise<HarnessRun> {
  const outputDir = join(env.tmp, `run-${++runSeq}-${opts.task}-p${opts.parallelism}-n${opts.n}`);
  const extra =
    opts.task === 'custom'
      ? { dataset_dir: env.datasetDir, ...customExtra(env.datasetPath) }
      : { dataset_dir: env.gsm8kDir };
  const runConfig = {
    config: {
      type: opts.task,
      output_dir: outputDir,
      params: { limit_samples: opts.n, parallelism: opts.parallelism, max_retries: 2, request_timeout: 60, temperature: 0, extra },
    },
    target: { api_endpoint: { url: `${fixture.url}/v1/chat/completions`, model_id: FIXTURE_MODEL, type: 'chat' } },
  };
  const configFile = `${outputDir}.yml`;
  writeFileSync(configFile, JSON.stringify(runConfig, null, 2)); // JSON is YAML

  const before = await fixture.mark(opts.n);
  const busy0 = machineBusyS();
  const run = await runNodeClient(env, [env.cli, 'run_eval', '--run_config', configFile]);
  const busy1 = machineBusyS();
  const first = await fixture.event(before, 'first');
  const last = opts.n > 1 ? await fixture.event(before, 'last') : first;
  const after = await fixture.mark();

  const wallS = (run.exitedAt - run.startedAt) / 1000;
  let runtimeS: number | null = null;
  let requestsSent: number | null = null;
  let failedSamples: number | null = null;
  const metricsFile = join(outputDir, 'eval_factory_metrics.json');
  if (existsSync(metricsFile)) {
    const m = JSON.parse(readFileSync(metricsFile, 'utf8')) as {
      evaluation?: { runtime_seconds?: number };
      response_stats?: { requests_sent?: number; failed_samples?: number };
    };
    runtimeS = m.evaluation?.runtime_seconds ?? null;
    requestsSent = m.response_stats?.requests_sent ?? null;
    failedSamples = m.response_stats?.failed_samples ?? null;
  }
  if (run.code !== 0) {
    process.stderr.write(`  ! run_eval ${opts.task} p=${opts.parallelism} n=${opts.n} exited ${run.code}\n${run.stderr.slice(-2000)}\n`);
  }
  const scoreLine = run.stdout.split('\n').find((l) => /^\S+ \S+: /.test(l));
  const serverRequests = after.requests - before.requests;
  const serverCpuS = (after.cpuUs - before.cpuUs) / 1e6;
  const requestPhaseS = first !== null && last !== null ? (last - first) / 1000 : null;
  return {
    task: opts.task,
    parallelism: opts.parallelism,
    n: opts.n,
    exitCode: run.code,
    wallS,
    runtimeS,
    outsideRuntimeS: runtimeS === null ? null : wallS - runtimeS,
    startupS: first === null ? null : (first - run.startedAt) / 1000,
    requestPhaseS,
    tailS: last === null ? null : (run.exitedAt - last) / 1000,
    rpsWall: opts.n / wallS,
    rpsRuntime: runtimeS === null || runtimeS <= 0 ? null : opts.n / runtimeS,
    rpsPhase: requestPhaseS === null || requestPhaseS <= 0 ? null : (opts.n - 1) / requestPhaseS,
    clientCpuMs: run.cpuMs,
    clientCpuMsPerRequest: run.cpuMs === null ? null : run.cpuMs / opts.n,
    serverRequests,
    serverConnections: after.connections - before.connections,
    serverCpuUsPerRequest: serverRequests > 0 ? (serverCpuS * 1e6) / serverRequests : null,
    otherCores: run.cpuMs === null ? null : otherCores(busy0, busy1, run.cpuMs / 1000 + serverCpuS, wallS),
    requestsSent,
    failedSamples,
    score: scoreLine?.trim() ?? null,
    stderr: [...new Set(run.stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('(Use `node --trace')))].map((l) => l.slice(0, 160)),
    outputDir,
  };
}

/** Runs `measure` `repeat` times and keeps the run with the median of `key`. */
async function median<T>(repeat: number, key: (r: T) => number, measure: () => Promise<T>): Promise<T> {
  const runs: T[] = [];
  for (let i = 0; i < repeat; i++) runs.push(await measure());
  runs.sort((a, b) => key(a) - key(b));
  return runs[Math.floor((runs.length - 1) / 2)] as T;
}

/** Warnings and errors the harness printed, once per distinct line, with the runs that printed them. */
function printStderr(runs: HarnessRun[]): void {
  const seen = new Map<string, string[]>();
  for (const r of runs) for (const l of r.stderr) seen.set(l, [...(seen.get(l) ?? []), `p=${r.parallelism}`]);
  for (const [line, where] of seen) print(`  harness stderr (${where.join(', ')}): ${line}`);
}

/** A harness run's server-side check: every sample sent exactly once, none failed. */
function checkRun(r: HarnessRun): string {
  const problems: string[] = [];
  if (r.exitCode !== 0) problems.push(`exit ${r.exitCode}`);
  if (r.serverRequests !== r.n) problems.push(`server saw ${r.serverRequests} requests`);
  if (r.failedSamples !== 0) problems.push(`${r.failedSamples ?? '?'} failed`);
  if (r.serverConnections > r.parallelism) problems.push(`${r.serverConnections} connections`);
  return problems.length === 0 ? 'ok' : problems.join(', ');
}

// ------------------------------------------------------------------------------------------ formatting

const f0 = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : Math.round(x).toLocaleString('en-US'));
const f2 = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(2));
const f3 = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(3));
const pct = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : `${(x * 100).toFixed(1)}%`);
const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined || b === 0 ? null : a / b;

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].map((l) => `  ${l}`.trimEnd()).join('\n');
}

function print(text = ''): void {
  process.stdout.write(`${text}\n`);
}

// ------------------------------------------------------------------------------------------ sections

type HarnessVsBare = HarnessRun & { ratioToBare: number | null; ratioToBarePhase: number | null };
type LatencyRun = HarnessRun & { limitRps: number; ratioWall: number; ratioRuntime: number | null; ratioPhase: number | null; bare: BareResult; bareRatio: number };

interface Report {
  meta: Record<string, unknown>;
  baseline?: BareResult[];
  harness?: {
    runs: HarnessVsBare[];
    /** 1-sample and 1,000-sample runs at parallelism 64, for fixed and warm marginal costs. */
    oneSample: HarnessRun;
    thousand: HarnessRun;
    /** (CPU(10,000) − CPU(1,000)) / 9,000 at parallelism 64. */
    warmCpuMsPerRequest: number | null;
    /** (CPU(10,000) − CPU(1)) / 9,999 at parallelism 64: JIT warm-up included. */
    marginalCpuMsPerRequest: number | null;
    promptsIdentical: string;
  };
  gsm8k?: { run: HarnessRun; oneSample: HarnessRun; marginalCpuMsPerRequest: number | null; speedupVsLmEval: number };
  latency?: LatencyRun[];
  targets?: Array<{ target: string; measured: string; met: boolean | null }>;
}

/** One bare-undici worker run on the client core, with the fixture's view and the machine's noise. */
async function runBare(env: Env, fixture: Fixture, c: number, n: number, warmup: number): Promise<BareResult> {
  const before = await fixture.mark();
  const busy0 = machineBusyS();
  const run = await runNodeClient(env, [
    env.script, '--worker', 'baseline', '--url', fixture.url, '--dataset-dir', env.datasetDir,
    '--dataset-path', env.datasetPath, '--c', String(c), '--n', String(n), '--warmup', String(warmup),
  ]);
  const busy1 = machineBusyS();
  const after = await fixture.mark();
  const line = run.stdout.split('\n').find((l) => l.startsWith('result '));
  if (line === undefined) throw new Error(`baseline worker c=${c} failed (${run.code}): ${run.stderr.slice(-1000)}`);
  const result = JSON.parse(line.slice('result '.length)) as BareResult;
  const served = after.requests - before.requests;
  const serverCpuS = (after.cpuUs - before.cpuUs) / 1e6;
  result.serverCpuUsPerRequest = served > 0 ? (serverCpuS * 1e6) / served : null;
  result.serverConnections = after.connections - before.connections;
  result.otherCores = run.cpuMs === null ? null : otherCores(busy0, busy1, run.cpuMs / 1000 + serverCpuS, (run.exitedAt - run.startedAt) / 1000);
  return result;
}

async function sectionBaseline(env: Env, fixture: Fixture, repeat: number): Promise<BareResult[]> {
  print(`\n== 1. baseline: bare undici Pool (connections = c, keep-alive), the harness's ${f0(N_REQUESTS)} request bodies after ${f0(N_WARMUP)} warm-up`);
  const results: BareResult[] = [];
  for (const c of CONCURRENCIES) results.push(await median(repeat, (x: BareResult) => x.rps, () => runBare(env, fixture, c, N_REQUESTS, N_WARMUP)));
  print(table(
    ['c', 'cold req/s (warm-up)', 'warm req/s', 'seconds', 'errors', 'client CPU ms/req', 'fixture CPU µs/req', 'conns', 'other load (cores)'],
    results.map((r) => [
      String(r.c), f0(r.warmupRps), f0(r.rps), f3(r.seconds), String(r.errors), f3(r.cpuMsPerRequest), f0(r.serverCpuUsPerRequest),
      String(r.serverConnections ?? 'n/a'), f2(r.otherCores),
    ]),
  ));
  return results;
}

async function sectionHarness(env: Env, fixture: Fixture, baseline: BareResult[] | undefined, repeat: number): Promise<NonNullable<Report['harness']>> {
  print(`\n== 2. harness end to end (process start -> exit): custom task, ${f0(N_REQUESTS)} distinct samples, fresh output_dir per run`);
  const runs: HarnessVsBare[] = [];
  for (const c of CONCURRENCIES) {
    const r = await median(repeat, (x: HarnessRun) => x.rpsWall, () => runHarness(env, fixture, { task: 'custom', n: N_REQUESTS, parallelism: c }));
    const bare = baseline?.find((b) => b.c === c);
    runs.push({ ...r, ratioToBare: ratio(r.rpsWall, bare?.rps), ratioToBarePhase: ratio(r.rpsPhase, bare?.rps) });
  }
  // Short reference runs for the CPU differences: median of 3 (CPU time is noisy on a shared machine).
  const cpuKey = (x: HarnessRun) => x.clientCpuMs ?? 0;
  const refs = Math.max(3, repeat);
  const oneSample = await median(refs, cpuKey, () => runHarness(env, fixture, { task: 'custom', n: 1, parallelism: 64 }));
  const thousand = await median(refs, cpuKey, () => runHarness(env, fixture, { task: 'custom', n: 1_000, parallelism: 64 }));
  const p64 = runs.find((r) => r.parallelism === 64);
  const perRequest = (big: HarnessRun | undefined, small: HarnessRun) =>
    big && big.clientCpuMs !== null && small.clientCpuMs !== null ? (big.clientCpuMs - small.clientCpuMs) / (big.n - small.n) : null;
  const warm = perRequest(p64, thousand);
  const marginal = perRequest(p64, oneSample);
  const promptsIdentical = runs[0] === undefined ? 'n/a' : await comparePrompts(env, runs[0].outputDir, runs[0].n);
  print(table(
    ['parallelism', 'wall s', 'runtime s', 'wall-runtime s', 'start-up s', 'requests s', 'tail s', 'req/s N/wall', 'req/s N/runtime', 'req/s requests', 'vs bare (wall)', 'vs bare (requests)', 'CPU ms/req', 'check', 'other load'],
    runs.map((r) => [
      String(r.parallelism), f3(r.wallS), f3(r.runtimeS), f3(r.outsideRuntimeS), f3(r.startupS), f3(r.requestPhaseS), f3(r.tailS),
      f0(r.rpsWall), f0(r.rpsRuntime), f0(r.rpsPhase), pct(r.ratioToBare), pct(r.ratioToBarePhase), f3(r.clientCpuMsPerRequest), checkRun(r), f2(r.otherCores),
    ]),
  ));
  print('  start-up = process start -> first request at the fixture; requests = first -> last request; tail = last request -> exit');
  for (const r of [oneSample, thousand]) {
    print(`  n=${f0(r.n)} @ p=64 (median of ${refs} by CPU): wall ${f3(r.wallS)} s, start-up ${f3(r.startupS)} s, tail ${f3(r.tailS)} s, client CPU ${f0(r.clientCpuMs)} ms, ${checkRun(r)}`);
  }
  print(
    `  client CPU per request at p=64: warm (CPU(10,000) - CPU(1,000)) / 9,000 = ${f3(warm)} ms; with JIT warm-up (CPU(10,000) - CPU(1)) / 9,999 = ${f3(marginal)} ms;` +
      ` bare undici (warm, in-process) ${f3(baseline?.find((b) => b.c === 64)?.cpuMsPerRequest)} ms`,
  );
  if (p64) print(`  fixture CPU at p=64: ${f0(p64.serverCpuUsPerRequest)} µs/request (≈ ${f0(p64.serverCpuUsPerRequest ? 1e6 / p64.serverCpuUsPerRequest : null)} req/s ceiling on its core)`);
  print(`  scores: ${[...new Set(runs.map((r) => r.score ?? 'n/a'))].join(' | ')} (1 = every response came back and was scored)`);
  print(`  harness request bodies = baseline bodies: ${promptsIdentical}`);
  printStderr([...runs, oneSample, thousand]);
  return { runs, oneSample, thousand, warmCpuMsPerRequest: warm, marginalCpuMsPerRequest: marginal, promptsIdentical };
}

/** Checks the harness sent the baseline's bodies: its cache keys against keys of the bodies built here. */
async function comparePrompts(env: Env, outputDir: string, n: number): Promise<string> {
  const file = join(outputDir, 'cache', 'responses.jsonl');
  if (!existsSync(file)) return 'cache file missing';
  const sent = new Set(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => (JSON.parse(l) as { k: string }).k),
  );
  const bodies = await harnessBodies(env.datasetDir, env.datasetPath, n);
  const same = bodies.filter((b) => sent.has(requestKey('chat', b))).length;
  return `${same}/${n} cache keys match`;
}

async function sectionGsm8k(env: Env, fixture: Fixture, repeat: number): Promise<NonNullable<Report['gsm8k']>> {
  print(`\n== 3. GSM8K end to end: ${f0(N_GSM8K)} samples at parallelism 64 (lm-eval anchor: ${LM_EVAL.e2e1000Gsm8kS} s)`);
  const oneSample = await median(Math.max(3, repeat), (x: HarnessRun) => x.clientCpuMs ?? 0, () => runHarness(env, fixture, { task: 'gsm8k', n: 1, parallelism: 64 }));
  const run = await median(repeat, (x: HarnessRun) => x.wallS, () => runHarness(env, fixture, { task: 'gsm8k', n: N_GSM8K, parallelism: 64 }));
  const marginal = run.clientCpuMs !== null && oneSample.clientCpuMs !== null ? (run.clientCpuMs - oneSample.clientCpuMs) / (run.n - oneSample.n) : null;
  const speedup = LM_EVAL.e2e1000Gsm8kS / run.wallS;
  print(table(
    ['run', 'wall s', 'runtime s', 'wall-runtime s', 'start-up s', 'requests s', 'tail s', 'client CPU ms', 'CPU ms/req (total)', 'check', 'other load'],
    [oneSample, run].map((r) => [
      `n=${r.n}`, f3(r.wallS), f3(r.runtimeS), f3(r.outsideRuntimeS), f3(r.startupS), f3(r.requestPhaseS), f3(r.tailS), f0(r.clientCpuMs),
      f3(r.clientCpuMsPerRequest), checkRun(r), f2(r.otherCores),
    ]),
  ));
  print(`  client CPU per request, (CPU(1,000) - CPU(1)) / 999: ${f3(marginal)} ms (includes JIT warm-up)`);
  print(`  speed-up vs lm-eval: ${f2(speedup)}x; ${run.score ?? 'no score line'} (the fixture does not know the answers)`);
  printStderr([oneSample, run]);
  return { run, oneSample, marginalCpuMsPerRequest: marginal, speedupVsLmEval: speedup };
}

async function sectionLatency(env: Env, fixture: Fixture, repeat: number): Promise<LatencyRun[]> {
  print(`\n== 4. ${LATENCY_MS} ms endpoint: harness (custom task) vs the physical limit parallelism / ${LATENCY_MS} ms; bare undici as a control`);
  const runs: LatencyRun[] = [];
  for (const { c, n } of LATENCY_RUNS) {
    const r = await median(repeat, (x: HarnessRun) => x.rpsWall, () => runHarness(env, fixture, { task: 'custom', n, parallelism: c }));
    const limitRps = c / (LATENCY_MS / 1000);
    // Control: a bare undici Pool at the same parallelism (half the requests, after 2 rounds of warm-up).
    const bare = await median(repeat, (x: BareResult) => x.rps, () => runBare(env, fixture, c, Math.max(c, Math.round(n / 2)), 2 * c));
    runs.push({
      ...r,
      limitRps,
      ratioWall: r.rpsWall / limitRps,
      ratioRuntime: ratio(r.rpsRuntime, limitRps),
      ratioPhase: ratio(r.rpsPhase, limitRps),
      bare,
      bareRatio: bare.rps / limitRps,
    });
  }
  print(table(
    ['parallelism', 'N', 'limit req/s', 'wall s', 'start-up s', 'tail s', 'req/s N/wall', 'req/s requests', 'of limit (wall)', 'of limit (runtime)', 'of limit (requests)', 'bare undici of limit', 'client CPU s', 'check', 'other load'],
    runs.map((r) => [
      String(r.parallelism), f0(r.n), f0(r.limitRps), f3(r.wallS), f3(r.startupS), f3(r.tailS), f0(r.rpsWall), f0(r.rpsPhase),
      pct(r.ratioWall), pct(r.ratioRuntime), pct(r.ratioPhase), pct(r.bareRatio), f2(r.clientCpuMs === null ? null : r.clientCpuMs / 1000), checkRun(r), f2(r.otherCores),
    ]),
  ));
  printStderr(runs);
  return runs;
}

function targets(report: Report): NonNullable<Report['targets']> {
  const out: NonNullable<Report['targets']> = [];
  const add = (target: string, measured: string, met: boolean | null) => out.push({ target, measured, met });
  const atLeast = (x: number | null | undefined, min: number) => (x === null || x === undefined ? null : x >= min);
  const atMost = (x: number | null | undefined, max: number) => (x === null || x === undefined ? null : x <= max);
  const h64 = report.harness?.runs.find((r) => r.parallelism === 64);
  const b64 = report.baseline?.find((b) => b.c === 64);
  if (h64) {
    add(`10k requests @ p=64 >= ${f0(TARGET.rpsAt64)} req/s, end to end (N/wall)`, `${f0(h64.rpsWall)} req/s`, atLeast(h64.rpsWall, TARGET.rpsAt64));
    add(`10k requests @ p=64 >= ${f0(TARGET.rpsAt64)} req/s, request phase`, `${f0(h64.rpsPhase)} req/s`, atLeast(h64.rpsPhase, TARGET.rpsAt64));
    add(`10k requests @ p=64 >= 3x lm-eval (~${f0(LM_EVAL.rpsAt64)} req/s), end to end`, `${f2(h64.rpsWall / LM_EVAL.rpsAt64)}x`, atLeast(h64.rpsWall, 3 * LM_EVAL.rpsAt64));
    if (b64) {
      add(`>= ${pct(TARGET.ratioToBare)} of bare undici @ c=64, end to end`, `${pct(h64.ratioToBare)} (${f0(h64.rpsWall)} / ${f0(b64.rps)})`, atLeast(h64.ratioToBare, TARGET.ratioToBare));
      add(`>= ${pct(TARGET.ratioToBare)} of bare undici @ c=64, request phase`, `${pct(h64.ratioToBarePhase)} (${f0(h64.rpsPhase)} / ${f0(b64.rps)})`, atLeast(h64.ratioToBarePhase, TARGET.ratioToBare));
    }
  }
  for (const r of report.latency ?? []) {
    add(`${LATENCY_MS} ms endpoint @ p=${r.parallelism} >= ${pct(TARGET.ratioToLatencyLimit)} of ${f0(r.limitRps)} req/s, end to end`, `${pct(r.ratioWall)} (${f0(r.rpsWall)} req/s)`, atLeast(r.ratioWall, TARGET.ratioToLatencyLimit));
    add(`${LATENCY_MS} ms endpoint @ p=${r.parallelism} >= ${pct(TARGET.ratioToLatencyLimit)} of ${f0(r.limitRps)} req/s, request phase`, `${pct(r.ratioPhase)} (${f0(r.rpsPhase)} req/s; bare ${pct(r.bareRatio)})`, atLeast(r.ratioPhase, TARGET.ratioToLatencyLimit));
  }
  const g = report.gsm8k;
  if (g) {
    add(`GSM8K 1,000 @ p=64: start-up (process start -> 1st request) <= ${TARGET.startupS} s`, `${f3(g.run.startupS)} s`, atMost(g.run.startupS, TARGET.startupS));
    add(`GSM8K 1,000 @ p=64: wall - runtime_seconds <= ${TARGET.startupS} s`, `${f3(g.run.outsideRuntimeS)} s`, atMost(g.run.outsideRuntimeS, TARGET.startupS));
    add(`GSM8K 1,000 @ p=64: end to end >= ${TARGET.e2eSpeedup}x lm-eval (<= ${f3(LM_EVAL.e2e1000Gsm8kS / TARGET.e2eSpeedup)} s)`, `${f3(g.run.wallS)} s = ${f2(g.speedupVsLmEval)}x`, atLeast(g.speedupVsLmEval, TARGET.e2eSpeedup));
  }
  if (report.harness) {
    add(`client CPU <= ${TARGET.cpuMsPerRequest} ms/request warm (custom @ p=64, 10k - 1k runs)`, `${f3(report.harness.warmCpuMsPerRequest)} ms`, atMost(report.harness.warmCpuMsPerRequest, TARGET.cpuMsPerRequest));
    add(`client CPU <= ${TARGET.cpuMsPerRequest} ms/request (custom @ p=64, 10k - 1 runs, JIT warm-up included)`, `${f3(report.harness.marginalCpuMsPerRequest)} ms`, atMost(report.harness.marginalCpuMsPerRequest, TARGET.cpuMsPerRequest));
  }
  if (g) add(`client CPU <= ${TARGET.cpuMsPerRequest} ms/request (GSM8K 1,000 - 1, cold JIT included)`, `${f3(g.marginalCpuMsPerRequest)} ms`, atMost(g.marginalCpuMsPerRequest, TARGET.cpuMsPerRequest));
  const all = [...(report.harness?.runs ?? []), ...(report.latency ?? []), ...(g ? [g.run] : [])];
  if (all.length > 0) {
    const worst = all.reduce((a, b) => (b.serverConnections / b.parallelism > a.serverConnections / a.parallelism ? b : a));
    add('no per-request TCP connections (connections <= parallelism)', `worst: ${worst.serverConnections} for p=${worst.parallelism}, n=${f0(worst.n)}`, all.every((r) => r.serverConnections <= r.parallelism));
  }
  return out;
}

// ------------------------------------------------------------------------------------------ main

/** A bad command line: reported without a stack. */
class UsageError extends Error {}

async function warmFixture(url: string): Promise<void> {
  const pool = new Pool(url, { connections: 16 });
  const body = JSON.stringify({ model: FIXTURE_MODEL, messages: [{ role: 'user', content: 'warm-up' }] });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next++ < 3_000) {
      const res = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body });
      await res.body.text();
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await pool.close();
}

const USAGE = 'usage: node dist/bench/throughput.js [--only baseline|harness|gsm8k|latency[,…]] [--json out.json] [--repeat N]';

const OPTIONS = {
  only: { type: 'string' },
  json: { type: 'string' },
  repeat: { type: 'string', default: '1' },
  worker: { type: 'string' },
  'latency-ms': { type: 'string', default: '0' },
  url: { type: 'string' },
  'dataset-dir': { type: 'string' },
  'dataset-path': { type: 'string' },
  c: { type: 'string' },
  n: { type: 'string' },
  warmup: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function parseCommandLine() {
  try {
    return parseArgs({ options: OPTIONS, strict: true }).values;
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${USAGE}`);
  }
}

async function main(): Promise<void> {
  const values = parseCommandLine();
  if (values.worker === 'fixture') return fixtureWorker(Number(values['latency-ms']));
  if (values.worker === 'baseline') {
    return baselineWorker(values.url ?? '', values['dataset-dir'] ?? '', values['dataset-path'] ?? '', Number(values.c), Number(values.n), Number(values.warmup));
  }
  if (values.help) {
    print(USAGE);
    return;
  }
  const only = values.only === undefined ? [...SECTIONS] : values.only.split(',').map((s) => s.trim());
  for (const s of only) if (!(SECTIONS as readonly string[]).includes(s)) throw new UsageError(`--only: unknown section "${s}" (one of ${SECTIONS.join(', ')})`);
  const want = (s: Section) => only.includes(s);
  const repeat = Math.max(1, Math.floor(Number(values.repeat)) || 1);

  const root = packageRoot();
  const cli = join(root, 'dist', 'harness', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} not found: build first (npx tsc -p tsconfig.build.json)`);
  const tmp = mkdtempSync(join(tmpdir(), 'evalflow-bench-'));
  const pin = detectPinning();
  const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
  const preload = join(tmp, 'cpu-preload.mjs');
  writeFileSync(
    preload,
    "import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => { const r = process.resourceUsage(); writeFileSync(process.env.BENCH_CPU_FILE, `${r.userCPUTime} ${r.systemCPUTime}`); });\n",
  );
  const datasetDir = join(tmp, 'datasets');
  mkdirSync(datasetDir, { recursive: true });
  const gsm8kDir = join(root, '..', 'shared', 'datasets');
  const datasetPath = join(datasetDir, 'bench.jsonl');
  writeCustomDataset(datasetPath, DATASET_ROWS, join(gsm8kDir, 'gsm8k', 'test.jsonl'));
  const env: Env = { root, script: fileURLToPath(import.meta.url), cli, tmp, pinned: pin.pinned, pinNote: pin.note, timeBin, preload, datasetDir, datasetPath, gsm8kDir };

  const started = now();
  const cpuModel = cpus()[0]?.model ?? 'unknown';
  const report: Report = {
    meta: { date: new Date().toISOString(), node: process.version, cores: availableParallelism(), cpu: cpuModel, pinning: pin.note, cpuMeasure: timeBin ?? 'process.resourceUsage preload', repeat, sections: only },
  };
  print(`evalflow throughput bench — node ${process.version}, ${availableParallelism()} cores (${cpuModel})`);
  print(`pinning: ${pin.note}; client CPU via ${timeBin ?? 'process.resourceUsage() preload'}; runs per figure: ${repeat} (median)`);

  const b0 = machineBusyS();
  await new Promise((r) => setTimeout(r, 1_000));
  const b1 = machineBusyS();
  const idleBusy = b0 === null || b1 === null ? null : b1 - b0;
  const loadavg = existsSync('/proc/loadavg') ? readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') : 'n/a';
  report.meta.preflightBusyCores = idleBusy;
  report.meta.loadavg = loadavg;
  print(`machine before start: ${f2(idleBusy)} cores busy over 1 s, load average ${loadavg}`);
  if (idleBusy !== null && idleBusy > 0.2) {
    print(`WARNING: other processes are using the CPU; figures below are depressed by them (see the "other load" columns).`);
  }

  const fixtures: Fixture[] = [];
  try {
    if (want('baseline') || want('harness') || want('gsm8k')) {
      const fixture = await Fixture.start(env, 0);
      fixtures.push(fixture);
      print(`fixture: ${fixture.url} (latency 0)`);
      await warmFixture(fixture.url);
      if (want('baseline')) report.baseline = await sectionBaseline(env, fixture, repeat);
      if (want('harness')) report.harness = await sectionHarness(env, fixture, report.baseline, repeat);
      if (want('gsm8k')) {
        if (!existsSync(join(gsm8kDir, 'gsm8k', 'test.jsonl'))) print(`\n== 3. GSM8K: skipped (${join(gsm8kDir, 'gsm8k', 'test.jsonl')} not found)`);
        else report.gsm8k = await sectionGsm8k(env, fixture, repeat);
      }
    }
    if (want('latency')) {
      const slow = await Fixture.start(env, LATENCY_MS);
      fixtures.push(slow);
      print(`\nfixture: ${slow.url} (latency ${LATENCY_MS} ms)`);
      report.latency = await sectionLatency(env, slow, repeat);
    }
  } finally {
    for (const f of fixtures) f.stop();
  }

  report.targets = targets(report);
  print('\n== targets (DESIGN §6)');
  if (report.targets.length === 0) print('  (none of the selected sections measures a §6 target on its own)');
  else print(table(['target', 'measured', ''], report.targets.map((t) => [t.target, t.measured, t.met === null ? 'n/a' : t.met ? 'met' : 'NOT MET'])));
  const totalS = (now() - started) / 1000;
  report.meta.totalSeconds = totalS;
  print(`\nbench took ${totalS.toFixed(1)} s; scratch ${tmp} removed`);
  if (values.json !== undefined) {
    writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
    print(`figures written to ${values.json}`);
  }
  rmSync(tmp, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  const text = err instanceof UsageError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`bench: ${text}\n`);
  process.exitCode = 1;
});
