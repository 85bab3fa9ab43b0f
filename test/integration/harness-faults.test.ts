/**
 * The harness against endpoint faults from the real fixture server: 429 with Retry-After, 500s,
 * timeouts and malformed JSON are retried within bounds; samples that still fail are counted as errors,
 * never scored, and fail the run past `max_error_rate`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { evaluate, EvaluationFailedError } from '../../harness/evaluate.js';
import { PROBE_PROMPT } from '../../harness/client.js';
import { runEvaluation } from '../../harness/engine.js';
import { answerFromTable, startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import { DATASETS, gsm8kHead, tempDir } from '../support/run-helpers.js';

const N = 6;
const questions = gsm8kHead(N);
const table = Object.fromEntries(questions.map(({ question, answer }) => [question, `The final answer is ${answer}`]));
const q = (i: number) => questions[i]?.question as string;

function runConfig(fixture: FixtureServer, outputDir: string, extra: Record<string, unknown> = {}) {
  return {
    config: {
      type: 'gsm8k',
      output_dir: outputDir,
      params: { limit_samples: N, parallelism: 3, max_retries: 3, request_timeout: 1, extra: { dataset_dir: DATASETS, ...extra } },
    },
    target: { api_endpoint: { url: `${fixture.url}/v1/chat/completions`, model_id: 'fixture-model', type: 'chat' as const } },
  };
}

describe('harness under endpoint faults', () => {
  let fixture: FixtureServer;
  beforeEach(async () => {
    fixture = await startFixtureServer({ answer: answerFromTable(table) });
  });
  afterEach(async () => {
    await fixture.close();
  });

  it('retries 429 (honouring Retry-After), 500, timeouts, garbage and answers without content, then scores every sample', async () => {
    fixture.addFault(q(0), { kind: 'status', status: 429, retryAfterS: 1, times: 2 });
    fixture.addFault(q(1), { kind: 'status', status: 500, times: 2 });
    fixture.addFault(q(2), { kind: 'timeout', times: 1 });
    fixture.addFault(q(3), { kind: 'garbage', times: 1 });
    fixture.addFault(q(4), { kind: 'no-content', times: 2 });
    const outputDir = tempDir();
    const started = Date.now();
    const { results } = await runEvaluation({ runConfig: runConfig(fixture, outputDir), retryBaseDelayMs: 10 });
    const elapsed = Date.now() - started;
    expect(results.samples).toEqual({ total: N, scored: N, errors: 0, cached: 0 });
    expect(results.results.tasks.gsm8k?.metrics.accuracy?.scores.accuracy?.value).toBe(1);
    // 2 extra attempts for q0, q1 and q4, 1 each for q2 and q3.
    expect(fixture.totalRequests()).toBe(N + 2 + 2 + 1 + 1 + 2);
    // A response without content was never cached as an empty answer.
    const cached = readFileSync(join(outputDir, 'cache', 'responses.jsonl'), 'utf8').trim().split('\n');
    expect(cached).toHaveLength(N);
    expect(cached.map((l) => (JSON.parse(l) as { r: { text: string } }).r.text).filter((t) => t === '')).toEqual([]);
    // Two Retry-After: 1 waits on q0 (the base backoff here is 10 ms).
    expect(elapsed).toBeGreaterThanOrEqual(2000);
  });

  it('counts a sample that keeps failing as an error and fails the run past max_error_rate', async () => {
    fixture.addFault(q(4), { kind: 'status', status: 503, times: 1000 });
    const outputDir = tempDir();
    const outcome = await runEvaluation({ runConfig: runConfig(fixture, outputDir), retryBaseDelayMs: 10 });
    expect(outcome.errorThresholdExceeded).toBe(true);
    expect(outcome.errorMessage).toMatch(/1 of 6 samples failed/);
    expect(outcome.results.samples).toEqual({ total: N, scored: N - 1, errors: 1, cached: 0 });
    // Scored over the 5 answered samples only, never a silent zero for the failed one.
    expect(outcome.results.results.tasks.gsm8k?.metrics.accuracy?.scores.accuracy?.value).toBe(1);
    // max_retries: 3 → 4 attempts, then given up.
    expect(fixture.requests.filter((r) => r.prompt.includes(q(4)))).toHaveLength(4);
    const perSample = readFileSync(join(outputDir, 'nemo-evaluator-per-sample-outputs', 'gsm8k.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { error: string | null; score: number | null });
    expect(perSample.filter((s) => s.error !== null)).toHaveLength(1);
    expect(perSample.find((s) => s.error)?.error).toMatch(/HTTP 503/);
    expect(perSample.find((s) => s.error)?.score).toBeNull();

    // The library form throws, carrying the results.
    await expect(evaluate(runConfig(fixture, tempDir()) )).rejects.toBeInstanceOf(EvaluationFailedError);
  });

  it('stops sending once the error budget is spent: the rest is not run', async () => {
    fixture.addFault(q(1), { kind: 'status', status: 400, times: 1000 });
    const outputDir = tempDir();
    const cfg = runConfig(fixture, outputDir);
    cfg.config.params.parallelism = 1;
    const outcome = await runEvaluation({ runConfig: cfg, retryBaseDelayMs: 10 });
    expect(outcome.errorThresholdExceeded).toBe(true);
    // q0 answered, q1 failed (400, not retried): with max_error_rate 0 nothing more is sent.
    expect(fixture.totalRequests()).toBe(2);
    expect(outcome.results.samples).toEqual({ total: N, scored: 1, errors: 1, cached: 0, not_run: N - 2 });
    expect(outcome.errorMessage).toMatch(/^1 of 6 samples failed after retries \(max_error_rate 0 allows 0\); stopped sending, 4 samples not run; see /);
    const perSample = readFileSync(join(outputDir, 'nemo-evaluator-per-sample-outputs', 'gsm8k.jsonl'), 'utf8').trim().split('\n');
    expect(perSample.map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(['gsm8k-0', 'gsm8k-1']);
  });

  it('a sample failing with 5xx while the endpoint answers probes is its own error, not an outage', async () => {
    fixture.addFault(q(2), { kind: 'status', status: 502, times: 1000 });
    const outcome = await runEvaluation({ runConfig: runConfig(fixture, tempDir(), { max_error_rate: 0.2 }), retryBaseDelayMs: 10 });
    expect(outcome.results.samples).toMatchObject({ total: N, scored: N - 1, errors: 1 });
    // 4 attempts (max_retries 3), then one probe decided the endpoint was up: no second round for a 5xx.
    expect(fixture.requests.filter((r) => r.prompt.includes(q(2)))).toHaveLength(4);
    expect(fixture.requests.filter((r) => r.prompt.includes(PROBE_PROMPT))).toHaveLength(1);
  });

  it('tolerates errors up to max_error_rate', async () => {
    fixture.addFault(q(5), { kind: 'status', status: 400, times: 1000 });
    const outcome = await runEvaluation({ runConfig: runConfig(fixture, tempDir(), { max_error_rate: 0.2 }), retryBaseDelayMs: 10 });
    expect(outcome.errorThresholdExceeded).toBe(false);
    expect(outcome.results.samples.errors).toBe(1);
    // 400 is not retryable: one attempt only.
    expect(fixture.requests.filter((r) => r.prompt.includes(q(5)))).toHaveLength(1);
  });

  it('re-running with the same output dir sends nothing: every response comes from the cache', async () => {
    const outputDir = tempDir();
    await evaluate(runConfig(fixture, outputDir) );
    const sent = fixture.totalRequests();
    const again = await evaluate(runConfig(fixture, outputDir) );
    expect(fixture.totalRequests()).toBe(sent);
    expect(again.samples).toEqual({ total: N, scored: N, errors: 0, cached: N });
  });
});
