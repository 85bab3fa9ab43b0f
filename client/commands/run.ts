/** `evalflow run`: validate the config, then start one InvocationWorkflow (or, with --dry-run, show it). */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { type Client, WorkflowFailedError } from '@temporalio/client';
import { stringify } from 'yaml';
import { writeFileAtomic } from '../../common/files.js';
import { connectClient, ensureSearchAttributes, temporalTarget, workerIsPolling } from '../../common/temporal.js';
import { redactEnvRef, redactSecrets } from '../../config/env.js';
import { runWarnings } from '../../config/inert-keys.js';
import { loadRunConfig, type LoadOptions } from '../../config/load.js';
import { planTasks, type TaskPlan } from '../../config/plan.js';
import type { RunConfig } from '../../config/schema.js';
import { planExecution } from '../../backends/plans.js';
import { TASK_QUEUE, type InvocationInput } from '../../workflows/types.js';
import { assertRunnable, buildInvocationInput, newInvocationId, TRUST_PRE_CMD, writeLauncherConfig } from '../invocation.js';
import { json, type Output } from '../output.js';
import { startInvocation } from '../start-invocation.js';
import { watchInvocation } from '../watch.js';

export interface RunOptions extends LoadOptions {
  dryRun?: boolean;
  wait?: boolean;
  json?: boolean;
  /** `--config-output DIR`: also save the resolved config as `DIR/<inv>_config.yml`. */
  configOutput?: string;
  /** Called once the workflow has started (the demo uses it to print where to look). */
  onStarted?: (input: InvocationInput) => void;
}

export async function runCommand(opts: RunOptions, io: Output, connect: () => Promise<Client> = connectClient): Promise<number> {
  const cfg = loadRunConfig(opts);
  const plans = planTasks(cfg);
  for (const warning of runWarnings(cfg, plans)) io.err(`warning: ${warning}\n`);
  if (cfg.nightly) io.err('warning: nightly: ignored by run (it configures `evalflow schedule create`)\n');
  const invocationId = newInvocationId();
  const input = buildInvocationInput(cfg, plans, { invocationId, now: new Date() });
  if (opts.configOutput) io.err(`resolved config: ${saveResolvedConfig(opts.configOutput, invocationId, cfg)}\n`);

  if (opts.dryRun) {
    if (plans.some((p) => !p.task.builtin && (p.preCmd || p.postCmd)) && process.env[TRUST_PRE_CMD] !== '1') {
      io.err(`warning: pre_cmd/post_cmd run commands from the config in the harness container: a run needs ${TRUST_PRE_CMD}=1\n`);
    }
    io.out(opts.json ? json(redactSecrets({ config: cfg, invocation: input })) : describeDryRun(cfg, plans, input));
    return 0;
  }
  assertRunnable(cfg, input);

  const client = await connect();
  try {
    const namespace = temporalTarget().namespace;
    await ensureSearchAttributes(client, namespace);
    writeLauncherConfig(input.runDir, cfg);
    const handle = await startInvocation(client, input);
    opts.onStarted?.(input);
    if (!opts.json) {
      io.out(
        `started invocation ${invocationId} (workflow ${handle.workflowId}), ${input.tasks.length} task(s)\n` +
          `  results:  ${input.runDir}\n` +
          `  status:   npx evalflow status ${invocationId}\n` +
          `  logs:     npx evalflow logs ${invocationId}\n` +
          `  kill:     npx evalflow kill ${invocationId}\n`,
      );
      await warnIfNoWorker(client, namespace, io);
    }
    if (!opts.wait) {
      if (opts.json) io.out(json({ invocation_id: invocationId, workflow_id: handle.workflowId, run_dir: input.runDir }));
      return 0;
    }
    return await watchInvocation(client, invocationId, io, { json: Boolean(opts.json) });
  } catch (err) {
    if (err instanceof WorkflowFailedError) return 1;
    throw err;
  } finally {
    await client.connection.close();
  }
}

/**
 * As upstream's `--config-output`: the resolved config as `<dir>/<inv>_config.yml`, to rerun with `--config-mode
 * raw`. Literal env values stay as written (a masked one would be sent as is), so the file is private (0600).
 */
function saveResolvedConfig(dir: string, invocationId: string, cfg: RunConfig): string {
  const file = join(resolve(dir), `${invocationId}_config.yml`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileAtomic(file, stringify(cfg, { lineWidth: 0 }), 0o600);
  return file;
}

async function warnIfNoWorker(client: Client, namespace: string, io: Output): Promise<void> {
  try {
    if (!(await workerIsPolling(client, namespace))) {
      io.err(`warning: no worker is polling task queue '${TASK_QUEUE}'; start one with \`npx evalflow worker\`\n`);
    }
  } catch {
    // Only a hint.
  }
}

function describeDryRun(cfg: RunConfig, plans: TaskPlan[], input: InvocationInput): string {
  const parts = [
    '# resolved config (dry run: nothing was started)',
    stringify(redactSecrets(cfg), { lineWidth: 0 }).trimEnd(),
    '',
    `# invocation ${input.invocationId} would write to ${input.runDir}`,
  ];
  for (const [i, task] of input.tasks.entries()) {
    const execution = planExecution(cfg, plans[i] as TaskPlan, task.jobDir);
    const env = Object.entries(task.env ?? {}).map(([name, ref]) => `${name}=${redactEnvRef(ref)}`);
    parts.push(
      '',
      `## job ${task.invocationId}.${task.taskIndex}: ${task.jobName} (${task.taskName}), ${task.endpoint.type} endpoint, executor ${execution.backend}`,
      ...execution.describe,
      `# env: ${env.length ? env.join(' ') : '(none)'}${task.endpoint.apiKeyName ? `; API key from $${task.endpoint.apiKeyName}` : ''}`,
      '# config_ef.yaml:',
      stringify(redactSecrets(task.runConfig), { lineWidth: 0 }).trimEnd(),
    );
  }
  return `${parts.join('\n')}\n`;
}
