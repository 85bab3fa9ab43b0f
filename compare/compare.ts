/**
 * Comparing two runs of a suite, task by task and metric by metric: A and B from each job's
 * results.yml, the difference B − A, a paired bootstrap interval and a paired test on the per-sample
 * scores (exact McNemar for 0/1 scores, Wilcoxon signed-rank otherwise, a stratified bootstrap for
 * macro averages), and a verdict by the gate rules. Jobs are matched by job name (`<task>.<n>`).
 * A candidate (B) job without results makes the comparison `incomplete`, never a pass.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { flattenMetrics, readResultsFile, type ResultsFile, type SampleCounts } from '../harness/results-schema.js';
import { matchesAny, type GateRules } from './rules.js';
import { alignSamples, readSampleScores, type SampleScores } from './samples.js';
import { isBinary, mcnemarFromPairs, pairedBootstrap, wilcoxonSignedRank, type Interval } from './stats.js';

export const COMPARE_FORMAT_VERSION = 1;

/** A job's state as the run knows it (`missing`: the job exists in one run only, or has no directory). */
export type JobState = 'succeeded' | 'failed' | 'cancelled' | 'running' | 'pending' | 'missing';

export interface JobRef {
  /** `<task>.<n>`, the job's directory name: how jobs of two runs are matched. */
  jobName: string;
  taskName: string | null;
  jobDir: string;
  state: JobState;
}

export interface RunRef {
  /** How the user named the run (id or directory). */
  label: string;
  invocationId: string | null;
  runDir: string;
  /** The run's own overall state, when known (a Temporal invocation). */
  state: JobState | null;
  jobs: JobRef[];
}

export type MetricVerdict = 'regression' | 'improvement' | 'unchanged' | 'not_compared';
export type PairedTest = 'mcnemar_exact' | 'wilcoxon' | 'bootstrap';

export interface MetricComparison {
  /** Flattened name, `<task>_<metric>[_<score>]`. */
  metric: string;
  a: number | null;
  b: number | null;
  /** b − a. */
  delta: number | null;
  /** Paired bootstrap interval of the difference (null without per-sample scores on both sides). */
  interval: Interval | null;
  pValue: number | null;
  test: PairedTest | null;
  gated: boolean;
  higherIsBetter: boolean;
  verdict: MetricVerdict;
}

export type TaskVerdict = 'pass' | 'regression' | 'incomplete' | 'no_baseline';

export interface TaskComparison {
  job: string;
  task: string | null;
  a: { state: JobState; samples: SampleCounts | null };
  b: { state: JobState; samples: SampleCounts | null };
  /** Pairing of the per-sample records (null when a side has none). */
  pairing: { paired: number; onlyA: number; onlyB: number; unscored: number } | null;
  metrics: MetricComparison[];
  verdict: TaskVerdict;
  notes: string[];
}

export type Verdict = 'pass' | 'regression' | 'incomplete';

export interface Comparison {
  evalflow_compare_version: number;
  a: Omit<RunRef, 'jobs'>;
  b: Omit<RunRef, 'jobs'>;
  rules: GateRules;
  verdict: Verdict;
  summary: { tasks: number; regressions: number; improvements: number; incomplete: number; gatedMetrics: number };
  tasks: TaskComparison[];
}

/** A run directory's jobs, found on disk (`<run>/<task>.<n>/artifacts/`): the state follows from the files. */
export function runFromDir(runDir: string, label = runDir): RunRef {
  if (!existsSync(runDir)) throw new Error(`no such run directory: ${runDir}`);
  const jobs: JobRef[] = [];
  for (const entry of readdirSync(runDir, { withFileTypes: true })) {
    if (!entry.isDirectory() || !existsSync(join(runDir, entry.name, 'artifacts'))) continue;
    const jobDir = join(runDir, entry.name);
    jobs.push({ jobName: entry.name, taskName: null, jobDir, state: existsSync(join(jobDir, 'artifacts', 'results.yml')) ? 'succeeded' : 'failed' });
  }
  if (jobs.length === 0) throw new Error(`${runDir} holds no jobs (<task>.<n>/artifacts/)`);
  const invocationId = /-([0-9a-f]{16})$/.exec(runDir.replace(/\/+$/, ''))?.[1] ?? null;
  return { label, invocationId, runDir, state: null, jobs: sortJobs(jobs) };
}

function sortJobs(jobs: JobRef[]): JobRef[] {
  return jobs.sort((x, y) => x.jobName.localeCompare(y.jobName, 'en', { numeric: true }));
}

interface LoadedJob {
  results: ResultsFile;
  /** Per-sample scores by results task name, where the harness wrote them. */
  samples: Map<string, SampleScores>;
}

async function loadJob(job: JobRef): Promise<LoadedJob | null> {
  const resultsPath = join(job.jobDir, 'artifacts', 'results.yml');
  if (job.state !== 'succeeded' || !existsSync(resultsPath)) return null;
  const results = readResultsFile(resultsPath);
  const samples = new Map<string, SampleScores>();
  for (const task of Object.keys(results.results.tasks)) {
    const file = join(job.jobDir, 'artifacts', 'nemo-evaluator-per-sample-outputs', `${task}.jsonl`);
    if (existsSync(file)) samples.set(task, await readSampleScores(file));
  }
  return { results, samples };
}

export async function compareRuns(a: RunRef, b: RunRef, rules: GateRules): Promise<Comparison> {
  const names = [...new Set([...a.jobs, ...b.jobs].map((j) => j.jobName))];
  const find = (run: RunRef, name: string): JobRef =>
    run.jobs.find((j) => j.jobName === name) ?? { jobName: name, taskName: null, jobDir: '', state: 'missing' };
  const tasks: TaskComparison[] = [];
  for (const name of names.sort((x, y) => x.localeCompare(y, 'en', { numeric: true }))) {
    tasks.push(await compareJob(find(a, name), find(b, name), rules));
  }
  const regressions = tasks.filter((t) => t.verdict === 'regression').length;
  const incomplete = tasks.filter((t) => t.verdict === 'incomplete').length;
  const runIncomplete = b.state !== null && b.state !== 'succeeded';
  const verdict: Verdict = incomplete > 0 || runIncomplete ? 'incomplete' : regressions > 0 ? 'regression' : 'pass';
  const strip = ({ jobs: _jobs, ...rest }: RunRef) => rest;
  return {
    evalflow_compare_version: COMPARE_FORMAT_VERSION,
    a: strip(a),
    b: strip(b),
    rules,
    verdict,
    summary: {
      tasks: tasks.length,
      regressions,
      improvements: tasks.filter((t) => t.metrics.some((m) => m.verdict === 'improvement')).length,
      incomplete,
      gatedMetrics: tasks.reduce((n, t) => n + t.metrics.filter((m) => m.gated).length, 0),
    },
    tasks,
  };
}

async function compareJob(jobA: JobRef, jobB: JobRef, rules: GateRules): Promise<TaskComparison> {
  const notes: string[] = [];
  const [loadedA, loadedB] = await Promise.all([loadJob(jobA), loadJob(jobB)]);
  const base: Omit<TaskComparison, 'metrics' | 'verdict' | 'pairing'> = {
    job: jobB.jobName,
    task: jobB.taskName ?? jobA.taskName,
    a: { state: jobA.state, samples: loadedA?.results.samples ?? null },
    b: { state: jobB.state, samples: loadedB?.results.samples ?? null },
    notes,
  };
  if (!loadedB) {
    notes.push(jobB.state === 'missing' ? 'the job is missing from run B' : `run B's job has no results (${jobB.state})`);
    const metricsA = loadedA ? flattenMetrics(loadedA.results.results, { groups: false }) : {};
    const metrics = Object.entries(metricsA).map(([metric, value]) => notCompared(metric, value, null, rules));
    return { ...base, pairing: null, metrics, verdict: 'incomplete' };
  }
  const metricsB = flattenMetrics(loadedB.results.results, { groups: false });
  if (!loadedA) {
    notes.push(jobA.state === 'missing' ? 'no baseline: the job is missing from run A' : `no baseline: run A's job has no results (${jobA.state})`);
    const metrics = Object.entries(metricsB).map(([metric, value]) => notCompared(metric, null, value, rules));
    return { ...base, pairing: null, metrics, verdict: 'no_baseline' };
  }
  const metricsA = flattenMetrics(loadedA.results.results, { groups: false });
  const paired = pairedStatistics(loadedA, loadedB, rules, notes);
  const metrics: MetricComparison[] = [];
  for (const metric of [...new Set([...Object.keys(metricsA), ...Object.keys(metricsB)])].sort()) {
    const va = metricsA[metric];
    const vb = metricsB[metric];
    if (va === undefined || vb === undefined) {
      notes.push(`${metric} is only in run ${va === undefined ? 'B' : 'A'}`);
      metrics.push(notCompared(metric, va ?? null, vb ?? null, rules));
      continue;
    }
    metrics.push(judge(metric, va, vb, paired.byMetric.get(metric) ?? null, rules));
  }
  if (metrics.some((m) => m.gated && m.b === null)) notes.push('a gated metric is missing from run B');
  const verdict: TaskVerdict = metrics.some((m) => m.gated && m.a !== null && m.b === null)
    ? 'incomplete'
    : metrics.some((m) => m.verdict === 'regression' && m.gated)
      ? 'regression'
      : 'pass';
  return { ...base, pairing: paired.pairing, metrics, verdict };
}

interface PairedStatistic {
  interval: Interval;
  pValue: number;
  test: PairedTest;
}

/**
 * The paired statistics a job's per-sample scores support: the mean of the scores is the metric named
 * like the records' `score_name` (`<task>_<score_name>`), and with subsets its `_macro` score is the
 * mean over subsets of the subset means (a stratified bootstrap then).
 */
function pairedStatistics(
  a: LoadedJob,
  b: LoadedJob,
  rules: GateRules,
  notes: string[],
): { byMetric: Map<string, PairedStatistic>; pairing: TaskComparison['pairing'] } {
  const byMetric = new Map<string, PairedStatistic>();
  let pairing: TaskComparison['pairing'] = null;
  for (const [task, samplesB] of b.samples) {
    const samplesA = a.samples.get(task);
    if (!samplesA) continue;
    const aligned = alignSamples(samplesA, samplesB);
    pairing = { paired: aligned.a.length, onlyA: aligned.onlyA, onlyB: aligned.onlyB, unscored: aligned.unscored };
    if (aligned.onlyA + aligned.onlyB > 0) notes.push(`${aligned.onlyA} sample(s) only in A, ${aligned.onlyB} only in B: compared on the ${aligned.a.length} in both`);
    if (aligned.a.length === 0) continue;
    const scoreName = samplesB.scoreName ?? samplesA.scoreName ?? 'accuracy';
    const bootstrapOpts = { resamples: rules.bootstrap_resamples, seed: rules.seed, level: rules.confidence };
    const mean = pairedBootstrap(aligned.a, aligned.b, bootstrapOpts);
    const binary = aligned.a.every(isBinary) && aligned.b.every(isBinary);
    byMetric.set(`${task}_${scoreName}`, {
      interval: mean.interval,
      ...(binary
        ? { pValue: mcnemarFromPairs(aligned.a, aligned.b).pValue, test: 'mcnemar_exact' as const }
        : { pValue: wilcoxonSignedRank(aligned.a, aligned.b).pValue, test: 'wilcoxon' as const }),
    });
    const subsets = aligned.subsets;
    if (subsets.every((s): s is string => s !== null) && new Set(subsets).size > 1) {
      const macro = pairedBootstrap(aligned.a, aligned.b, { ...bootstrapOpts, strata: subsets });
      byMetric.set(`${task}_${scoreName}_macro`, { interval: macro.interval, pValue: macro.pValue, test: 'bootstrap' });
    }
  }
  return { byMetric, pairing };
}

function judge(metric: string, a: number, b: number, paired: PairedStatistic | null, rules: GateRules): MetricComparison {
  const higherIsBetter = !matchesAny(metric, rules.lower_is_better);
  const gated = matchesAny(metric, rules.gate);
  const delta = b - a;
  const gain = higherIsBetter ? delta : -delta;
  // Without per-sample scores there is no test: a drop beyond min_drop then counts on its own.
  const significant = paired === null || paired.pValue < rules.alpha;
  const tolerance = 1e-12;
  const verdict: MetricVerdict =
    significant && -gain >= rules.min_drop - tolerance && -gain > 0
      ? 'regression'
      : significant && gain >= rules.min_drop - tolerance && gain > 0
        ? 'improvement'
        : 'unchanged';
  return {
    metric,
    a,
    b,
    delta,
    interval: paired?.interval ?? null,
    pValue: paired?.pValue ?? null,
    test: paired?.test ?? null,
    gated,
    higherIsBetter,
    verdict,
  };
}

function notCompared(metric: string, a: number | null, b: number | null, rules: GateRules): MetricComparison {
  return {
    metric,
    a,
    b,
    delta: null,
    interval: null,
    pValue: null,
    test: null,
    gated: matchesAny(metric, rules.gate),
    higherIsBetter: !matchesAny(metric, rules.lower_is_better),
    verdict: 'not_compared',
  };
}
