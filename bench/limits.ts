/**
 * The harness at scale and on pathological output (DESIGN.md §6 "Memory"; issue 5 §6). A measurement script, not a
 * test: it prints figures and never fails on a missed target.
 *
 *   node dist/bench/limits.js [--samples 1000,100000] [--answer-bytes 2000] [--parallelism 64] [--cli dist/harness/cli.js]
 *                             [--only memory,scoring]
 *
 * memory   `run_eval` end to end (custom task, a generated dataset of N rows) against the fixture endpoint in its own
 *          process, answering ~answer-bytes per sample; for each N a fresh run and a resumed run (same output dir:
 *          every response from the cache). Peak RSS of the harness process from /usr/bin/time, wall time, req/s.
 *          `--cli` points at another build's harness (e.g. an older commit's) to compare.
 * scoring  worst-case time to score one pathological generation of MAX_SCORED_CHARS (the scored bound) with each
 *          task's answer extraction, and a user regex that backtracks catastrophically elsewhere (`(a+)+$`).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { distPath } from '../common/paths.js';
import { MAX_SCORED_CHARS } from '../harness/engine.js';
import { extractByRegex } from '../harness/tasks/custom.js';
import { extractGsm8kAnswer } from '../harness/tasks/gsm8k.js';
import { extractMmluAnswer } from '../harness/tasks/mmlu.js';
import { defaultAnswer, startFixtureServer } from '../common/fixture-endpoint.js';

const SECTIONS = ['memory', 'scoring'] as const;

interface RunFigures {
  peakRssMiB: number;
  wallS: number;
  exitCode: number | null;
}

/** `--worker fixture`: the fixture endpoint, answering ~answerBytes per request, in its own process. */
async function fixtureWorker(answerBytes: number): Promise<void> {
  const filler = ' Let me check that once more step by step.'.repeat(Math.ceil(answerBytes / 43));
  const server = await startFixtureServer({
    record: false,
    answer: (prompt) => `${filler.slice(0, Math.max(0, answerBytes - 40))} ${defaultAnswer(prompt)}`,
  });
  process.stdout.write(`listening ${server.url}\n`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

function startFixture(script: string, answerBytes: number): Promise<{ url: string; stop: () => void }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, '--worker', 'fixture', '--answer-bytes', String(answerBytes)], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.once('error', reject);
    createInterface({ input: child.stdout }).once('line', (line) => {
      const url = /^listening (\S+)$/.exec(line)?.[1];
      if (!url) return reject(new Error(`fixture: unexpected output ${line}`));
      resolve({ url, stop: () => child.kill('SIGTERM') });
    });
  });
}

function writeDataset(dir: string, rows: number): string {
  const file = join(dir, `qa-${rows}.jsonl`);
  const lines: string[] = [];
  for (let i = 0; i < rows; i++) lines.push(JSON.stringify({ id: `q${i}`, q: `Question number ${i}: what is ${i} plus ${i % 97}?`, answer: String(i + (i % 97)) }));
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** One `run_eval` under /usr/bin/time: peak RSS (KiB from %M) and wall time. */
function runHarness(cli: string, configFile: string): Promise<RunFigures> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', 'peak_rss_kib=%M', process.execPath, cli, 'run_eval', '--run_config', configFile], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      const rss = /peak_rss_kib=(\d+)/.exec(stderr)?.[1];
      if (!rss) return reject(new Error(`no peak RSS in /usr/bin/time output:\n${stderr.slice(-2000)}`));
      resolve({ peakRssMiB: Number(rss) / 1024, wallS: (performance.now() - started) / 1000, exitCode: code });
    });
  });
}

async function memorySection(opts: { script: string; cli: string; samples: number[]; answerBytes: number; parallelism: number }): Promise<void> {
  if (!existsSync('/usr/bin/time')) {
    console.log('memory: /usr/bin/time is missing (Debian package "time"); skipped');
    return;
  }
  const scratch = mkdtempSync(join(tmpdir(), 'evalflow-bench-limits-'));
  const fixture = await startFixture(opts.script, opts.answerBytes);
  try {
    console.log(`\n== memory: run_eval (${opts.cli}), custom task, parallelism ${opts.parallelism}, ~${opts.answerBytes} B answers, fixture in its own process`);
    const rows: string[][] = [['samples', 'run', 'peak RSS MiB', 'wall s', 'samples/s', 'exit', 'cache MiB', 'per-sample MiB']];
    for (const n of opts.samples) {
      const dataset = writeDataset(scratch, n);
      const outputDir = join(scratch, `out-${n}`);
      const configFile = join(scratch, `run-${n}.yaml`);
      writeFileSync(
        configFile,
        stringify({
          config: {
            type: 'custom',
            output_dir: outputDir,
            params: { parallelism: opts.parallelism, max_new_tokens: 16, extra: { dataset_dir: scratch, dataset_path: dataset, prompt_template: '{{q}}', id_field: 'id', scorer: 'numeric' } },
          },
          target: { api_endpoint: { url: `${fixture.url}/v1/chat/completions`, model_id: 'fixture-model', type: 'chat' } },
        }),
      );
      for (const run of ['fresh', 'resumed (all cached)']) {
        const f = await runHarness(opts.cli, configFile);
        const size = (file: string) => (existsSync(file) ? (statSync(file).size / 2 ** 20).toFixed(1) : '-');
        rows.push([
          n.toLocaleString('en-US'),
          run,
          f.peakRssMiB.toFixed(0),
          f.wallS.toFixed(2),
          Math.round(n / f.wallS).toLocaleString('en-US'),
          String(f.exitCode),
          size(join(outputDir, 'cache', 'responses.jsonl')),
          size(join(outputDir, 'nemo-evaluator-per-sample-outputs', 'custom.jsonl')),
        ]);
        console.log(`  ${n} ${run}: peak RSS ${f.peakRssMiB.toFixed(0)} MiB, ${f.wallS.toFixed(2)} s, exit ${f.exitCode}`);
      }
      rmSync(outputDir, { recursive: true, force: true });
    }
    printTable(rows);
  } finally {
    fixture.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

function scoringSection(): void {
  const n = MAX_SCORED_CHARS;
  const fill = (unit: string, tail: string) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n - tail.length) + tail;
  const choices = ['alpha beta', 'gamma', 'delta epsilon', 'A cat'];
  const cases: Array<[string, string, (text: string) => unknown]> = [];
  const units = [' ', '\n', '.', '1', '1,', 'answer: ', 'answer is ', 'correct answer is ', '####', '\\boxed{', 'A ', '(A', '**', '$'];
  for (const unit of units) {
    for (const tail of ['', '!', ' 5']) {
      const text = fill(unit, tail);
      cases.push([`gsm8k ${JSON.stringify(unit)}+${JSON.stringify(tail)}`, text, extractGsm8kAnswer]);
      cases.push([`mmlu ${JSON.stringify(unit)}+${JSON.stringify(tail)}`, text, (t) => extractMmluAnswer(t, choices)]);
    }
  }
  cases.push(['custom regex (a+)+$ on a…a!', fill('a', '!'), (t) => extractByRegex(t, '(a+)+$')]);
  cases.push(['custom regex (x+x+)+y on x…x', fill('x', ''), (t) => extractByRegex(t, '(x+x+)+y')]);
  const timed = cases.map(([name, text, fn]) => {
    const t = performance.now();
    fn(text);
    return { name, ms: performance.now() - t };
  });
  timed.sort((a, b) => b.ms - a.ms);
  console.log(`\n== scoring: one pathological generation of ${n.toLocaleString('en-US')} characters (the scored bound), ${timed.length} cases, slowest first`);
  printTable([['case', 'ms'], ...timed.slice(0, 8).map((t) => [t.name, t.ms.toFixed(1)])]);
  const regex = timed.filter((t) => t.name.startsWith('custom regex'));
  for (const r of regex) console.log(`  ${r.name}: ${r.ms.toFixed(1)} ms (a backtracking engine does not finish)`);
}

function printTable(rows: string[][]): void {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  for (const [i, row] of rows.entries()) {
    console.log(`  ${row.map((cell, c) => (c === 0 || c === 1 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ')}`);
    if (i === 0) console.log(`  ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      worker: { type: 'string' },
      'answer-bytes': { type: 'string', default: '2000' },
      samples: { type: 'string', default: '1000,100000' },
      parallelism: { type: 'string', default: '64' },
      cli: { type: 'string', default: distPath('harness', 'cli.js') },
      only: { type: 'string', default: SECTIONS.join(',') },
    },
    strict: true,
  });
  const answerBytes = Number(values['answer-bytes']);
  if (values.worker === 'fixture') return fixtureWorker(answerBytes);
  const only = new Set(values.only.split(','));
  const started = performance.now();
  if (only.has('scoring')) scoringSection();
  if (only.has('memory')) {
    await memorySection({
      script: fileURLToPath(import.meta.url),
      cli: values.cli,
      samples: values.samples.split(',').map(Number),
      answerBytes,
      parallelism: Number(values.parallelism),
    });
  }
  console.log(`\nbench took ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

await main();
