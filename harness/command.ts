/**
 * `run_eval`: the nemo-evaluator harness contract, as a library (harness/cli.ts is the program, bundled by
 * scripts/bundle-harness.ts into dist/harness/cli.js: `node dist/harness/cli.js run_eval …` is the entry point of the
 * process runtime, Slurm jobs and, through entrypoint.ts, the harness image).
 *
 * Exit codes (HARNESS_EXIT in core/harness-contract.ts): 0 success · 1 unexpected error · 2 invalid run config or
 * dataset · 3 too many failed samples (results written) · 4 the endpoint stayed down longer than
 * `endpoint_outage_timeout` · 5 the run's files could not be written (ENOSPC, EIO …) · 130/143 interrupted by
 * SIGINT/SIGTERM. From 3 on, responses so far are cached for a resume. Every failure also puts its reason and
 * message in `stage.exit` (core/harness-contract.ts, written by stage.ts).
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { parse as parseYamlValue } from 'yaml';
import { HARNESS_EXIT as EXIT, type StageFailure } from '../core/harness-contract.js';
import { DRAIN_MS, EndpointOutageError, HarnessConfigError, InterruptedError, readRunConfigFile, runEvaluation, StorageError } from './engine.js';
import { StageFiles } from './stage.js';

export { EXIT };

/** The outcome of one `run_eval`: its exit code and, for a failure, why. */
interface CommandResult {
  code: number;
  failure?: StageFailure;
}

const USAGE = `usage: run_eval --run_config FILE [--output_dir DIR] [--eval_type TASK] [--model_id ID]
                [--model_url URL] [--model_type chat|completions] [--api_key_name VAR]
                [--overrides "a.b=1,c.d=x"] [--dry_run] [--stage_dir DIR]`;

export async function runEvalCommand(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        run_config: { type: 'string' },
        output_dir: { type: 'string' },
        eval_type: { type: 'string' },
        model_id: { type: 'string' },
        model_url: { type: 'string' },
        model_type: { type: 'string' },
        api_key_name: { type: 'string' },
        overrides: { type: 'string' },
        dry_run: { type: 'boolean', default: false },
        stage_dir: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`run_eval: ${(err as Error).message}\n${USAGE}\n`);
    return EXIT.config;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  // The log (stdout/stderr, usually a file on the run's disk) is best effort: a full disk must not turn into an
  // unhandled 'error' event that kills the process before it can report the failure in stage.exit.
  const ignore = () => undefined;
  process.stdout.on('error', ignore);
  process.stderr.on('error', ignore);
  const stage = new StageFiles(args.stage_dir);
  const controller = new AbortController();
  let signalExit = 143;
  const onSignal = (signal: NodeJS.Signals) => {
    signalExit = signal === 'SIGINT' ? 130 : 143;
    process.stderr.write(`run_eval: ${signal} received, stopping: nothing new is sent, requests in flight get ${DRAIN_MS / 1000} s to come back (responses are cached)\n`);
    controller.abort(new InterruptedError(signal));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  stage.running();
  const result = await execute(args, controller.signal).catch((err: unknown): CommandResult => {
    const failed = (code: number, reason: StageFailure['reason'], message: string): CommandResult => {
      process.stderr.write(`run_eval: ${reason === 'interrupted' ? '' : 'error: '}${message}\n`);
      return { code, failure: { reason, message } };
    };
    if (err instanceof HarnessConfigError) return failed(EXIT.config, err.dataset ? 'dataset' : 'config', err.message);
    if (err instanceof InterruptedError) return failed(signalExit, 'interrupted', err.message);
    if (err instanceof EndpointOutageError) return failed(EXIT.endpointUnavailable, 'endpoint_unavailable', err.message);
    if (err instanceof StorageError) return failed(EXIT.storage, 'storage', err.message);
    process.stderr.write(`run_eval: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    return { code: EXIT.error, failure: { reason: 'unexpected', message: (err as Error).message ?? String(err) } };
  });
  stage.exit(result.code, result.failure);
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  process.stdout.off('error', ignore);
  process.stderr.off('error', ignore);
  return result.code;
}

async function execute(args: Record<string, string | boolean | undefined>, signal: AbortSignal): Promise<CommandResult> {
  if (typeof args.run_config !== 'string') throw new HarnessConfigError('--run_config is required');
  const raw = (readRunConfigFile(args.run_config) ?? {}) as Record<string, unknown>;
  const cfg = applyCliArgs(raw, args);
  if (args.dry_run) {
    process.stdout.write(`${JSON.stringify(cfg, null, 2)}\n`);
    return { code: EXIT.ok };
  }
  let lastLogged = 0;
  const outcome = await runEvaluation({
    runConfig: cfg as never,
    signal,
    command: `run_eval ${process.argv.slice(2).join(' ')}`.trim(),
    log: (line) => process.stderr.write(`run_eval: ${line}\n`),
    onProgress: (p) => {
      const now = Date.now();
      if (now - lastLogged >= 5000 || p.done === p.total) {
        lastLogged = now;
        process.stdout.write(`progress ${p.done}/${p.total} (cached ${p.cached}, errors ${p.errors})\n`);
      }
    },
  });
  for (const [task, { metrics }] of Object.entries(outcome.results.results.tasks)) {
    for (const [metric, { scores }] of Object.entries(metrics)) {
      for (const [score, { value }] of Object.entries(scores)) process.stdout.write(`${task} ${metric}/${score}: ${value}\n`);
    }
  }
  process.stdout.write(`results written to ${join(outcome.outputDir, 'results.yml')}\n`);
  if (outcome.errorThresholdExceeded) {
    const message = outcome.errorMessage ?? 'too many failed samples';
    process.stderr.write(`run_eval: ${message}\n`);
    return { code: EXIT.tooManyErrors, failure: { reason: 'too_many_errors', message } };
  }
  return { code: EXIT.ok };
}

/** Precedence as upstream: --overrides > individual flags > run config file. */
export function applyCliArgs(raw: Record<string, unknown>, args: Record<string, string | boolean | undefined>): Record<string, unknown> {
  const cfg = structuredClone(raw);
  const set = (path: string, value: unknown) => {
    const keys = path.split('.');
    if (keys.some((k) => k === '__proto__' || k === 'constructor' || k === 'prototype' || k === '')) {
      throw new HarnessConfigError(`--overrides: invalid key path "${path}"`);
    }
    let node = cfg;
    for (const key of keys.slice(0, -1)) {
      if (node[key] === null || typeof node[key] !== 'object') node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[keys[keys.length - 1] as string] = value;
  };
  const flags: Array<[string, string]> = [
    ['output_dir', 'config.output_dir'],
    ['eval_type', 'config.type'],
    ['model_id', 'target.api_endpoint.model_id'],
    ['model_url', 'target.api_endpoint.url'],
    ['model_type', 'target.api_endpoint.type'],
    ['api_key_name', 'target.api_endpoint.api_key_name'],
  ];
  for (const [flag, path] of flags) if (typeof args[flag] === 'string') set(path, args[flag]);
  if (typeof args.overrides === 'string' && args.overrides.trim()) {
    for (const item of args.overrides.split(',')) {
      const eq = item.indexOf('=');
      if (eq <= 0) throw new HarnessConfigError(`--overrides: expected key=value, got "${item}"`);
      set(item.slice(0, eq).trim(), parseYamlValue(item.slice(eq + 1)));
    }
  }
  return cfg;
}

/**
 * V8 settings for a process that runs the harness program (cli.ts, entrypoint.ts), never called by the library: V8
 * flags are process-wide. undici parses HTTP with llhttp compiled to WebAssembly, and V8's optimising compiler spends
 * ~0.15 s of CPU on it in a run of any size, more than its faster code saves even over 10,000 responses (bench/):
 * baseline code (Liftoff) only. llhttp is compiled at the first connection, after this call.
 */
export function tuneHarnessProcess(): void {
  setFlagsFromString('--liftoff-only');
}

/** The program: `run_eval ARGS…` (the verb first, as upstream's `nemo-evaluator run_eval`). */
export async function harnessMain(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb !== 'run_eval') {
    process.stderr.write(`${USAGE}\n`);
    return EXIT.config;
  }
  return runEvalCommand(rest);
}
