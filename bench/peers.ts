/**
 * evalflow's harness against the peers, in one run (issue 9 §4, DESIGN.md §6): lm-eval 0.4.13
 * (`local-chat-completions`) and Inspect AI 0.3.285 (`openai-api/<name>/<model>` provider) from PyPI in
 * a bench-only venv under .tools/ (installed on first use; `--no-install` refuses), and `run_eval`,
 * all against the same fixture endpoint on loopback (its own process on core 0, each client on
 * core 1), with the same N GSM8K prompts at concurrency 1, 16 and 64, and the endpoint's own ceiling
 * (wrk, a Debian package: `apt-get install wrk`). A measurement script, not a test: nothing in it is a
 * peer constant; every figure and ratio it prints is measured in the run.
 *
 *   node dist/bench/peers.js [--n 1000] [--concurrency 1,16,64] [--repeat 3] [--clients evalflow,lm-eval,inspect]
 *                            [--venv DIR] [--no-install] [--json out.json]
 *
 * The prompts: the first N GSM8K test questions as evalflow's gsm8k task builds them (zero-shot chat,
 * one user message), written to a local JSONL that lm-eval reads through a task YAML (`dataset_path:
 * json`, `data_files`, `num_fewshot: 0`, `--apply_chat_template`, offline HF env vars) and Inspect
 * through `json_dataset` in a task file run by relative path; evalflow runs its own gsm8k task on the
 * same rows. All three log their per-sample outputs (lm-eval `--log_samples`, Inspect's .eval log,
 * evalflow's samples file). Each client runs once unmeasured first (byte-code and dataset caches),
 * then the runs are interleaved (client × concurrency, `--repeat` rounds) and every figure is the
 * median over the rounds. Per run: requests/s end to end (N / process start → exit) and in the
 * request phase (first → last request at the server), start-up (process start → first request),
 * client CPU per request (/usr/bin/time: the process and its children), TCP connections seen.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURE_MODEL } from '../common/fixture-endpoint.js';
import { gsm8k } from '../harness/tasks/gsm8k.js';
import { gsm8kTask } from './gsm8k.js';
import { measureClient, stderrLines, type ClientCommand, type ClientRun } from './lib/client-run.js';
import { openBench, parseCommandLine, parseRepeat, runMain, UsageError, type BenchContext } from './lib/context.js';
import { Fixture } from './lib/fixture.js';
import { atLeast, f0, f2, f3, pct, print, printTargets, table, times, type Target } from './lib/format.js';
import { runHarness } from './lib/harness-run.js';
import { onPath } from './lib/machine.js';
import { peerVenv, type PeerVenv } from './lib/peer-venv.js';
import { runMeasured } from './lib/processes.js';
import { median, ratio } from './lib/stats.js';

const CLIENTS = ['evalflow', 'lm-eval', 'inspect'] as const;
type ClientName = (typeof CLIENTS)[number];
const LABEL: Record<ClientName, string> = { evalflow: 'evalflow run_eval', 'lm-eval': 'lm-eval local-chat-completions', inspect: 'Inspect AI openai-api' };

/** Same generation budget for everyone (evalflow's gsm8k default); the fixture's answers are short anyway. */
const MAX_TOKENS = 512;
/** A peer run may be slow (Inspect at concurrency 1 on a busy machine): killed after this. */
const PEER_TIMEOUT_MS = 900_000;
const CEILING_SECONDS = 5;
const TARGETS = { e2eVsLmEval: 10, e2eVsInspect: 3, phaseVsLmEval: 1.5 };

const USAGE =
  'usage: node dist/bench/peers.js [--n 1000] [--concurrency 1,16,64] [--repeat N] [--clients evalflow,lm-eval,inspect] [--venv DIR] [--no-install] [--json out.json]';

interface Prompts {
  /** The JSONL lm-eval and Inspect read: {id, prompt, answer}. */
  file: string;
  n: number;
  /** The body of the first request, for the endpoint ceiling. */
  firstBody: string;
}

/** The first n GSM8K samples as evalflow's gsm8k task builds its chat prompts. */
async function writePrompts(ctx: BenchContext, n: number): Promise<Prompts> {
  const samples = (await gsm8k.loadSamples({ datasetDir: ctx.datasetsDir, extra: {} })).slice(0, n);
  if (samples.length < n) throw new UsageError(`--n ${n}: the GSM8K test set has ${samples.length} samples`);
  const rows = samples.map((s) => {
    const prompt = gsm8k.buildPrompt(s, 'chat', { extra: {} });
    if (prompt.kind !== 'chat' || prompt.messages.length !== 1) throw new Error('gsm8k zero-shot chat prompts are one user message');
    return { id: s.id, prompt: prompt.messages[0]?.content ?? '', answer: s.groundTruth };
  });
  const dir = join(ctx.scratch, 'peers');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'gsm8k_prompts.jsonl');
  writeFileSync(file, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
  const firstBody = JSON.stringify({ model: FIXTURE_MODEL, messages: [{ role: 'user', content: rows[0]?.prompt ?? '' }], max_tokens: MAX_TOKENS, temperature: 0 });
  return { file, n, firstBody };
}

/** lm-eval's task: the local JSONL through the `json` dataset builder, zero-shot, generate until done. */
function writeLmEvalTask(dir: string, prompts: Prompts): string {
  const taskDir = join(dir, 'lm-eval-tasks');
  mkdirSync(taskDir, { recursive: true });
  const yaml = [
    'task: evalflow_peers_gsm8k',
    'dataset_path: json',
    'dataset_kwargs:',
    '  data_files:',
    `    test: ${JSON.stringify(prompts.file)}`,
    'test_split: test',
    'output_type: generate_until',
    'num_fewshot: 0',
    'doc_to_text: "{{prompt}}"',
    'doc_to_target: "{{answer}}"',
    'generation_kwargs:',
    '  until: []',
    '  do_sample: false',
    '  temperature: 0',
    `  max_gen_toks: ${MAX_TOKENS}`,
    'metric_list:',
    '  - metric: exact_match',
    '    aggregation: mean',
    '    higher_is_better: true',
    'metadata:',
    '  version: 1.0',
    '',
  ].join('\n');
  writeFileSync(join(taskDir, 'evalflow_peers_gsm8k.yaml'), yaml);
  return taskDir;
}

/** Inspect's task file (run by relative path from its directory): the same JSONL, generate, numeric match. */
function writeInspectTask(dir: string, prompts: Prompts): string {
  const taskDir = join(dir, 'inspect-task');
  mkdirSync(taskDir, { recursive: true });
  const py = [
    'from inspect_ai import Task, task',
    'from inspect_ai.dataset import FieldSpec, json_dataset',
    'from inspect_ai.scorer import match',
    'from inspect_ai.solver import generate',
    '',
    '',
    '@task',
    'def gsm8k_peers():',
    '    return Task(',
    `        dataset=json_dataset(${JSON.stringify(prompts.file)}, FieldSpec(input="prompt", target="answer", id="id")),`,
    '        solver=generate(),',
    '        scorer=match(numeric=True),',
    '    )',
    '',
  ].join('\n');
  writeFileSync(join(taskDir, 'gsm8k_peers.py'), py);
  return taskDir;
}

interface PeerSetup {
  venv: PeerVenv;
  lmEvalTasks: string;
  inspectTaskDir: string;
  /** HF caches for lm-eval (offline; the json builder's cache is filled by the unmeasured run). */
  hfHome: string;
}

interface Measured extends ClientRun {
  client: ClientName;
  concurrency: number;
  round: number;
  warnings: string[];
}

let peerRuns = 0;

async function runClient(ctx: BenchContext, fixture: Fixture, prompts: Prompts, setup: PeerSetup | null, client: ClientName, c: number, round: number): Promise<Measured> {
  if (client === 'evalflow') {
    const r = await runHarness(ctx, fixture, gsm8kTask(ctx.datasetsDir), prompts.n, c);
    return { ...r, client, concurrency: c, round };
  }
  if (setup === null) throw new Error(`${client} needs the peer venv`);
  const out = join(ctx.scratch, `peer-${++peerRuns}-${client}-c${c}`);
  const command: Omit<ClientCommand, 'n' | 'timeoutMs'> =
    client === 'lm-eval'
      ? {
          argv: [
            setup.venv.lmEval, '--model', 'local-chat-completions',
            '--model_args', `model=${FIXTURE_MODEL},base_url=${fixture.url}/v1/chat/completions,num_concurrent=${c},tokenized_requests=False,max_retries=2,timeout=60`,
            '--tasks', 'evalflow_peers_gsm8k', '--include_path', setup.lmEvalTasks, '--apply_chat_template',
            '--output_path', out, '--log_samples', '--batch_size', '1',
          ],
          env: { HF_HOME: setup.hfHome, HF_DATASETS_OFFLINE: '1', HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1', HF_HUB_DISABLE_TELEMETRY: '1', TOKENIZERS_PARALLELISM: 'false' },
        }
      : {
          argv: [
            setup.venv.inspect, 'eval', 'gsm8k_peers.py', '--model', `openai-api/fixture/${FIXTURE_MODEL}`,
            '--max-connections', String(c), '--temperature', '0', '--max-tokens', String(MAX_TOKENS),
            '--max-retries', '2', '--timeout', '60', '--log-dir', out, '--display', 'none',
          ],
          env: { FIXTURE_BASE_URL: `${fixture.url}/v1`, FIXTURE_API_KEY: 'bench', INSPECT_DISPLAY: 'none' },
          cwd: setup.inspectTaskDir,
        };
  const { figures, stderr } = await measureClient(ctx.pinning, fixture, ctx.scratch, { ...command, n: prompts.n, timeoutMs: PEER_TIMEOUT_MS });
  if (figures.exitCode !== 0) process.stderr.write(`  ! ${client} c=${c} exited ${figures.exitCode}\n${stderr.slice(-3000)}\n`);
  return { ...figures, client, concurrency: c, round, warnings: stderrLines(stderr).slice(0, 5) };
}

interface Summary {
  client: ClientName;
  concurrency: number;
  runs: number;
  failedRuns: number;
  rpsWall: number | null;
  rpsPhase: number | null;
  wallS: number | null;
  startupS: number | null;
  tailS: number | null;
  cpuMsPerRequest: number | null;
  connections: number | null;
  otherCores: number | null;
}

/** Per client and concurrency: the median of each figure over the rounds (failed runs left out and counted). */
function summarize(runs: Measured[], client: ClientName, c: number): Summary {
  const all = runs.filter((r) => r.client === client && r.concurrency === c);
  const ok = all.filter((r) => r.exitCode === 0 && r.serverRequests >= r.n);
  const m = (f: (r: Measured) => number | null) => median(ok.map(f));
  return {
    client,
    concurrency: c,
    runs: all.length,
    failedRuns: all.length - ok.length,
    rpsWall: m((r) => r.rpsWall),
    rpsPhase: m((r) => r.rpsPhase),
    wallS: m((r) => r.wallS),
    startupS: m((r) => r.startupS),
    tailS: m((r) => r.tailS),
    cpuMsPerRequest: m((r) => r.clientCpuMsPerRequest),
    connections: m((r) => r.serverConnections),
    otherCores: m((r) => r.otherCores),
  };
}

/** The endpoint's own ceiling: wrk with `c` connections on the client core, POSTing the first prompt's body. */
async function endpointCeiling(ctx: BenchContext, fixture: Fixture, prompts: Prompts, c: number): Promise<number | null> {
  const wrk = onPath('wrk');
  if (wrk === null) return null;
  const script = join(ctx.scratch, 'wrk-post.lua');
  if (!existsSync(script)) {
    writeFileSync(script, `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = ${JSON.stringify(prompts.firstBody)}\n`);
  }
  const run = await runMeasured(ctx.pinning, 'client', [wrk, '-t1', `-c${c}`, `-d${CEILING_SECONDS}s`, '-s', script, `${fixture.url}/v1/chat/completions`], ctx.scratch, { timeoutMs: 60_000 });
  const m = /Requests\/sec:\s*([\d.]+)/.exec(run.stdout);
  if (run.code !== 0 || !m) {
    process.stderr.write(`  ! wrk c=${c} failed (${run.code}): ${run.stderr.slice(-500)}\n`);
    return null;
  }
  return Number(m[1]);
}

function parseList(value: string, name: string): number[] {
  const xs = value.split(',').map((s) => Number(s.trim()));
  if (xs.some((x) => !Number.isInteger(x) || x < 1)) throw new UsageError(`--${name}: whole numbers >= 1, comma-separated, not "${value}"`);
  return xs;
}

async function main(): Promise<void> {
  const values = parseCommandLine(
    {
      n: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '1,16,64' },
      repeat: { type: 'string', default: '1' },
      clients: { type: 'string', default: CLIENTS.join(',') },
      venv: { type: 'string' },
      'no-install': { type: 'boolean', default: false },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    USAGE,
  );
  if (values.help) return print(USAGE);
  const [n] = parseList(values.n, 'n');
  const concurrencies = parseList(values.concurrency, 'concurrency');
  const clients = values.clients.split(',').map((s) => s.trim());
  for (const c of clients) if (!(CLIENTS as readonly string[]).includes(c)) throw new UsageError(`--clients: unknown client "${c}" (one of ${CLIENTS.join(', ')})`);
  const chosen = CLIENTS.filter((c) => clients.includes(c));
  const ctx = await openBench('evalflow vs lm-eval vs Inspect AI (same endpoint, same prompts, one run)', parseRepeat(values.repeat));
  const fixture = await Fixture.start(ctx.pinning, 0);
  try {
    const needsVenv = chosen.some((c) => c !== 'evalflow');
    const venv = needsVenv ? peerVenv({ ...(values.venv ? { dir: values.venv } : {}), install: !values['no-install'] }) : null;
    if (venv) print(`peers: lm-eval ${venv.versions.lmEval}, inspect-ai ${venv.versions.inspectAi}, openai ${venv.versions.openai}, Python ${venv.versions.python} (${venv.dir})`);
    const prompts = await writePrompts(ctx, n ?? 1000);
    const peersDir = join(ctx.scratch, 'peers');
    const setup: PeerSetup | null = venv
      ? { venv, lmEvalTasks: writeLmEvalTask(peersDir, prompts), inspectTaskDir: writeInspectTask(peersDir, prompts), hfHome: join(peersDir, 'hf') }
      : null;
    print(`fixture: ${fixture.url} (latency 0); ${f0(prompts.n)} GSM8K prompts; concurrency ${concurrencies.join(', ')}; clients ${chosen.join(', ')}`);
    await fixture.warm();

    const ceilings: Array<{ c: number; rps: number | null }> = [];
    for (const c of [...new Set([...concurrencies, 64])]) ceilings.push({ c, rps: await endpointCeiling(ctx, fixture, prompts, c) });
    print(`endpoint ceiling (wrk -t1, ${CEILING_SECONDS} s, on the client core): ${onPath('wrk') === null ? 'n/a (wrk not found: apt-get install wrk)' : ceilings.map((x) => `c=${x.c} ${f0(x.rps)} req/s`).join(', ')}`);

    print('warm-up: one unmeasured run per client (byte-code, dataset caches) ...');
    for (const client of chosen) await runClient(ctx, fixture, prompts, setup, client, Math.max(...concurrencies), 0);

    const runs: Measured[] = [];
    for (let round = 1; round <= ctx.repeat; round++) {
      for (const c of concurrencies) {
        for (const client of chosen) {
          const r = await runClient(ctx, fixture, prompts, setup, client, c, round);
          runs.push(r);
          print(`  round ${round} c=${c} ${client}: wall ${f3(r.wallS)} s, start-up ${f3(r.startupS)} s, requests ${f0(r.rpsPhase)} req/s, CPU ${f3(r.clientCpuMsPerRequest)} ms/req, exit ${r.exitCode}, other load ${f2(r.otherCores)}`);
        }
      }
    }

    const summaries = concurrencies.flatMap((c) => chosen.map((client) => summarize(runs, client, c)));
    print(`\n== ${f0(prompts.n)} GSM8K prompts, medians of ${ctx.repeat} interleaved round(s); endpoint on core 0, client on core 1`);
    print(table(
      ['client', 'c', 'wall s', 'start-up s', 'tail s', 'req/s end to end', 'req/s request phase', 'client CPU ms/req', 'conns', 'of ceiling (phase)', 'failed runs', 'other load'],
      summaries.map((s) => {
        const ceiling = ceilings.find((x) => x.c === s.concurrency)?.rps ?? null;
        return [
          LABEL[s.client], String(s.concurrency), f3(s.wallS), f3(s.startupS), f3(s.tailS), f0(s.rpsWall), f0(s.rpsPhase), f3(s.cpuMsPerRequest),
          f0(s.connections), pct(ratio(s.rpsPhase, ceiling)), `${s.failedRuns}/${s.runs}`, f2(s.otherCores),
        ];
      }),
    ));
    print('  start-up = process start -> first request at the endpoint; request phase = first -> last request; tail = last request -> exit');

    const ratios = concurrencies.flatMap((c) => {
      const ours = summaries.find((s) => s.client === 'evalflow' && s.concurrency === c);
      return chosen
        .filter((p) => p !== 'evalflow')
        .map((peer) => {
          const theirs = summaries.find((s) => s.client === peer && s.concurrency === c);
          return {
            peer,
            c,
            endToEnd: ratio(ours?.rpsWall, theirs?.rpsWall),
            requestPhase: ratio(ours?.rpsPhase, theirs?.rpsPhase),
            cpu: ratio(theirs?.cpuMsPerRequest, ours?.cpuMsPerRequest),
            startup: ratio(theirs?.startupS, ours?.startupS),
          };
        });
    });
    if (chosen.includes('evalflow') && ratios.length > 0) {
      print('\n== ratios evalflow / peer (> 1: evalflow is faster / uses less)');
      print(table(
        ['peer', 'c', 'end to end (req/s)', 'request phase (req/s)', 'CPU per request (peer / evalflow)', 'start-up (peer / evalflow)'],
        ratios.map((r) => [LABEL[r.peer], String(r.c), times(r.endToEnd), times(r.requestPhase), times(r.cpu), times(r.startup)]),
      ));
    }

    const targets: Target[] = [];
    const at64 = (peer: ClientName) => ratios.find((r) => r.peer === peer && r.c === 64);
    const lm = at64('lm-eval');
    const insp = at64('inspect');
    const nLabel = `${f0(prompts.n)} GSM8K samples @ c=64`;
    if (lm) {
      targets.push({ target: `${nLabel}: end to end >= ${TARGETS.e2eVsLmEval}x lm-eval`, measured: times(lm.endToEnd), met: atLeast(lm.endToEnd, TARGETS.e2eVsLmEval) });
      targets.push({ target: `${nLabel}: request phase >= ${TARGETS.phaseVsLmEval}x lm-eval`, measured: times(lm.requestPhase), met: atLeast(lm.requestPhase, TARGETS.phaseVsLmEval) });
    }
    if (insp) targets.push({ target: `${nLabel}: end to end >= ${TARGETS.e2eVsInspect}x Inspect AI`, measured: times(insp.endToEnd), met: atLeast(insp.endToEnd, TARGETS.e2eVsInspect) });
    printTargets('issue 9 §4 / DESIGN §6, peers measured in this run', targets);
    const warnings = new Map<string, string>();
    for (const r of runs) for (const w of r.warnings) warnings.set(`${r.client}: ${w}`, '');
    if (warnings.size > 0) print(`\nclient stderr (first lines, once each):\n${[...warnings.keys()].slice(0, 20).map((w) => `  ${w}`).join('\n')}`);
    if (values.json !== undefined) {
      const report = { meta: { date: new Date().toISOString(), ...ctx.machine, pinning: ctx.pinning.note, repeat: ctx.repeat, n: prompts.n, peers: venv?.versions ?? null }, ceilings, runs, summaries, ratios, targets };
      writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
      print(`figures written to ${values.json}`);
    }
  } finally {
    fixture.stop();
    ctx.close();
  }
}

runMain(main);
