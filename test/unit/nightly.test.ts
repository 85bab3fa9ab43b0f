import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nightlyInvocationId } from '../../activities/nightly.js';
import { parseDuration, scheduleSpec } from '../../client/commands/schedule.js';
import { packageRoot } from '../../common/paths.js';
import { loadRunConfig } from '../../config/load.js';
import { NightlyConfigSchema } from '../../config/nightly.js';
import { planTasks } from '../../config/plan.js';
import type { NightlyResult } from '../../core/nightly.js';
import { gateNight, readHistory, summaryText, trendSeries } from '../../nightly/gate.js';
import { webhookBody } from '../../nightly/webhook.js';
import { writeRun } from '../support/run-dirs.js';
import { tempDir } from '../support/run-helpers.js';

describe('nightly config', () => {
  it('defaults: last_pass, compare rules, 14 nights, no webhook', () => {
    expect(NightlyConfigSchema.parse({})).toMatchObject({ baseline: 'last_pass', update_baseline: false, trend_nights: 14, rules: { min_drop: 0.02, alpha: 0.05, gate: ['*'] } });
  });
  it('pinned needs a baseline_run; update_baseline only with pinned; webhook URLs are host: or lit:', () => {
    expect(NightlyConfigSchema.safeParse({ baseline: 'pinned' }).error?.issues[0]?.path).toEqual(['baseline_run']);
    expect(NightlyConfigSchema.safeParse({ update_baseline: true }).error?.issues[0]?.path).toEqual(['update_baseline']);
    expect(NightlyConfigSchema.safeParse({ webhook: { url: 'https://hooks.slack.com/x' } }).success).toBe(false);
    expect(NightlyConfigSchema.safeParse({ webhook: { url: 'runtime:HOOK' } }).success).toBe(false);
    expect(NightlyConfigSchema.parse({ webhook: { url: 'host:HOOK' } }).webhook).toEqual({ url: 'host:HOOK', format: 'json', on: ['regression', 'incomplete', 'failed'] });
  });
});

describe('schedule flags', () => {
  it('durations and specs', () => {
    expect(parseDuration('90s', '--x')).toBe(90_000);
    expect(parseDuration('24h', '--x')).toBe(86_400_000);
    expect(() => parseDuration('1 day', '--interval')).toThrow(/--interval/);
    expect(scheduleSpec({ cron: '0 2 * * *', timezone: 'Europe/Berlin' })).toEqual({ cronExpressions: ['0 2 * * *'], timezone: 'Europe/Berlin' });
    expect(scheduleSpec({ interval: '12h' })).toEqual({ intervals: [{ every: 43_200_000 }] });
    expect(() => scheduleSpec({})).toThrow(/exactly one/);
    expect(() => scheduleSpec({ cron: '0 2 * *' })).toThrow(/5-field/);
    expect(() => scheduleSpec({ cron: '0 2 * * *', timezone: 'Nowhere/Else' })).toThrow(/--timezone/);
  });
  it('each night gets its own invocation id, the same on every retry of its planning', () => {
    const one = nightlyInvocationId('evalflow-nightly-x-2026-11-30T02:00:00Z', 'run-a');
    expect(one).toMatch(/^[0-9a-f]{16}$/);
    expect(nightlyInvocationId('evalflow-nightly-x-2026-11-30T02:00:00Z', 'run-a')).toBe(one);
    expect(nightlyInvocationId('evalflow-nightly-x-2026-12-01T02:00:00Z', 'run-b')).not.toBe(one);
  });
});

describe('the gate on run directories', () => {
  const jobs = (runDir: string) => [{ jobName: 'gsm8k.0', taskName: 'evalflow.gsm8k', jobDir: join(runDir, 'gsm8k.0') }];
  const tonight = (runDir: string, inv: string, startedAt: string, state: 'succeeded' | 'failed' = 'succeeded') => ({
    schedule: 's',
    nightlyWorkflowId: `wf-${inv}`,
    invocationId: inv,
    runDir,
    startedAt,
    suite: { state, succeededJobs: state === 'succeeded' ? ['gsm8k.0'] : [] },
    jobs: jobs(runDir),
  });

  it('no baseline, then pass, then a regression against the last good night; a failed night; history and trends', async () => {
    const root = tempDir();
    const nightlyDir = join(root, 'nightly-s');
    const nightly = NightlyConfigSchema.parse({ rules: { min_drop: 0.05 }, webhook: { url: 'host:HOOK' } });
    const good = Array.from({ length: 20 }, () => 1);
    const runs = [
      writeRun(root, `20261128_020000-${'a'.repeat(16)}`, { 'gsm8k.0': { task: 'gsm8k', scores: good } }),
      writeRun(root, `20261129_020000-${'b'.repeat(16)}`, { 'gsm8k.0': { task: 'gsm8k', scores: good } }),
      writeRun(root, `20261130_020000-${'c'.repeat(16)}`, { 'gsm8k.0': { task: 'gsm8k', scores: good.map((s, i) => (i < 10 ? 0 : s)) } }),
      writeRun(root, `20261201_020000-${'d'.repeat(16)}`, { 'gsm8k.0': { task: 'gsm8k', results: false } }),
    ];

    const first = await gateNight(nightly, nightlyDir, undefined, tonight(runs[0] as string, 'a'.repeat(16), '2026-11-28T02:00:00.000Z'));
    expect(first).toMatchObject({ verdict: 'no_baseline', baseline: null, notify: false });
    const second = await gateNight(nightly, nightlyDir, undefined, tonight(runs[1] as string, 'b'.repeat(16), '2026-11-29T02:00:00.000Z'));
    expect(second).toMatchObject({ verdict: 'pass', baseline: { invocationId: 'a'.repeat(16) }, regressions: [], notify: false });
    const third = await gateNight(nightly, nightlyDir, undefined, tonight(runs[2] as string, 'c'.repeat(16), '2026-11-30T02:00:00.000Z'));
    expect(third).toMatchObject({ verdict: 'regression', baseline: { invocationId: 'b'.repeat(16) }, notify: true });
    expect(third.regressions).toEqual([{ job: 'gsm8k.0', metric: 'gsm8k_accuracy', a: 1, b: 0.5, delta: -0.5, pValue: 2 * 0.5 ** 10 }]);
    const fourth = await gateNight(nightly, nightlyDir, undefined, tonight(runs[3] as string, 'd'.repeat(16), '2026-12-01T02:00:00.000Z', 'failed'));
    expect(fourth).toMatchObject({ verdict: 'failed', baseline: { invocationId: 'b'.repeat(16) }, notify: true });

    expect(readHistory(nightlyDir).map((n) => n.verdict)).toEqual(['no_baseline', 'pass', 'regression', 'failed']);
    const report = JSON.parse(readFileSync(third.reportJson, 'utf8')) as { trends: Array<{ metric: string; points: Array<{ value: number }> }> };
    expect(report.trends).toEqual([{ metric: 'gsm8k_accuracy', points: [1, 1, 0.5].map((value, i) => expect.objectContaining({ value, verdict: ['no_baseline', 'pass', 'regression'][i] })) }]);
    expect(readFileSync(third.reportHtml, 'utf8')).toContain('Trends');
    // A retried gate rewrites its own night.
    await gateNight(nightly, nightlyDir, undefined, tonight(runs[2] as string, 'c'.repeat(16), '2026-11-30T02:00:00.000Z'));
    expect(readHistory(nightlyDir)).toHaveLength(4);
  });

  it('pinned with update_baseline: a passing night becomes the baseline', async () => {
    const root = tempDir();
    const nightlyDir = join(root, 'nightly-p');
    const good = Array.from({ length: 10 }, () => 1);
    const pinnedDir = writeRun(root, `r1-${'1'.repeat(16)}`, { 'gsm8k.0': { task: 'gsm8k', scores: good } });
    const nightDir = writeRun(root, `r2-${'2'.repeat(16)}`, { 'gsm8k.0': { task: 'gsm8k', scores: good } });
    const nightly = NightlyConfigSchema.parse({ baseline: 'pinned', baseline_run: '1111', update_baseline: true });
    const pinned = { label: '1111', invocationId: '1'.repeat(16), runDir: pinnedDir };
    const gate = await gateNight(nightly, nightlyDir, pinned, tonight(nightDir, '2'.repeat(16), '2026-11-30T02:00:00.000Z'));
    expect(gate).toMatchObject({ verdict: 'pass', baseline: pinned });
    expect(JSON.parse(readFileSync(join(nightlyDir, 'baseline.json'), 'utf8'))).toMatchObject({ invocationId: '2'.repeat(16), runDir: nightDir });
  });
});

describe('trends and messages', () => {
  it('trend series keep the last nights of the gated metrics', () => {
    const nights = [1, 2, 3].map((i) => ({ startedAt: `2026-11-2${i}T02:00:00Z`, verdict: 'pass' as const, metrics: { gsm8k_accuracy: i / 10, mmlu_accuracy: 0.5 } }));
    expect(trendSeries(nights, 2, ['gsm8k_*'])).toEqual([{ metric: 'gsm8k_accuracy', points: [expect.objectContaining({ value: 0.2 }), expect.objectContaining({ value: 0.3 })] }]);
  });
  it('the webhook body: generic JSON with a Slack-compatible text, or the text alone', () => {
    const regressions = [{ job: 'gsm8k.0', metric: 'gsm8k_accuracy', a: 1, b: 0.5, delta: -0.5, pValue: 0.002 }];
    const text = summaryText('nightly', 'regression', { label: 'b', invocationId: 'b', runDir: '/r/b' }, regressions, undefined, '/n/report.html');
    expect(text).toBe('evalflow nightly nightly: REGRESSION against b\n• gsm8k.0 gsm8k_accuracy: 1.0000 → 0.5000 (-0.5000, p=0.0020)\nreport: /n/report.html');
    const night: NightlyResult = { schedule: 'nightly', invocationId: 'c', runDir: '/r/c', verdict: 'regression', baseline: null, regressions, reportJson: '/n/report.json', reportHtml: '/n/report.html', text, notify: true };
    expect(webhookBody('slack', night)).toEqual({ text });
    expect(webhookBody('json', night)).toMatchObject({ text, verdict: 'regression', invocation_id: 'c', regressions, report: { html: '/n/report.html' } });
  });
});

describe('examples/nightly.yaml', () => {
  it('loads, with its nightly section, and plans both tasks', () => {
    const cfg = loadRunConfig({ configPath: join(packageRoot(), 'examples', 'nightly.yaml'), env: {} });
    expect(cfg.nightly).toMatchObject({ baseline: 'last_pass', rules: { gate: ['gsm8k_*', 'mmlu_accuracy'] }, webhook: { url: 'host:NIGHTLY_WEBHOOK_URL', format: 'slack' } });
    expect(planTasks(cfg).map((p) => p.jobName)).toEqual(['gsm8k.0', 'mmlu.1']);
  });
});
