/** What every bench shares: where evalflow is, a scratch directory, the pinning, the repeat count. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { distPath, packageRoot } from '../../common/paths.js';
import { print } from './format.js';
import { describeMachine, detectPinning, type MachineNote, type Pinning } from './machine.js';
import { TIME_BIN } from './processes.js';

export interface BenchContext {
  root: string;
  /** dist/harness/cli.js (`run_eval`). */
  cli: string;
  /** Removed by `close()`. */
  scratch: string;
  pinning: Pinning;
  /** Runs per figure (the median is kept). */
  repeat: number;
  /** ../shared/datasets (GSM8K lives in gsm8k/test.jsonl). */
  datasetsDir: string;
  machine: MachineNote;
  close(): void;
}

/** A bad command line: reported without a stack, exit code 2. */
export class UsageError extends Error {}

export async function openBench(title: string, repeat: number): Promise<BenchContext> {
  const root = packageRoot();
  const cli = distPath('harness', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} not found: run \`npm run build\` first`);
  const scratch = mkdtempSync(join(tmpdir(), 'evalflow-bench-'));
  const pinning = detectPinning();
  const machine = await describeMachine(title);
  print(`pinning: ${pinning.note}; client CPU via ${TIME_BIN ?? 'n/a (/usr/bin/time missing: apt-get install time)'}; runs per figure: ${repeat} (median)`);
  return {
    root,
    cli,
    scratch,
    pinning,
    repeat,
    datasetsDir: join(root, '..', 'shared', 'datasets'),
    machine,
    close: () => rmSync(scratch, { recursive: true, force: true }),
  };
}

/** Runs a bench's main: usage errors exit 2 without a stack, other errors 1 with one. */
export function runMain(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    const text = err instanceof UsageError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(`bench: ${text}\n`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  });
}

/** `--repeat N` as a whole number ≥ 1. */
export function parseRepeat(value: string | undefined): number {
  const n = Number(value ?? '1');
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--repeat: a whole number >= 1, not "${value}"`);
  return n;
}

/** The command line by `options` (strict, no positionals); a bad one is a UsageError that ends with `usage`. */
export function parseCommandLine<O extends NonNullable<ParseArgsConfig['options']>>(options: O, usage: string) {
  try {
    return parseArgs({ options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${usage}`);
  }
}
