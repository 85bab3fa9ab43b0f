/**
 * The `evalflow` CLI. Each verb lives in client/commands/ and is imported lazily, so that quick verbs
 * (`--dry-run`, `ls tasks`) do not pay for the Temporal client and `harness run_eval` stays lean.
 *
 * Exit codes: 0 ok · 1 the run or the command failed · 2 bad input (config, override, flag, id).
 */
import type { Client } from '@temporalio/client';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError } from '../config/errors.js';
import { evalflowVersion } from '../common/paths.js';
import type { CompareOptions } from './commands/compare.js';
import type { ExportOptions } from './commands/export.js';
import type { InfoOptions } from './commands/info.js';
import { stdio, type Output } from './output.js';

const collect = (value: string, previous: string[]) => [...previous, value];
const parseNumber = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`'${value}' is not a number`);
  return n;
};

export async function main(argv: string[], io: Output = stdio): Promise<number> {
  if (argv[0] === 'harness' && argv[1] === 'run_eval') {
    // The harness parses its own upstream-style flags (--run_config, --output_dir, …).
    const { runEvalCommand } = await import('../harness/command.js');
    return runEvalCommand(argv.slice(2));
  }
  let exitCode = 0;
  const program = new Command('evalflow')
    .description('Durable LLM evaluations on Temporal (NeMo Evaluator launcher compatible)')
    .version(evalflowVersion(), '--version')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(run with --help for usage)');

  const withClient = async <T>(fn: (client: Client) => Promise<T>): Promise<T> => {
    const { connectClient } = await import('../common/temporal.js');
    const client = await connectClient();
    try {
      return await fn(client);
    } finally {
      await client.connection.close();
    }
  };

  program
    .command('run')
    .description('validate a config and start an invocation (one workflow, a child per task)')
    .option('-c, --config <file>', 'YAML config in the nemo-evaluator-launcher format')
    .option('-o, --override <key=value>', 'override a config value (+key= adds, ~key deletes); repeatable', collect, [])
    .option('-t, --task <name>', 'run only this task (name, or name.<n> for one instance); repeatable', collect, [])
    .addOption(new Option('--config-mode <mode>', 'hydra: defaults, interpolation, overrides; raw: plain YAML').choices(['hydra', 'raw']).default('hydra'))
    .option('-n, --dry-run', 'validate and print what would run; needs no server', false)
    .option('--wait', 'wait for the run to end, showing progress, then print the results', false)
    .option('--json', 'machine-readable output', false)
    .option('--config-output <dir>', 'also save the resolved config as <dir>/<invocation>_config.yml (rerun it with --config-mode raw)')
    .action(async (o: { config?: string; override: string[]; task: string[]; configMode: 'hydra' | 'raw'; dryRun: boolean; wait: boolean; json: boolean; configOutput?: string }) => {
      const { runCommand } = await import('./commands/run.js');
      exitCode = await runCommand(
        {
          configPath: o.config,
          overrides: o.override,
          taskFilter: o.task,
          configMode: o.configMode,
          dryRun: o.dryRun,
          wait: o.wait,
          json: o.json,
          configOutput: o.configOutput,
        },
        io,
      );
    });

  program
    .command('status')
    .description('state and progress of invocations or jobs (unique id prefixes accepted)')
    .argument('<ids...>')
    .option('--json', 'machine-readable output', false)
    .action(async (ids: string[], o: { json: boolean }) => {
      const { statusCommand } = await import('./commands/status.js');
      exitCode = await withClient((c) => statusCommand(c, ids, o, io));
    });

  program
    .command('kill')
    .description('cancel an invocation or one job; its harness is stopped')
    .argument('<id>')
    .action(async (id: string) => {
      const { killCommand } = await import('./commands/kill.js');
      exitCode = await withClient((c) => killCommand(c, id, io));
    });

  program
    .command('resume')
    .description('re-run the failed or killed jobs of a finished invocation (or one job); cached samples are not requested again')
    .argument('<id>')
    .option('--all', 'also re-run the jobs that succeeded', false)
    .option('--wait', 'wait for the run to end, showing progress, then print the results', false)
    .option('--json', 'machine-readable output', false)
    .action(async (id: string, o: { all: boolean; wait: boolean; json: boolean }) => {
      const { resumeCommand } = await import('./commands/resume.js');
      exitCode = await withClient((c) => resumeCommand(c, id, o, io));
    });

  program
    .command('logs')
    .description('harness logs of invocations or jobs')
    .argument('<ids...>')
    .option('-f, --follow', 'keep printing until the runs end', false)
    .action(async (ids: string[], o: { follow: boolean }) => {
      const { logsCommand } = await import('./commands/logs.js');
      exitCode = await withClient((c) => logsCommand(c, ids, o, io));
    });

  const ls = program.command('ls').description('list tasks (the default) or runs, or show one task');
  ls.command('tasks', { isDefault: true })
    .description('the task catalogue: built-in tasks and upstream harness tasks')
    .option('--json', 'machine-readable output', false)
    .action(async (o: { json: boolean }) => {
      const { lsTasksCommand } = await import('./commands/ls.js');
      exitCode = lsTasksCommand(o, io);
    });
  ls.command('task')
    .description("one catalogue task: where it runs (built-in harness or image), endpoint types, default params")
    .argument('<name>', 'harness.task, or a bare task name')
    .option('--json', 'machine-readable output', false)
    .action(async (name: string, o: { json: boolean }) => {
      const { lsTaskCommand } = await import('./commands/ls.js');
      exitCode = lsTaskCommand(name, o, io);
    });
  ls.command('runs')
    .description('recent invocations (a Temporal visibility query)')
    .option('--since <when>', 'only runs started after this (2026-01-31, 2026-01-31T12:00:00, 6h, 1d)')
    .option('--limit <n>', 'at most this many runs', (v) => Number.parseInt(v, 10), 50)
    .option('--json', 'machine-readable output', false)
    .action(async (o: { since?: string; limit: number; json: boolean }) => {
      const { lsRunsCommand } = await import('./commands/ls.js');
      exitCode = await withClient((c) => lsRunsCommand(c, o, io));
    });

  program
    .command('info')
    .description("where invocations' or jobs' config, artifacts and logs are; copy them with --copy-artifacts/--copy-logs")
    .argument('<ids...>')
    .option('--config', 'also print the saved launcher config', false)
    .option('--artifacts', 'also list the artifact files', false)
    .option('--logs', 'also list the log files', false)
    .option('--copy-artifacts <dir>', 'copy each job\'s artifacts to <dir>/<job id>/artifacts')
    .option('--copy-logs <dir>', 'copy each job\'s logs to <dir>/<job id>/logs')
    .action(async (ids: string[], o: InfoOptions) => {
      const { infoCommand } = await import('./commands/info.js');
      exitCode = await withClient((c) => infoCommand(c, ids, o, io));
    });

  program
    .command('version')
    .description('the evalflow version')
    .action(() => {
      io.out(`evalflow ${evalflowVersion()} (node ${process.versions.node})\n`);
    });

  program
    .command('export')
    .description('export results of invocations or jobs (local files, MLflow); exporting again never duplicates')
    .argument('<ids...>')
    .requiredOption('--dest <dest>', 'destination: local or mlflow')
    .addOption(new Option('--format <format>', 'file format of the local destination (default json)').choices(['json', 'csv']))
    .option('--output-dir <dir>', 'local: where to write (default: the run directory)')
    .option('--output-filename <name>', 'local: file name (default: processed_results)')
    .option('--copy-logs', 'also export the logs/ of each job', false)
    .option('--copy-artifacts', 'export the artifacts of each job (the default)', false)
    .option('--only-required', 'only results.yml, eval_factory_metrics.json, run_config.yml, metadata.yaml (the default)', false)
    .option('--log-metrics <name...>', 'only metrics whose flattened name contains one of these')
    .option('-o, --override <export.dest.key=value>', 'a destination setting, e.g. export.mlflow.tracking_uri=http://…; repeatable', collect, [])
    .action(async (ids: string[], o: ExportOptions) => {
      const { exportCommand, settingsFromOptions } = await import('./commands/export.js');
      settingsFromOptions(o); // bad settings are bad input: fail before connecting
      exitCode = await withClient((c) => exportCommand(c, ids, o, io));
    });

  program
    .command('compare')
    .description('compare run B with baseline A per task and metric: difference, paired interval, p-value, verdict (exit 1 on a regression)')
    .argument('<a>', 'baseline: invocation or job id (unique prefix) or run directory')
    .argument('<b>', 'candidate: invocation or job id (unique prefix) or run directory')
    .option('--json', 'machine-readable output', false)
    .option('--html <file>', 'also write a self-contained HTML report')
    .option('--min-drop <x>', 'smallest drop that counts (metric units, default 0.02)', parseNumber)
    .option('--alpha <x>', 'significance level of the paired test (default 0.05)', parseNumber)
    .option('--confidence <x>', 'confidence level of the intervals (default 0.95)', parseNumber)
    .option('--gate <glob>', 'metrics that decide the verdict (flattened names, * wildcard; default all); repeatable', collect, [])
    .option('--lower-is-better <glob>', 'metrics where lower is better; repeatable', collect, [])
    .option('--seed <n>', 'bootstrap seed', parseNumber)
    .option('--resamples <n>', 'bootstrap resamples (default 10000)', parseNumber)
    .action(async (a: string, b: string, o: CompareOptions) => {
      const { compareCommand, isRunDir } = await import('./commands/compare.js');
      if (isRunDir(a) && isRunDir(b)) {
        exitCode = await compareCommand(() => Promise.reject(new Error('no Temporal client needed')), a, b, o, io);
        return;
      }
      exitCode = await withClient((c) => compareCommand(() => Promise.resolve(c), a, b, o, io));
    });

  const schedule = program.command('schedule').description('nightly regression runs on Temporal Schedules: each night a new invocation, judged against a baseline');
  schedule
    .command('create')
    .description('create a schedule that runs the suite (-c) and gates it against its baseline (config key nightly:)')
    .argument('<name>')
    .option('-c, --config <file>', 'YAML config in the nemo-evaluator-launcher format (with an optional nightly: section)')
    .option('-o, --override <key=value>', 'override a config value; repeatable', collect, [])
    .option('-t, --task <name>', 'run only this task; repeatable', collect, [])
    .addOption(new Option('--config-mode <mode>', 'hydra or raw').choices(['hydra', 'raw']).default('hydra'))
    .option('--cron <expr>', "when, as a 5-field cron expression, e.g. '0 2 * * *'")
    .option('--timezone <tz>', 'IANA time zone of --cron (default UTC)')
    .option('--interval <duration>', 'instead of --cron: every 90s, 30m, 24h, 7d')
    .option('--catchup-window <duration>', 'nights missed while the server was down are taken if at most this late', '1h')
    .option('--paused', 'create it paused', false)
    .option('--note <text>', 'a note shown with the schedule')
    .action(async (name: string, o: { config?: string; override: string[]; task: string[]; configMode: 'hydra' | 'raw'; cron?: string; timezone?: string; interval?: string; catchupWindow: string; paused: boolean; note?: string }) => {
      const { scheduleCreateCommand } = await import('./commands/schedule.js');
      const { connectClient } = await import('../common/temporal.js');
      let client: Client | undefined;
      try {
        exitCode = await scheduleCreateCommand(
          async () => (client = await connectClient()),
          name,
          { configPath: o.config, overrides: o.override, taskFilter: o.task, configMode: o.configMode, cron: o.cron, timezone: o.timezone, interval: o.interval, catchupWindow: o.catchupWindow, paused: o.paused, note: o.note },
          io,
        );
      } finally {
        await client?.connection.close();
      }
    });
  schedule
    .command('list')
    .description('the schedules: spec, state, next run, last night')
    .option('--json', 'machine-readable output', false)
    .action(async (o: { json: boolean }) => {
      const { scheduleListCommand } = await import('./commands/schedule.js');
      exitCode = await withClient((c) => scheduleListCommand(c, o, io));
    });
  schedule
    .command('describe')
    .description("a schedule's spec and policies, next runs, and its recent nights with their invocation and verdict")
    .argument('<name>')
    .option('--json', 'machine-readable output', false)
    .action(async (name: string, o: { json: boolean }) => {
      const { scheduleDescribeCommand } = await import('./commands/schedule.js');
      exitCode = await withClient((c) => scheduleDescribeCommand(c, name, o, io));
    });
  for (const [verb, description] of [
    ['pause', 'pause a schedule (no nights until unpaused)'],
    ['unpause', 'resume a paused schedule'],
    ['trigger', 'start a night now'],
    ['delete', 'delete a schedule (its nights and their results stay)'],
  ] as const) {
    const command = schedule.command(verb).description(description).argument('<name>');
    if (verb === 'pause' || verb === 'unpause') command.option('--note <text>', 'why (shown with the schedule)');
    command.action(async (name: string, o: { note?: string }) => {
      const { scheduleActionCommand } = await import('./commands/schedule.js');
      exitCode = await withClient((c) => scheduleActionCommand(c, verb, name, o, io));
    });
  }

  program
    .command('worker')
    .description('run a worker on task queue "evalflow" (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE)')
    .action(async () => {
      const { runWorker } = await import('../worker/main.js');
      await runWorker({ onReady: () => io.err('evalflow worker ready (task queue evalflow); Ctrl-C to stop\n') });
    });

  program
    .command('codec-server')
    .description('serve the payload codec (EVALFLOW_CODEC_KEY_FILE) to the Temporal Web UI and `temporal --codec-endpoint`')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port (0: any free port)', (v) => Number.parseInt(v, 10), 8081)
    .option('--cors-origin <url>', 'a Web UI origin allowed to call (default: the dev server and compose UIs); repeatable', collect, [])
    .option('--token-file <file>', 'require `Authorization: Bearer <token>`, the token read from this file (mode 600)')
    .action(async (o: { host: string; port: number; corsOrigin: string[]; tokenFile?: string }) => {
      const { codecServerCommand } = await import('./commands/codec-server.js');
      exitCode = await codecServerCommand(o, io);
    });

  program
    .command('serve-model')
    .description('serve a GGUF model (default: SmolLM2-135M-Instruct) as an OpenAI-compatible endpoint on CPU')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port', (v) => Number.parseInt(v, 10), 8000)
    .option('--model <path>', 'GGUF file (default: the tiny demo model, downloaded once)')
    .option('--model-id <id>', 'model name reported by /v1/models')
    .option('--parallel <n>', 'concurrent sequences', (v) => Number.parseInt(v, 10))
    .action(async (o: { host: string; port: number; model?: string; modelId?: string; parallel?: number }) => {
      const { serveModelCommand } = await import('../model-server/cli.js');
      await serveModelCommand(o);
    });

  program
    .command('server')
    .description('local Temporal server')
    .command('start-dev')
    .description('start a Temporal dev server (SQLite, evalflow search attributes, Web UI) until Ctrl-C')
    .option('--port <port>', 'frontend port', (v) => Number.parseInt(v, 10), 7233)
    .option('--ui-port <port>', 'Web UI port', (v) => Number.parseInt(v, 10), 8233)
    .option('--db-filename <file>', 'SQLite file (default .tools/temporal.db)')
    .option('--headless', 'no Web UI', false)
    .option('--ui-codec-endpoint <url>', 'the Web UI decodes encrypted payloads with this codec server (`evalflow codec-server`)')
    .action(async (o: { port: number; uiPort: number; dbFilename?: string; headless: boolean; uiCodecEndpoint?: string }) => {
      const { startDevServer } = await import('../scripts/temporal-dev-server.js');
      const server = await startDevServer({
        port: o.port,
        uiPort: o.headless ? null : o.uiPort,
        uiCodecEndpoint: o.uiCodecEndpoint,
        dbFile: o.dbFilename,
        log: (l) => io.err(`${l}\n`),
      });
      io.err(`Temporal dev server at ${server.address}${server.uiUrl ? `, Web UI ${server.uiUrl}` : ''}; Ctrl-C to stop\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
        server.process.once('exit', () => resolve());
      });
      await server.stop();
    });

  program
    .command('harness')
    .description('the built-in harness (nemo-evaluator contract)')
    .command('run_eval')
    .description('run one evaluation: run_eval --run_config FILE [--output_dir DIR] [--overrides a.b=1,…] (run_eval --help)');

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    return reportError(err, io);
  }
}

function reportError(err: unknown, io: Output): number {
  if (err instanceof CommanderError) {
    // --help and --version end here with code 0; usage errors were already printed by commander.
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof ConfigError) {
    io.err(`error: ${err.message}\n`);
    return err.exitCode;
  }
  const message = err instanceof Error ? err.message : String(err);
  io.err(`error: ${message}\n`);
  if (process.env.EVALFLOW_DEBUG && err instanceof Error && err.stack) io.err(`${err.stack}\n`);
  return 1;
}
