/** Shared pieces of the integration suites: configs on disk, CLI calls with captured output, datasets. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { main } from '../../client/cli.js';
import type { Output } from '../../client/output.js';
import { distPath, packageRoot } from '../../common/paths.js';

export const DATASETS = resolve(packageRoot(), '..', 'shared', 'datasets');

export function tempDir(prefix = 'evalflow-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeConfig(dir: string, yaml: string, name = 'config.yaml'): string {
  const file = join(dir, name);
  writeFileSync(file, yaml);
  return file;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process with captured output (exactly what `evalflow …` does). */
export async function cli(...argv: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const io: Output = { out: (t) => (stdout += t), err: (t) => (stderr += t), isTTY: false };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

/** The first `n` GSM8K test questions with their reference answers (the number after ####). */
export function gsm8kHead(n: number): Array<{ question: string; answer: string }> {
  return readFileSync(join(DATASETS, 'gsm8k', 'test.jsonl'), 'utf8')
    .split('\n')
    .slice(0, n)
    .map((line) => JSON.parse(line) as { question: string; answer: string })
    .map(({ question, answer }) => ({ question, answer: (answer.split('####')[1] ?? '').trim().replaceAll(',', '') }));
}

export function readYaml<T = Record<string, unknown>>(file: string): T {
  return parse(readFileSync(file, 'utf8')) as T;
}

export function startedInvocationId(stdout: string): string {
  const match = /started invocation ([0-9a-f]{16})/.exec(stdout);
  if (!match?.[1]) throw new Error(`no invocation id in output:\n${stdout}`);
  return match[1];
}

export interface HarnessProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stdout and stderr, interleaved as written. */
  output: string;
}

/** Runs the built harness (`node dist/harness/cli.js run_eval …`) as its own process, as the process backend does. */
export function runHarnessProcess(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<HarnessProcessResult> {
  return new Promise((resolveResult, reject) => {
    const child = spawn(process.execPath, [distPath('harness', 'cli.js'), 'run_eval', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => resolveResult({ code, signal, output }));
  });
}
