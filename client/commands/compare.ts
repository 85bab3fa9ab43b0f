/**
 * `evalflow compare A B`: every task and metric of run B against run A (the baseline). A and B are
 * invocation or job ids (unique prefixes, resolved through Temporal) or run directories
 * (`<output_dir>/<YYYYmmdd_HHMMSS>-<inv>`, no server needed). Exit 0 when the gate passes, 1 on a
 * regression or an incomplete candidate, 2 on bad input.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Client } from '@temporalio/client';
import { ConfigError } from '../../config/errors.js';
import { writeFileAtomic } from '../../common/files.js';
import { compareRuns, runFromDir, type Comparison, type JobState, type RunRef } from '../../compare/compare.js';
import { fixed, pValueText, signed } from '../../compare/format.js';
import { renderComparisonHtml } from '../../compare/report-html.js';
import { GateRulesSchema, type GateRules, type GateRulesInput } from '../../compare/rules.js';
import { isSelected, resolveId } from '../ids.js';
import { json, table, type Output } from '../output.js';
import { invocationStatus } from '../status.js';
import type { Stage } from '../../workflows/types.js';

export interface CompareOptions {
  json?: boolean;
  html?: string;
  minDrop?: number;
  alpha?: number;
  confidence?: number;
  gate?: string[];
  lowerIsBetter?: string[];
  seed?: number;
  resamples?: number;
}

const FLAG_OF: Record<string, string> = {
  min_drop: '--min-drop',
  alpha: '--alpha',
  confidence: '--confidence',
  gate: '--gate',
  lower_is_better: '--lower-is-better',
  seed: '--seed',
  bootstrap_resamples: '--resamples',
};

export function rulesFromOptions(opts: CompareOptions): GateRules {
  const input: GateRulesInput = {
    ...(opts.minDrop !== undefined ? { min_drop: opts.minDrop } : {}),
    ...(opts.alpha !== undefined ? { alpha: opts.alpha } : {}),
    ...(opts.confidence !== undefined ? { confidence: opts.confidence } : {}),
    ...(opts.gate?.length ? { gate: opts.gate } : {}),
    ...(opts.lowerIsBetter?.length ? { lower_is_better: opts.lowerIsBetter } : {}),
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    ...(opts.resamples !== undefined ? { bootstrap_resamples: opts.resamples } : {}),
  };
  const parsed = GateRulesSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const flag = FLAG_OF[String(issue?.path[0])] ?? String(issue?.path[0]);
    throw new ConfigError(`${flag}: ${issue?.message ?? 'invalid'}`, flag);
  }
  return parsed.data;
}

/** Whether an argument names a run directory rather than an id. */
export function isRunDir(arg: string): boolean {
  return existsSync(arg) && statSync(arg).isDirectory();
}

export async function compareCommand(connect: () => Promise<Client>, refA: string, refB: string, opts: CompareOptions, io: Output): Promise<number> {
  const rules = rulesFromOptions(opts);
  const [a, b] = [await runRef(connect, refA), await runRef(connect, refB)];
  let comparison: Comparison;
  try {
    comparison = await compareRuns(a, b, rules);
  } catch (err) {
    throw new Error(`cannot compare ${refA} with ${refB}: ${(err as Error).message}`);
  }
  if (opts.html) {
    writeFileAtomic(resolve(opts.html), renderComparisonHtml(comparison, { generatedAt: new Date().toISOString() }));
  }
  if (opts.json) io.out(json(comparison));
  else io.out(comparisonText(comparison) + (opts.html ? `report: ${resolve(opts.html)}\n` : ''));
  return comparison.verdict === 'pass' ? 0 : 1;
}

async function runRef(connect: () => Promise<Client>, ref: string): Promise<RunRef> {
  if (isRunDir(ref)) {
    try {
      return runFromDir(resolve(ref), ref);
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
  }
  const client = await connect();
  const id = await resolveId(client, ref);
  const status = await invocationStatus(client, id.invocationId);
  return {
    label: ref,
    invocationId: id.invocationId,
    runDir: status.runDir,
    state: id.taskIndex === undefined ? jobState(status.stage) : null,
    jobs: status.tasks
      .filter((task) => isSelected(task, id))
      .map((task) => ({ jobName: task.jobName, taskName: task.taskName, jobDir: task.jobDir, state: jobState(task.stage) })),
  };
}

function jobState(stage: Stage): JobState {
  switch (stage) {
    case 'succeeded':
    case 'failed':
    case 'cancelled':
    case 'pending':
      return stage;
    default:
      return 'running';
  }
}

export function comparisonText(c: Comparison): string {
  const level = `${Math.round(c.rules.confidence * 100)}% CI`;
  const rows = c.tasks.flatMap((t) =>
    t.metrics.map((m) => [
      t.job,
      m.metric + (m.gated ? '' : ' (not gated)'),
      fixed(m.a),
      fixed(m.b),
      signed(m.delta),
      m.interval ? `[${signed(m.interval.low)}, ${signed(m.interval.high)}]` : '-',
      pValueText(m.pValue),
      m.test ?? '-',
      m.verdict,
    ]),
  );
  const notes = c.tasks.flatMap((t) => [
    ...(t.verdict === 'incomplete' || t.verdict === 'no_baseline' ? [`${t.job}: ${t.verdict.replace('_', ' ')}`] : []),
    ...t.notes.map((n) => `${t.job}: ${n}`),
  ]);
  const { summary } = c;
  return (
    `A ${c.a.label} (${c.a.runDir})\nB ${c.b.label} (${c.b.runDir})\n\n` +
    table(['job', 'metric', 'A', 'B', 'delta', level, 'p', 'test', 'verdict'], rows) +
    (notes.length ? `\n${notes.join('\n')}\n` : '') +
    `\nverdict: ${c.verdict.toUpperCase()} (${summary.regressions} regression(s), ${summary.incomplete} incomplete, ${summary.tasks} task(s); min drop ${c.rules.min_drop}, alpha ${c.rules.alpha})\n`
  );
}
