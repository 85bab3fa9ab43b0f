/**
 * The nightly gate: tonight's run against its baseline with compare/ (the same statistics and rules as
 * `evalflow compare`), a verdict, and the schedule's state on disk under its nightly directory:
 *   history.json                      every night (verdict, compared metrics, report), oldest first
 *   baseline.json                     the pinned baseline, once a passing night moved it (update_baseline)
 *   <run dir name>/report.{json,html} each night's report, with trend plots over the previous nights
 * Only a night's own gate activity writes there, and the schedule's overlap policy (skip) runs one night
 * at a time; every write is atomic and keyed by invocation id, so a retried gate rewrites the same entry.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic, writeJsonAtomic } from '../common/files.js';
import { compareRuns, runFromDir, type Comparison, type JobState, type RunRef } from '../compare/compare.js';
import { fixed, pValueText, signed } from '../compare/format.js';
import { renderComparisonHtml, type TrendSeries } from '../compare/report-html.js';
import { matchesAny } from '../compare/rules.js';
import type { NightlyConfig } from '../config/nightly.js';
import { BaselineRefSchema, NIGHTLY_VERDICTS, type BaselineRef, type NightlyGate, type NightlyRegression, type NightlyVerdict } from '../core/nightly.js';

export const NIGHTLY_REPORT_VERSION = 1;

const NightSchema = z
  .object({
    invocationId: z.string(),
    nightlyWorkflowId: z.string(),
    runDir: z.string(),
    startedAt: z.string(),
    verdict: z.enum(NIGHTLY_VERDICTS),
    /** Tonight's value of every metric compared (flattened names). */
    metrics: z.record(z.string(), z.number()),
    report: z.string(),
  })
  .strict();
export type Night = z.infer<typeof NightSchema>;
const HistorySchema = z.object({ version: z.literal(1), nights: z.array(NightSchema) }).strict();

export function readHistory(nightlyDir: string): Night[] {
  const file = join(nightlyDir, 'history.json');
  if (!existsSync(file)) return [];
  const parsed = HistorySchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) throw new Error(`${file}: not a nightly history (${parsed.error.issues[0]?.message ?? 'invalid'})`);
  return parsed.data.nights;
}

/** Adds or replaces (same invocation) a night, keeping the nights in start order. */
export function recordNight(nightlyDir: string, night: Night): void {
  const nights = [...readHistory(nightlyDir).filter((n) => n.invocationId !== night.invocationId), night].sort((x, y) => x.startedAt.localeCompare(y.startedAt));
  writeJsonAtomic(join(nightlyDir, 'history.json'), { version: 1, nights });
}

function readPinnedBaseline(nightlyDir: string): BaselineRef | null {
  const file = join(nightlyDir, 'baseline.json');
  return existsSync(file) ? BaselineRefSchema.parse(JSON.parse(readFileSync(file, 'utf8'))) : null;
}

/** A night that counts as good: it passed, or was the first complete one. */
const isGood = (n: Night) => n.verdict === 'pass' || n.verdict === 'no_baseline';

/**
 * The run tonight is compared with. `pinned`: baseline.json (once moved) or the configured run; `last_pass`:
 * the last good night before this one, else the configured run; null when there is none.
 */
export function chooseBaseline(nightly: NightlyConfig, nightlyDir: string, configured: BaselineRef | undefined, tonight: string): BaselineRef | null {
  if (nightly.baseline === 'pinned') return readPinnedBaseline(nightlyDir) ?? configured ?? null;
  const last = readHistory(nightlyDir)
    .filter((n) => n.invocationId !== tonight && isGood(n))
    .at(-1);
  if (last) return { label: `night of ${last.startedAt} (${last.invocationId})`, invocationId: last.invocationId, runDir: last.runDir };
  return configured ?? null;
}

export interface Tonight {
  schedule: string;
  nightlyWorkflowId: string;
  invocationId: string;
  runDir: string;
  startedAt: string;
  /** How the child invocation ended, and the jobs that succeeded (all of them when it succeeded). */
  suite: { state: 'succeeded' | 'failed' | 'cancelled'; error?: string; succeededJobs: string[] };
  jobs: Array<{ jobName: string; taskName: string; jobDir: string }>;
}

/** A failed or cancelled suite never passes; a complete night without a baseline is `no_baseline`. */
export function nightlyVerdict(suiteState: Tonight['suite']['state'], comparison: Comparison, hasBaseline: boolean): NightlyVerdict {
  if (suiteState !== 'succeeded') return 'failed';
  if (comparison.verdict === 'incomplete') return 'incomplete';
  return hasBaseline ? comparison.verdict : 'no_baseline';
}

export class BaselineMissingError extends Error {
  override name = 'BaselineMissingError';
}

/** Compares tonight with its baseline, writes the report, records the night, moves the baseline when told to. */
export async function gateNight(nightly: NightlyConfig, nightlyDir: string, configuredBaseline: BaselineRef | undefined, tonight: Tonight): Promise<NightlyGate> {
  mkdirSync(nightlyDir, { recursive: true });
  const baseline = chooseBaseline(nightly, nightlyDir, configuredBaseline, tonight.invocationId);
  const candidate: RunRef = {
    label: tonight.invocationId,
    invocationId: tonight.invocationId,
    runDir: tonight.runDir,
    state: tonight.suite.state,
    jobs: tonight.jobs.map((j) => ({ ...j, state: (tonight.suite.succeededJobs.includes(j.jobName) ? 'succeeded' : 'failed') satisfies JobState })),
  };
  let reference: RunRef = { label: '(no baseline yet)', invocationId: null, runDir: '', state: null, jobs: [] };
  if (baseline) {
    try {
      reference = { ...runFromDir(baseline.runDir, baseline.label), invocationId: baseline.invocationId };
    } catch (err) {
      throw new BaselineMissingError(`baseline ${baseline.label}: ${(err as Error).message}`);
    }
  }
  const comparison = await compareRuns(reference, candidate, nightly.rules);
  const verdict = nightlyVerdict(tonight.suite.state, comparison, baseline !== null);
  const regressions: NightlyRegression[] = comparison.tasks.flatMap((t) =>
    t.metrics.filter((m) => m.verdict === 'regression' && m.gated).map((m) => ({ job: t.job, metric: m.metric, a: m.a, b: m.b, delta: m.delta, pValue: m.pValue })),
  );
  const metrics = Object.fromEntries(comparison.tasks.flatMap((t) => t.metrics.flatMap((m) => (m.b === null ? [] : [[m.metric, m.b] as const]))));

  const reportDir = join(nightlyDir, basename(tonight.runDir));
  mkdirSync(reportDir, { recursive: true });
  const reportJson = join(reportDir, 'report.json');
  const reportHtml = join(reportDir, 'report.html');
  const history = readHistory(nightlyDir).filter((n) => n.invocationId !== tonight.invocationId);
  const trends = trendSeries([...history, { startedAt: tonight.startedAt, verdict, metrics }], nightly.trend_nights, nightly.rules.gate);
  const text = summaryText(tonight.schedule, verdict, baseline, regressions, tonight.suite.error, reportHtml);
  writeJsonAtomic(reportJson, {
    evalflow_nightly_report_version: NIGHTLY_REPORT_VERSION,
    schedule: tonight.schedule,
    nightly_workflow_id: tonight.nightlyWorkflowId,
    invocation_id: tonight.invocationId,
    run_dir: tonight.runDir,
    started_at: tonight.startedAt,
    verdict,
    suite: tonight.suite,
    baseline,
    regressions,
    text,
    trends,
    comparison,
  });
  writeFileAtomic(
    reportHtml,
    renderComparisonHtml(comparison, {
      title: `evalflow nightly ${tonight.schedule}: ${tonight.startedAt} (${verdict.replace('_', ' ')})`,
      trends,
      generatedAt: new Date().toISOString(),
    }),
  );
  recordNight(nightlyDir, { invocationId: tonight.invocationId, nightlyWorkflowId: tonight.nightlyWorkflowId, runDir: tonight.runDir, startedAt: tonight.startedAt, verdict, metrics, report: reportHtml });
  if (verdict === 'pass' && nightly.baseline === 'pinned' && nightly.update_baseline) {
    const moved: BaselineRef = { label: `night of ${tonight.startedAt} (${tonight.invocationId})`, invocationId: tonight.invocationId, runDir: tonight.runDir };
    writeJsonAtomic(join(nightlyDir, 'baseline.json'), moved);
  }
  return { verdict, baseline, regressions, reportJson, reportHtml, text, notify: nightly.webhook?.on.includes(verdict) ?? false };
}

/** The gated metrics over the last `window` nights (oldest first), for the report's trend plots. */
export function trendSeries(nights: Array<Pick<Night, 'startedAt' | 'verdict' | 'metrics'>>, window: number, gate: readonly string[]): TrendSeries[] {
  const recent = nights.slice(-window);
  const names = [...new Set(recent.flatMap((n) => Object.keys(n.metrics)))].filter((m) => matchesAny(m, gate)).sort();
  return names.map((metric) => ({
    metric,
    points: recent.flatMap((n) => {
      const value = n.metrics[metric];
      return value === undefined ? [] : [{ label: n.startedAt.slice(0, 16).replace('T', ' '), value, verdict: n.verdict }];
    }),
  }));
}

/** One paragraph for people and Slack: the verdict, what regressed, where the report is. */
export function summaryText(schedule: string, verdict: NightlyVerdict, baseline: BaselineRef | null, regressions: NightlyRegression[], suiteError: string | undefined, report: string): string {
  const head = `evalflow nightly ${schedule}: ${verdict.toUpperCase().replace('_', ' ')}`;
  const against = baseline ? ` against ${baseline.label}` : '';
  const lines = regressions.map((r) => `• ${r.job} ${r.metric}: ${fixed(r.a)} → ${fixed(r.b)} (${signed(r.delta)}, p=${pValueText(r.pValue)})`);
  const failure = verdict === 'failed' && suiteError ? [`suite failed: ${suiteError}`] : [];
  return [`${head}${against}`, ...lines, ...failure, `report: ${report}`].join('\n');
}
