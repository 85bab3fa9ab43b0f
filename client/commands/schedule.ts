/**
 * `evalflow schedule …`: nightly regression runs on Temporal Schedules. A schedule starts a
 * NightlyRegressionWorkflow (workflows/nightly.ts) with the config resolved and validated now; each night
 * derives its own ids and directories. Overlap policy skip (a night still running makes the next one wait
 * for the one after), a catch-up window for nights missed while the server was down. Schedules are
 * equally managed from the Temporal UI and CLI (`temporal schedule …`, id `evalflow-nightly-<name>`).
 */
import { resolve } from 'node:path';
import { type Client, ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type ScheduleDescription, type ScheduleSpec } from '@temporalio/client';
import { encrypts } from '../../common/codec.js';
import { ensureSearchAttributes, temporalTarget } from '../../common/temporal.js';
import { ConfigError } from '../../config/errors.js';
import { loadRunConfig, type LoadOptions } from '../../config/load.js';
import { planTasks } from '../../config/plan.js';
import { NIGHTLY_WORKFLOW, nightlyWorkflowIdOf, SCHEDULE_NAME_PATTERN, scheduleIdOf, scheduleNameOf, type BaselineRef, type NightlyInput } from '../../core/nightly.js';
import { TASK_QUEUE } from '../../workflows/types.js';
import { assertRunnable, buildInvocationInput, newInvocationId } from '../invocation.js';
import { resolveId } from '../ids.js';
import { json, table, type Output } from '../output.js';
import { invocationStatus } from '../status.js';
import { isRunDir } from './compare.js';

export interface ScheduleCreateOptions extends LoadOptions {
  cron?: string;
  interval?: string;
  timezone?: string;
  catchupWindow: string;
  paused: boolean;
  note?: string;
}

export function scheduleName(name: string): string {
  if (!SCHEDULE_NAME_PATTERN.test(name)) throw new ConfigError(`schedule name '${name}': use letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit)`, 'NAME');
  return name;
}

/** `90s`, `30m`, `24h`, `7d` → milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+)(s|m|h|d)$/.exec(text.trim());
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
  const ms = match ? Number(match[1]) * unit[match[2] as keyof typeof unit] : Number.NaN;
  if (!(ms > 0)) throw new ConfigError(`${flag}: '${text}' is not a duration like 90s, 30m, 24h or 7d`, flag);
  return ms;
}

export function scheduleSpec(opts: Pick<ScheduleCreateOptions, 'cron' | 'interval' | 'timezone'>): ScheduleSpec {
  if ((opts.cron === undefined) === (opts.interval === undefined)) throw new ConfigError('give exactly one of --cron and --interval', '--cron');
  if (opts.timezone !== undefined) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: opts.timezone });
    } catch {
      throw new ConfigError(`--timezone: '${opts.timezone}' is not an IANA time zone (e.g. Europe/Berlin)`, '--timezone');
    }
    if (opts.interval !== undefined) throw new ConfigError('--timezone: only with --cron (an interval does not depend on a zone)', '--timezone');
  }
  if (opts.cron !== undefined) {
    if (opts.cron.trim().split(/\s+/).length !== 5) throw new ConfigError(`--cron: '${opts.cron}' is not a 5-field cron expression (minute hour day month weekday)`, '--cron');
    return { cronExpressions: [opts.cron.trim()], ...(opts.timezone ? { timezone: opts.timezone } : {}) };
  }
  return { intervals: [{ every: parseDuration(opts.interval as string, '--interval') }] };
}

async function baselineRef(client: Client, ref: string): Promise<BaselineRef> {
  if (isRunDir(ref)) {
    const runDir = resolve(ref);
    return { label: ref, invocationId: /-([0-9a-f]{16})$/.exec(runDir)?.[1] ?? null, runDir };
  }
  const id = await resolveId(client, ref);
  const status = await invocationStatus(client, id.invocationId);
  if (status.stage !== 'succeeded') throw new ConfigError(`nightly.baseline_run: invocation ${id.invocationId} ${status.stage === 'failed' ? 'failed' : `is ${status.stage}`}; a baseline must have succeeded`, 'nightly.baseline_run');
  return { label: id.invocationId, invocationId: id.invocationId, runDir: status.runDir };
}

export async function scheduleCreateCommand(connect: () => Promise<Client>, name: string, opts: ScheduleCreateOptions, io: Output): Promise<number> {
  scheduleName(name);
  const spec = scheduleSpec(opts);
  const catchupWindow = parseDuration(opts.catchupWindow, '--catchup-window');
  const cfg = loadRunConfig(opts);
  const plans = planTasks(cfg);
  for (const warning of plans.flatMap((p) => p.warnings)) io.err(`warning: ${warning}\n`);
  // What every night will plan: refused now rather than at 2 am.
  assertRunnable(cfg, buildInvocationInput(cfg, plans, { invocationId: newInvocationId(), now: new Date() }));
  const client = await connect();
  const baseline = cfg.nightly?.baseline_run === undefined ? undefined : await baselineRef(client, cfg.nightly.baseline_run);
  await ensureSearchAttributes(client, temporalTarget().namespace);
  const input: NightlyInput = { schedule: name, config: cfg as unknown as Record<string, unknown>, ...(baseline ? { baseline } : {}), confidential: encrypts(client.options.loadedDataConverter) };
  try {
    await client.schedule.create({
      scheduleId: scheduleIdOf(name),
      spec,
      action: { type: 'startWorkflow', workflowType: NIGHTLY_WORKFLOW, workflowId: nightlyWorkflowIdOf(name), taskQueue: TASK_QUEUE, args: [input] },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow },
      state: { paused: opts.paused, ...(opts.note ? { note: opts.note } : {}) },
      // The server keeps a cron expression as calendar specs: the memo keeps it as written, for `list` and `describe`.
      memo: { spec: specText(spec), model: cfg.target.api_endpoint.model_id, tasks: plans.map((p) => p.jobName).join(', '), ...(opts.configPath ? { config: resolve(opts.configPath) } : {}) },
    });
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) throw new ConfigError(`schedule ${name} exists (\`evalflow schedule delete ${name}\` first)`, 'NAME');
    if (err instanceof Error && /invalid/i.test(err.message)) throw new ConfigError(`the server refused the schedule: ${err.message}`, '--cron');
    throw err;
  }
  const description = await client.schedule.getHandle(scheduleIdOf(name)).describe();
  io.out(
    `created schedule ${name} (id ${scheduleIdOf(name)}), ${plans.length} task(s)${opts.paused ? ', paused' : ''}\n` +
      `  next:     ${description.info.nextActionTimes[0]?.toISOString() ?? '-'}\n` +
      `  run now:  npx evalflow schedule trigger ${name}\n` +
      `  nights:   npx evalflow schedule describe ${name}\n`,
  );
  return 0;
}

function specText(spec: ScheduleSpec): string {
  const parts = [...(spec.cronExpressions ?? []), ...(spec.intervals ?? []).map((i) => `every ${formatMs(Number(i.every))}`)];
  return `${parts.join(', ') || '-'}${spec.timezone ? ` (${spec.timezone})` : ''}`;
}

/** The spec as `create` wrote it into the memo (a schedule made elsewhere: its intervals, or `calendar`). */
function describedSpec(memo: Record<string, unknown> | undefined, spec: ScheduleDescription['spec'] | undefined): string {
  if (typeof memo?.spec === 'string') return memo.spec;
  if (spec?.intervals?.length) return specText({ intervals: spec.intervals.map((i) => ({ every: Number(i.every) })), ...(spec.timezone ? { timezone: spec.timezone } : {}) });
  return spec?.calendars?.length ? 'calendar' : '-';
}

function formatMs(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms / 1000}s`;
}

export async function scheduleListCommand(client: Client, opts: { json: boolean }, io: Output): Promise<number> {
  const rows: Array<{ name: string; schedule: string; paused: boolean; next: string | null; nights: number; lastNight: string | null }> = [];
  for await (const summary of client.schedule.list()) {
    const name = scheduleNameOf(summary.scheduleId);
    if (name === null) continue;
    const recent = summary.info?.recentActions ?? [];
    const last = recent.at(-1)?.action;
    rows.push({
      name,
      schedule: describedSpec(summary.memo, summary.spec),
      paused: summary.state?.paused ?? false,
      next: summary.info?.nextActionTimes?.[0]?.toISOString() ?? null,
      nights: recent.length,
      lastNight: last && 'workflow' in last ? last.workflow.workflowId : null,
    });
  }
  rows.sort((a, b) => a.name.localeCompare(b.name));
  if (opts.json) io.out(json(rows));
  else if (rows.length === 0) io.out('no schedules (create one with `evalflow schedule create NAME -c suite.yaml --cron ...`)\n');
  else io.out(table(['name', 'schedule', 'state', 'next run', 'last night'], rows.map((r) => [r.name, r.schedule, r.paused ? 'paused' : 'active', r.next ?? '-', r.lastNight ?? '-'])));
  return 0;
}

export interface NightRow {
  workflowId: string;
  startedAt: string;
  status: string;
  invocationId: string | null;
  verdict: string | null;
  report: string | null;
}

export async function scheduleDescribeCommand(client: Client, name: string, opts: { json: boolean }, io: Output): Promise<number> {
  const handle = client.schedule.getHandle(scheduleIdOf(scheduleName(name)));
  const description = await describeOrNotFound(handle, name);
  const nights: NightRow[] = [];
  for (const action of description.info.recentActions) {
    if (!('workflow' in action.action)) continue;
    const { workflowId, firstExecutionRunId } = action.action.workflow;
    nights.push(await nightRow(client, workflowId, firstExecutionRunId, action.takenAt));
  }
  const running = description.info.runningActions.map((a) => a.workflow.workflowId);
  const summary = {
    name,
    scheduleId: description.scheduleId,
    schedule: describedSpec(description.memo, description.spec),
    paused: description.state.paused,
    note: description.state.note ?? null,
    overlap: description.policies.overlap,
    catchupWindowMs: description.policies.catchupWindow,
    nextRuns: description.info.nextActionTimes.slice(0, 3).map((d) => d.toISOString()),
    running,
    nights,
  };
  if (opts.json) {
    io.out(json(summary));
    return 0;
  }
  io.out(
    `schedule ${name} (${description.scheduleId}): ${summary.schedule}, ${summary.paused ? 'paused' : 'active'}${summary.note ? ` (${summary.note})` : ''}\n` +
      `  overlap ${summary.overlap}, catch-up window ${formatMs(summary.catchupWindowMs)}\n` +
      `  next:    ${summary.nextRuns.join(', ') || '-'}\n` +
      (running.length ? `  running: ${running.join(', ')}\n` : '') +
      '\n' +
      (nights.length
        ? table(['started', 'night', 'status', 'invocation', 'verdict', 'report'], nights.map((n) => [n.startedAt, n.workflowId, n.status, n.invocationId ?? '-', n.verdict ?? '-', n.report ?? '-']))
        : 'no nights yet\n'),
  );
  return 0;
}

async function nightRow(client: Client, workflowId: string, runId: string, takenAt: Date): Promise<NightRow> {
  const row: NightRow = { workflowId, startedAt: takenAt.toISOString(), status: 'unknown', invocationId: null, verdict: null, report: null };
  try {
    const d = await client.workflow.getHandle(workflowId, runId).describe();
    row.status = d.status.name.toLowerCase();
    const memo = (d.memo ?? {}) as Partial<Record<string, unknown>>;
    row.invocationId = typeof memo.invocationId === 'string' ? memo.invocationId : null;
    row.verdict = typeof memo.verdict === 'string' ? memo.verdict : null;
    row.report = typeof memo.report === 'string' ? memo.report : null;
  } catch {
    // A night whose history is gone (retention) or whose memo cannot be decoded: listed by id only.
  }
  return row;
}

async function describeOrNotFound(handle: ReturnType<Client['schedule']['getHandle']>, name: string): Promise<ScheduleDescription> {
  try {
    return await handle.describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw new ConfigError(`no schedule ${name} (see \`evalflow schedule list\`)`, 'NAME');
    throw err;
  }
}

export async function scheduleActionCommand(client: Client, verb: 'pause' | 'unpause' | 'trigger' | 'delete', name: string, opts: { note?: string }, io: Output): Promise<number> {
  const handle = client.schedule.getHandle(scheduleIdOf(scheduleName(name)));
  const description = await describeOrNotFound(handle, name);
  switch (verb) {
    case 'pause':
      await handle.pause(opts.note ?? 'paused with evalflow schedule pause');
      break;
    case 'unpause':
      await handle.unpause(opts.note ?? 'unpaused with evalflow schedule unpause');
      break;
    case 'trigger':
      if (description.info.runningActions.length > 0) {
        io.err(`warning: night ${description.info.runningActions[0]?.workflow.workflowId} is still running; with overlap policy skip this trigger starts nothing\n`);
      }
      await handle.trigger();
      break;
    case 'delete':
      await handle.delete();
      break;
  }
  io.out(`${verb === 'trigger' ? 'triggered' : `${verb}d`} schedule ${name}${verb === 'trigger' ? ` (see \`evalflow schedule describe ${name}\`)` : ''}\n`);
  return 0;
}

