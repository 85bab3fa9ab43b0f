/** compare/: per-sample files, pairing by id, and run comparisons with verdicts on run directories written here. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareRuns, runFromDir, type RunRef } from '../../compare/compare.js';
import { GateRulesSchema, matchesAny } from '../../compare/rules.js';
import { alignSamples, readSampleScores } from '../../compare/samples.js';
import { cli, tempDir } from '../support/run-helpers.js';
import { writeRun } from '../support/run-dirs.js';

const ones = (n: number) => Array.from({ length: n }, () => 1);
const rules = GateRulesSchema.parse({});

describe('per-sample files', () => {
  it('reads ids, scores and subsets; failed samples have no score', async () => {
    const dir = tempDir();
    const file = join(dir, 's.jsonl');
    writeFileSync(file, '{"id":"a","score":1,"score_name":"accuracy","sub_query_id":"x"}\n\n{"id":7,"score":0.5,"error":null}\n{"id":"c","score":1,"error":"HTTP 500"}\n');
    const scores = await readSampleScores(file);
    expect(scores.scoreName).toBe('accuracy');
    expect([...scores.byId]).toEqual([
      ['a', { score: 1, subset: 'x' }],
      ['7', { score: 0.5, subset: null }],
      ['c', { score: null, subset: null }],
    ]);
  });

  it.each([
    ['{"id":"a","score":1}\n{"id":"a","score":0}\n', /:2: sample id 'a' appears twice/],
    ['{"id":"a","score":"1"}\n', /:1: invalid at score/],
    ['{"id":"a"\n', /:1: not JSON/],
    ['{"score":1}\n', /:1: invalid at id/],
    ['{"id":"a","score":1,"score_name":"x"}\n{"id":"b","score":1,"score_name":"y"}\n', /mixed score names/],
  ])('rejects a bad file with the line named (%#)', async (content, message) => {
    const file = join(tempDir(), 's.jsonl');
    writeFileSync(file, content);
    await expect(readSampleScores(file)).rejects.toThrow(message);
  });

  it('pairs by id, whatever the order; counts samples on one side only and unscored ones', () => {
    const side = (entries: Array<[string, number | null]>) => ({ scoreName: 'accuracy', byId: new Map(entries.map(([id, score]) => [id, { score, subset: null }])) });
    const aligned = alignSamples(
      side([['q1', 1], ['q2', 0], ['q3', 1], ['q4', null]]),
      side([['q3', 0], ['q1', 1], ['q4', 1], ['q5', 1]]),
    );
    expect(aligned).toEqual({ a: [1, 1], b: [1, 0], subsets: [null, null], onlyA: 1, onlyB: 1, unscored: 1 });
  });
});

describe('compareRuns', () => {
  it('flags exactly the task that got worse, with McNemar and a bootstrap interval; the unchanged one passes', async () => {
    const root = tempDir();
    const a = runFromDir(writeRun(root, '20261130_010000-aaaaaaaaaaaaaaaa', { 'gsm8k.0': { task: 'gsm8k', scores: ones(60) }, 'mmlu.1': { task: 'mmlu', scores: ones(40) } }));
    const worse = ones(60).map((_, i) => (i < 15 ? 0 : 1));
    const b = runFromDir(writeRun(root, '20261201_010000-bbbbbbbbbbbbbbbb', { 'gsm8k.0': { task: 'gsm8k', scores: worse }, 'mmlu.1': { task: 'mmlu', scores: ones(40) } }));
    expect(a.invocationId).toBe('aaaaaaaaaaaaaaaa');
    const result = await compareRuns(a, b, rules);
    expect(result.verdict).toBe('regression');
    expect(result.summary).toMatchObject({ tasks: 2, regressions: 1, incomplete: 0 });
    const [gsm8k, mmlu] = result.tasks;
    expect(gsm8k?.verdict).toBe('regression');
    expect(gsm8k?.pairing).toEqual({ paired: 60, onlyA: 0, onlyB: 0, unscored: 0 });
    const metric = gsm8k?.metrics[0];
    expect(metric).toMatchObject({ metric: 'gsm8k_accuracy', a: 1, b: 0.75, test: 'mcnemar_exact', gated: true, verdict: 'regression' });
    expect(metric?.delta).toBeCloseTo(-0.25, 12);
    expect(metric?.pValue).toBeCloseTo(2 * 0.5 ** 15, 15); // 15 discordant pairs, all one way
    expect(metric?.interval?.high).toBeLessThan(0);
    expect(mmlu?.verdict).toBe('pass');
    expect(mmlu?.metrics[0]).toMatchObject({ delta: 0, pValue: 1, verdict: 'unchanged' });
  });

  it('a drop that is not significant, or smaller than min_drop, is not a regression', async () => {
    const root = tempDir();
    const base = ones(50).map((_, i) => (i % 2 === 0 ? 1 : 0));
    const a = runFromDir(writeRun(root, 'a', { 't.0': { task: 't', scores: base } }));
    // Two samples flipped 1 → 0: a 4-point drop, p = 0.5.
    const b = runFromDir(writeRun(root, 'b', { 't.0': { task: 't', scores: base.map((s, i) => (i < 4 && s === 1 ? 0 : s)) } }));
    const result = await compareRuns(a, b, rules);
    expect(result.tasks[0]?.metrics[0]).toMatchObject({ verdict: 'unchanged', pValue: 0.5 });
    expect(result.verdict).toBe('pass');
    const strict = await compareRuns(a, b, GateRulesSchema.parse({ alpha: 0.6 }));
    expect(strict.verdict).toBe('regression');
    const tolerant = await compareRuns(a, b, GateRulesSchema.parse({ alpha: 0.6, min_drop: 0.05 }));
    expect(tolerant.verdict).toBe('pass');
  });

  it('a failed or missing candidate job makes the comparison incomplete, never a pass', async () => {
    const root = tempDir();
    const a = runFromDir(writeRun(root, 'a', { 't.0': { task: 't', scores: ones(10) }, 'u.1': { task: 'u', scores: ones(10) } }));
    const failed = runFromDir(writeRun(root, 'b', { 't.0': { task: 't', scores: ones(10) }, 'u.1': { task: 'u', results: false } }));
    const result = await compareRuns(a, failed, rules);
    expect(result.verdict).toBe('incomplete');
    expect(result.tasks[1]).toMatchObject({ job: 'u.1', verdict: 'incomplete', b: { state: 'failed' } });
    const missing = runFromDir(writeRun(root, 'c', { 't.0': { task: 't', scores: ones(10) } }));
    expect((await compareRuns(a, missing, rules)).tasks[1]).toMatchObject({ verdict: 'incomplete', b: { state: 'missing' } });
    // The run itself failed (Temporal says so) even though every job wrote results.
    const b: RunRef = { ...runFromDir(writeRun(root, 'd', { 't.0': { task: 't', scores: ones(10) }, 'u.1': { task: 'u', scores: ones(10) } })), state: 'failed' };
    expect((await compareRuns(a, b, rules)).verdict).toBe('incomplete');
  });

  it('a task new in B has no baseline and does not fail the gate', async () => {
    const root = tempDir();
    const a = runFromDir(writeRun(root, 'a', { 't.0': { task: 't', scores: ones(10) } }));
    const b = runFromDir(writeRun(root, 'b', { 't.0': { task: 't', scores: ones(10) }, 'new.1': { task: 'new', scores: ones(10) } }));
    const result = await compareRuns(a, b, rules);
    expect(result.verdict).toBe('pass');
    expect(result.tasks[0]).toMatchObject({ job: 'new.1', verdict: 'no_baseline' });
  });

  it('macro averages use a stratified bootstrap; continuous scores use Wilcoxon', async () => {
    const root = tempDir();
    const subsets = Array.from({ length: 40 }, (_, i) => (i % 4 === 0 ? 'rare' : 'common'));
    const a = runFromDir(
      writeRun(root, 'a', {
        'mmlu.0': { task: 'mmlu', scores: ones(40), subsets, metrics: { accuracy: { accuracy: 1, macro: 1 } } },
        'c.1': { task: 'c', scores: Array.from({ length: 30 }, (_, i) => i / 30) },
      }),
    );
    // Every "rare" sample turns wrong: micro −0.25, macro −0.5.
    const worse = subsets.map((s) => (s === 'rare' ? 0 : 1));
    const b = runFromDir(
      writeRun(root, 'b', {
        'mmlu.0': { task: 'mmlu', scores: worse, subsets, metrics: { accuracy: { accuracy: 0.75, macro: 0.5 } } },
        'c.1': { task: 'c', scores: Array.from({ length: 30 }, (_, i) => i / 30 - 0.1) },
      }),
    );
    const result = await compareRuns(a, b, rules);
    const [mmlu, c] = [result.tasks.find((t) => t.job === 'mmlu.0'), result.tasks.find((t) => t.job === 'c.1')];
    const macro = mmlu?.metrics.find((m) => m.metric === 'mmlu_accuracy_macro');
    expect(macro).toMatchObject({ test: 'bootstrap', verdict: 'regression' });
    expect(macro?.interval?.low).toBeCloseTo(-0.5, 12);
    expect(macro?.interval?.high).toBeCloseTo(-0.5, 12);
    expect(mmlu?.metrics.find((m) => m.metric === 'mmlu_accuracy')).toMatchObject({ test: 'mcnemar_exact', verdict: 'regression' });
    expect(c?.metrics[0]).toMatchObject({ metric: 'c_accuracy', test: 'wilcoxon', verdict: 'regression' });
  });

  it('gates only the metrics named; lower_is_better flips the direction; no per-sample scores: the drop decides', async () => {
    const root = tempDir();
    const a = runFromDir(writeRun(root, 'a', { 'x.0': { task: 'x', metrics: { accuracy: { accuracy: 0.8 }, error_rate: { error_rate: 0.1 } } } }));
    const b = runFromDir(writeRun(root, 'b', { 'x.0': { task: 'x', metrics: { accuracy: { accuracy: 0.7 }, error_rate: { error_rate: 0.2 } } } }));
    const onlyErrors = GateRulesSchema.parse({ gate: ['*_error_rate'], lower_is_better: ['*error_rate'] });
    const result = await compareRuns(a, b, onlyErrors);
    const [accuracy, errorRate] = result.tasks[0]?.metrics ?? [];
    expect(accuracy).toMatchObject({ metric: 'x_accuracy', gated: false, verdict: 'regression', test: null, interval: null });
    expect(errorRate).toMatchObject({ metric: 'x_error_rate', gated: true, higherIsBetter: false, verdict: 'regression' });
    expect(result.verdict).toBe('regression');
    const accuracyOnly = await compareRuns(a, b, GateRulesSchema.parse({ gate: ['x_accuracy'], lower_is_better: ['*error_rate'] }));
    expect(accuracyOnly.verdict).toBe('regression');
    const none = await compareRuns(a, b, GateRulesSchema.parse({ gate: ['y_*'] }));
    expect(none.verdict).toBe('pass');
  });

  it('rules: defaults, strict keys, glob matching', () => {
    expect(rules).toMatchObject({ min_drop: 0.02, alpha: 0.05, confidence: 0.95, gate: ['*'], bootstrap_resamples: 10_000 });
    expect(GateRulesSchema.safeParse({ minDrop: 1 }).success).toBe(false);
    expect(matchesAny('gsm8k_accuracy', ['gsm8k_*'])).toBe(true);
    expect(matchesAny('gsm8k_accuracy', ['mmlu_*', 'gsm8k.accuracy'])).toBe(false);
  });

  it('names a run directory without jobs', () => {
    expect(() => runFromDir(tempDir())).toThrow(/holds no jobs/);
    expect(() => runFromDir('/nonexistent/run')).toThrow(/no such run directory/);
  });
});

describe('evalflow compare on run directories (no server)', () => {
  it('prints the table and the verdict, writes --json and --html, exits 1 on a regression and 0 on a pass', async () => {
    const root = tempDir();
    const a = writeRun(root, '20261130_010000-aaaaaaaaaaaaaaaa', { 'gsm8k.0': { task: 'gsm8k', scores: ones(40) } });
    const b = writeRun(root, '20261201_010000-bbbbbbbbbbbbbbbb', { 'gsm8k.0': { task: 'gsm8k', scores: ones(40).map((_, i) => (i < 10 ? 0 : 1)) } });
    const html = join(root, 'report.html');
    const res = await cli('compare', a, b, '--html', html);
    expect(res.code, res.stderr).toBe(1);
    expect(res.stdout).toMatch(/gsm8k\.0\s+gsm8k_accuracy\s+1\.0000\s+0\.7500\s+-0\.2500\s+\[-0\.\d+, -0\.\d+\]\s+0\.0020\s+mcnemar_exact\s+regression/);
    expect(res.stdout).toContain('verdict: REGRESSION');
    const page = readFileSync(html, 'utf8');
    expect(page).toContain('<svg class="forest"');
    expect(page).not.toMatch(/<script|https?:\/\/|<link /);

    const same = await cli('compare', a, a, '--json');
    expect(same.code).toBe(0);
    const parsed = JSON.parse(same.stdout) as { verdict: string; evalflow_compare_version: number; tasks: Array<{ metrics: Array<{ pValue: number }> }> };
    expect(parsed).toMatchObject({ verdict: 'pass', evalflow_compare_version: 1 });
    expect(parsed.tasks[0]?.metrics[0]?.pValue).toBe(1);

    const tolerant = await cli('compare', a, b, '--min-drop', '0.3');
    expect(tolerant.code).toBe(0);
  });

  it('bad flags are bad input (exit 2, the flag named)', async () => {
    const root = tempDir();
    const a = writeRun(root, 'a', { 't.0': { task: 't', scores: ones(4) } });
    expect(await cli('compare', a, a, '--alpha', '1.5')).toMatchObject({ code: 2, stderr: expect.stringMatching(/--alpha/) as unknown });
    expect(await cli('compare', a, a, '--min-drop', 'lots')).toMatchObject({ code: 2 });
    expect(await cli('compare', a, root)).toMatchObject({ code: 2, stderr: expect.stringMatching(/holds no jobs/) as unknown });
  });
});
