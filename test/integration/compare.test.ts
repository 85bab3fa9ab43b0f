/**
 * `evalflow compare` on real runs: four invocations through the real Temporal dev server, a worker and
 * the harness as a process, against the fixture endpoint whose scripted answers change between runs
 * (GSM8K degrades in one run, a third run repeats the first, a fourth fails). Ids are given as
 * prefixes and resolved through Temporal, like every other verb.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Comparison } from '../../compare/compare.js';
import { answerFromTable, startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import { cli, DATASETS, gsm8kHead, startedInvocationId, tempDir, writeConfig } from '../support/run-helpers.js';
import { startWorker, testTarget, type RunningWorker } from '../support/temporal.js';

const GSM8K_N = 30;
const DEGRADED = 12; // questions answered wrongly in the degraded run
const MMLU_N = 8;

describe('evalflow compare on real runs', () => {
  let fixture: FixtureServer;
  let worker: RunningWorker;
  let dir: string;
  let degrade = false;
  const ids: Record<'good' | 'degraded' | 'repeat' | 'failed', string> = { good: '', degraded: '', repeat: '', failed: '' };

  const run = async (name: keyof typeof ids, expectedCode: number) => {
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
  api_endpoint:
    url: ${fixture.url}/v1/chat/completions
    model_id: fixture-model
    type: chat
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
`,
      `${name}.yaml`,
    );
    const res = await cli('run', '-c', config, '--wait');
    expect(res.code, res.stdout + res.stderr).toBe(expectedCode);
    ids[name] = startedInvocationId(res.stdout);
  };

  beforeAll(async () => {
    process.env.TEMPORAL_ADDRESS = testTarget().address;
    const questions = gsm8kHead(GSM8K_N);
    const right: Record<string, string> = {};
    const wrong: Record<string, string> = {};
    for (const [i, { question, answer }] of questions.entries()) {
      right[question] = `The final answer is ${answer}`;
      wrong[question] = i < DEGRADED ? `The final answer is ${Number(answer) + 1}` : `The final answer is ${answer}`;
    }
    const answerRight = answerFromTable(right);
    const answerWrong = answerFromTable(wrong);
    fixture = await startFixtureServer({
      answer: (prompt) => (prompt.includes('multiple choice') ? 'The answer is (B)' : degrade ? answerWrong(prompt) : answerRight(prompt)),
    });
    worker = await startWorker();
    dir = tempDir();
    await run('good', 0);
    degrade = true;
    await run('degraded', 0);
    degrade = false;
    await run('repeat', 0);
    // Every GSM8K request is refused (a 400 is the request's fault, not an outage the harness waits out):
    // that job fails (error budget 0), so the invocation fails.
    fixture.addFault(/^(?![\s\S]*multiple choice)/, { kind: 'status', status: 400, times: 1_000_000 });
    await run('failed', 1);
    fixture.clearFaults();
  }, 600_000);

  afterAll(async () => {
    await worker?.stop();
    await fixture?.close();
  });

  it('flags exactly the degraded task, by id prefixes resolved through Temporal, and writes the HTML report', async () => {
    const html = join(dir, 'report.html');
    const res = await cli('compare', ids.good.slice(0, 6), ids.degraded.slice(0, 7), '--json', '--html', html);
    expect(res.code, res.stderr).toBe(1);
    const comparison = JSON.parse(res.stdout) as Comparison;
    expect(comparison.verdict).toBe('regression');
    expect(comparison.a).toMatchObject({ invocationId: ids.good, state: 'succeeded' });
    expect(comparison.b).toMatchObject({ invocationId: ids.degraded, state: 'succeeded' });
    const byJob = Object.fromEntries(comparison.tasks.map((t) => [t.job, t]));
    expect(byJob['gsm8k.0']).toMatchObject({ task: 'evalflow.gsm8k', verdict: 'regression', pairing: { paired: GSM8K_N, onlyA: 0, onlyB: 0 } });
    const gsm8k = byJob['gsm8k.0']?.metrics.find((m) => m.metric === 'gsm8k_accuracy');
    expect(gsm8k).toMatchObject({ a: 1, test: 'mcnemar_exact', verdict: 'regression' });
    expect(gsm8k?.delta).toBeCloseTo(-DEGRADED / GSM8K_N, 12);
    expect(gsm8k?.pValue).toBeCloseTo(2 * 0.5 ** DEGRADED, 15);
    expect(gsm8k?.interval?.high).toBeLessThan(0);
    expect(byJob['mmlu.1']?.verdict).toBe('pass');
    expect(byJob['mmlu.1']?.metrics.every((m) => m.verdict === 'unchanged' && m.delta === 0)).toBe(true);
    expect(existsSync(html)).toBe(true);
    expect(readFileSync(html, 'utf8')).toContain('gsm8k_accuracy');
  });

  it('an unchanged run passes (table output)', async () => {
    const res = await cli('compare', ids.good, ids.repeat);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/gsm8k\.0\s+gsm8k_accuracy\s+1\.0000\s+1\.0000\s+0\.0000\s+\[0\.0000, 0\.0000\]\s+1\.0000\s+mcnemar_exact\s+unchanged/);
    expect(res.stdout).toContain('verdict: PASS');
  });

  it('a failed run never passes', async () => {
    const res = await cli('compare', ids.good, ids.failed, '--json');
    expect(res.code).toBe(1);
    const comparison = JSON.parse(res.stdout) as Comparison;
    expect(comparison.verdict).toBe('incomplete');
    expect(comparison.b.state).toBe('failed');
    expect(comparison.tasks.find((t) => t.job === 'gsm8k.0')).toMatchObject({ verdict: 'incomplete', b: { state: 'failed' } });
  });

  it('run directories work as well as ids, and a job id compares one task', async () => {
    const status = await cli('status', ids.good, '--json');
    const goodDir = dirname((JSON.parse(status.stdout) as Array<{ location: string }>)[0]?.location ?? '');
    expect(goodDir).toMatch(new RegExp(`-${ids.good}$`));
    const res = await cli('compare', goodDir, `${ids.degraded}.0`, '--json');
    const comparison = JSON.parse(res.stdout) as Comparison;
    expect(comparison.tasks.map((t) => t.job)).toEqual(['gsm8k.0', 'mmlu.1']);
    expect(comparison.tasks[0]?.verdict).toBe('regression');
    // Only gsm8k.0 was selected in B: mmlu.1 is missing there, so the candidate is incomplete.
    expect(comparison.tasks[1]?.verdict).toBe('incomplete');
    expect(comparison.verdict).toBe('incomplete');
  });
});
