/**
 * Nightly regression on the real Temporal dev server: a schedule created through the CLI, triggered four
 * times (the cron is far off, so only triggers start nights). Each night is a new invocation with new ids,
 * directories and response cache (the fixture endpoint counts the requests really sent); the gate compares
 * each night with the last good one: unchanged → pass, GSM8K degraded → exactly that task regressed, a
 * failed suite → failed. The webhook is a real HTTP server on loopback.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerFromTable, startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import type { NightlyResult } from '../../core/nightly.js';
import { scheduleIdOf } from '../../core/nightly.js';
import { chromiumPath, renderPage } from '../support/chromium.js';
import { cli, DATASETS, gsm8kHead, tempDir, writeConfig } from '../support/run-helpers.js';
import { startWorker, testClient, testTarget, type RunningWorker } from '../support/temporal.js';

const GSM8K_N = 20;
const DEGRADED = 10;
const MMLU_N = 6;
const NAME = `it-nightly-${process.pid}`;

describe('evalflow schedule: nightly regression runs', () => {
  let fixture: FixtureServer;
  let worker: RunningWorker;
  let client: Client;
  let webhook: Server;
  const hooks: Array<Record<string, unknown>> = [];
  let dir: string;
  let degrade = false;
  const nights: NightlyResult[] = [];
  const sent: number[] = [];

  /** Triggers the schedule through the CLI and waits for the night it started. */
  const night = async (): Promise<NightlyResult> => {
    const handle = client.schedule.getHandle(scheduleIdOf(NAME));
    const before = (await handle.describe()).info.recentActions.length;
    const requestsBefore = fixture.totalRequests();
    const res = await cli('schedule', 'trigger', NAME);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    let action: { workflowId: string; firstExecutionRunId: string } | undefined;
    for (let i = 0; i < 300 && !action; i++) {
      const recent = (await handle.describe()).info.recentActions;
      const last = recent.length > before ? recent.at(-1)?.action : undefined;
      if (last && 'workflow' in last) action = last.workflow;
      else await new Promise((r) => setTimeout(r, 200));
    }
    if (!action) throw new Error('the trigger started no night');
    const result = await client.workflow.getHandle(action.workflowId, action.firstExecutionRunId).result();
    sent.push(fixture.totalRequests() - requestsBefore);
    nights.push(result);
    return result;
  };

  beforeAll(async () => {
    process.env.TEMPORAL_ADDRESS = testTarget().address;
    dir = tempDir();
    webhook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        hooks.push(JSON.parse(body) as Record<string, unknown>);
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      });
    });
    await new Promise<void>((r) => webhook.listen(0, '127.0.0.1', r));
    process.env.EVALFLOW_IT_NIGHTLY_WEBHOOK = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hooks/nightly`;
    const right: Record<string, string> = {};
    const wrong: Record<string, string> = {};
    for (const [i, { question, answer }] of gsm8kHead(GSM8K_N).entries()) {
      right[question] = `The final answer is ${answer}`;
      wrong[question] = `The final answer is ${i < DEGRADED ? Number(answer) + 1 : answer}`;
    }
    const answerRight = answerFromTable(right);
    const answerWrong = answerFromTable(wrong);
    fixture = await startFixtureServer({ answer: (prompt) => (prompt.includes('multiple choice') ? 'The answer is (B)' : degrade ? answerWrong(prompt) : answerRight(prompt)) });
    worker = await startWorker();
    client = await testClient();
  }, 120_000);

  afterAll(async () => {
    await cli('schedule', 'delete', NAME);
    await worker?.stop();
    await client?.connection.close();
    await fixture?.close();
    await new Promise((r) => webhook?.close(r));
  });

  it('creates the schedule through the CLI (bad input: exit 2, nothing created)', async () => {
    const config = writeConfig(
      dir,
      `
defaults:
  - execution: local
  - deployment: none
  - _self_
execution:
  output_dir: ${dir}/results
  runtime: process
  mode: parallel
target:
  api_endpoint: {url: '${fixture.url}/v1/chat/completions', model_id: fixture-model, type: chat}
evaluation:
  nemo_evaluator_config:
    config:
      params: {parallelism: 4, temperature: 0, max_retries: 0}
  tasks:
    - name: evalflow.gsm8k
      dataset_dir: ${DATASETS}
      nemo_evaluator_config: {config: {params: {limit_samples: ${GSM8K_N}}}}
    - name: evalflow.mmlu
      dataset_dir: ${DATASETS}
      nemo_evaluator_config: {config: {params: {limit_samples: ${MMLU_N}}}}
nightly:
  rules: {min_drop: 0.05, alpha: 0.05}
  webhook: {url: 'host:EVALFLOW_IT_NIGHTLY_WEBHOOK', on: [regression, failed, incomplete]}
`,
      'suite.yaml',
    );
    const bad = await cli('schedule', 'create', NAME, '-c', config, '--cron', '0 3 * * *', '--timezone', 'Mars/Olympus');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--timezone');
    const badKey = await cli('schedule', 'create', NAME, '-c', config, '--cron', '0 3 * * *', '-o', 'nightly.rules.min_dorp=0.1');
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain('nightly.rules.min_dorp');

    const res = await cli('schedule', 'create', NAME, '-c', config, '--cron', '0 3 * * *', '--timezone', 'Europe/Berlin', '--catchup-window', '2h');
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const again = await cli('schedule', 'create', NAME, '-c', config, '--cron', '0 3 * * *');
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('exists');
    const list = await cli('schedule', 'list', '--json');
    expect((JSON.parse(list.stdout) as Array<{ name: string; schedule: string; paused: boolean }>).find((s) => s.name === NAME)).toMatchObject({ schedule: '0 3 * * * (Europe/Berlin)', paused: false });
  });

  it('two triggers: two independent invocations (new ids, new directories, requests really sent); the second passes against the first', async () => {
    const first = await night();
    const second = await night();
    expect(first.verdict).toBe('no_baseline');
    expect(second.verdict).toBe('pass');
    expect(second.invocationId).not.toBe(first.invocationId);
    expect(second.runDir).not.toBe(first.runDir);
    for (const n of [first, second]) {
      expect(n.runDir).toMatch(new RegExp(`^${dir}/results/\\d{8}_\\d{6}-${n.invocationId}$`));
      expect(existsSync(join(n.runDir, 'gsm8k.0', 'artifacts', 'results.yml'))).toBe(true);
      expect(existsSync(join(n.runDir, 'launcher_config.yml'))).toBe(true);
      expect(existsSync(n.reportHtml)).toBe(true);
    }
    // Each night asked the endpoint for every sample: no response cache carried over from night one.
    expect(sent[0]).toBe(GSM8K_N + MMLU_N);
    expect(sent[1]).toBe(GSM8K_N + MMLU_N);
    expect(second.baseline).toMatchObject({ invocationId: first.invocationId, runDir: first.runDir });
    const status = await cli('status', second.invocationId, '--json');
    expect(status.code, status.stderr).toBe(0);
    expect(hooks).toEqual([]);
  });

  it('a degraded task is flagged, exactly that one, and the webhook hears of it', async () => {
    degrade = true;
    const third = await night();
    degrade = false;
    expect(third.verdict).toBe('regression');
    expect(third.regressions.map((r) => `${r.job} ${r.metric}`)).toEqual(['gsm8k.0 gsm8k_accuracy']);
    expect(third.regressions[0]?.delta).toBeCloseTo(-DEGRADED / GSM8K_N, 12);
    expect(third.baseline?.invocationId).toBe(nights[1]?.invocationId);
    const report = JSON.parse(readFileSync(third.reportJson, 'utf8')) as { verdict: string; comparison: { tasks: Array<{ job: string; verdict: string }> }; trends: Array<{ metric: string; points: unknown[] }> };
    expect(report.comparison.tasks.map((t) => [t.job, t.verdict])).toEqual([
      ['gsm8k.0', 'regression'],
      ['mmlu.1', 'pass'],
    ]);
    expect(report.trends.find((t) => t.metric === 'gsm8k_accuracy')?.points).toHaveLength(3);
    if (process.env.EVALFLOW_E2E === '1' || chromiumPath() !== null) {
      // The night's report as a person opens it: no console errors, a trend plot per gated metric, a point per night.
      const measure = `(() => ({ trends: document.querySelectorAll('svg.trend').length, points: [...document.querySelectorAll('svg.trend circle.point')].filter((e) => e.getBoundingClientRect().width > 0).length }))()`;
      const page = await renderPage(third.reportHtml, measure, join(third.reportHtml, '..', 'report.png'));
      expect(page.errors).toEqual([]);
      expect(page.measured).toEqual({ trends: report.trends.length, points: report.trends.reduce((n, t) => n + t.points.length, 0) });
    }
    expect(hooks).toHaveLength(1);
    expect(hooks[0]).toMatchObject({ verdict: 'regression', schedule: NAME, invocation_id: third.invocationId });
    expect(hooks[0]?.text).toMatch(/REGRESSION[\s\S]*gsm8k\.0 gsm8k_accuracy: 1\.0000 → 0\.5000/);
  });

  it('a failed suite never passes; the next baseline stays the last good night', async () => {
    fixture.addFault(/^(?![\s\S]*multiple choice)/, { kind: 'status', status: 400, times: 1_000_000 });
    const fourth = await night();
    fixture.clearFaults();
    expect(fourth.verdict).toBe('failed');
    expect(fourth.baseline?.invocationId).toBe(nights[1]?.invocationId);
    expect(hooks.at(-1)).toMatchObject({ verdict: 'failed', invocation_id: fourth.invocationId });
  });

  it('describe shows every night with its invocation and verdict; pause and unpause', async () => {
    const res = await cli('schedule', 'describe', NAME, '--json');
    expect(res.code, res.stderr).toBe(0);
    const described = JSON.parse(res.stdout) as { overlap: string; catchupWindowMs: number; nights: Array<{ invocationId: string; verdict: string; status: string }> };
    expect(described).toMatchObject({ overlap: 'SKIP', catchupWindowMs: 2 * 3_600_000 });
    expect(described.nights.map((n) => [n.invocationId, n.verdict, n.status])).toEqual(nights.map((n) => [n.invocationId, n.verdict, 'completed']));
    const text = await cli('schedule', 'describe', NAME);
    expect(text.stdout).toContain(nights[2]?.invocationId);
    expect((await cli('schedule', 'pause', NAME, '--note', 'release freeze')).code).toBe(0);
    expect((await client.schedule.getHandle(scheduleIdOf(NAME)).describe()).state).toMatchObject({ paused: true, note: 'release freeze' });
    expect((await cli('schedule', 'unpause', NAME)).code).toBe(0);
    expect((await client.schedule.getHandle(scheduleIdOf(NAME)).describe()).state.paused).toBe(false);
  });

  it('info and logs take several ids; info copies artifacts without the response cache', async () => {
    const [a, b] = [nights[0] as NightlyResult, nights[1] as NightlyResult];
    const copy = join(dir, 'copied');
    const info = await cli('info', a.invocationId, b.invocationId.slice(0, 10), '--copy-artifacts', copy, '--logs', '--config');
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toContain(`config:  ${join(a.runDir, 'launcher_config.yml')}`);
    expect(info.stdout).toContain('nightly:'); // --config prints the saved config
    for (const n of [a, b]) {
      expect(info.stdout).toContain(`invocation ${n.invocationId}: succeeded`);
      expect(info.stdout).toContain(`job ${n.invocationId}.1 (mmlu.1, evalflow.mmlu): succeeded`);
      expect(existsSync(join(copy, `${n.invocationId}.0`, 'artifacts', 'results.yml'))).toBe(true);
      expect(existsSync(join(n.runDir, 'gsm8k.0', 'artifacts', 'cache'))).toBe(true);
      expect(existsSync(join(copy, `${n.invocationId}.0`, 'artifacts', 'cache'))).toBe(false);
    }
    const logs = await cli('logs', `${a.invocationId}.0`, b.invocationId);
    expect(logs.code, logs.stderr).toBe(0);
    const labels = new Set([...logs.stdout.matchAll(/^\[([^\]]+)\] /gm)].map((m) => m[1]));
    expect([...labels].sort()).toEqual([`${a.invocationId}.0`, `${b.invocationId}.0`, `${b.invocationId}.1`].sort());
  });
});
