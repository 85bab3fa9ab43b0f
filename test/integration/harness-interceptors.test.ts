/**
 * The interceptor chain against the real fixture endpoint: what the endpoint receives (system message, added
 * parameters), what is scored (reasoning stripped), what is logged, counted and reported, and a client error that
 * ends the run.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import { runEvaluation } from '../../harness/engine.js';
import { DATASETS, gsm8kHead, tempDir } from '../support/run-helpers.js';

const N = 5;
const questions = gsm8kHead(N);

function runConfig(fixture: FixtureServer, adapterConfig: Record<string, unknown>) {
  return {
    config: { type: 'gsm8k', output_dir: tempDir(), params: { limit_samples: N, parallelism: 2, max_retries: 1, extra: { dataset_dir: DATASETS } } },
    target: { api_endpoint: { url: `${fixture.url}/v1/chat/completions`, model_id: 'fixture-model', type: 'chat' as const, adapter_config: adapterConfig } },
  };
}

/** The model thinks its way to a wrong number, then answers right with a bare number, only when told to be terse. */
function reasoningModel(prompt: string, body: Record<string, unknown>): string {
  const q = questions.find((x) => prompt.includes(x.question));
  const messages = body.messages as Array<{ role: string; content: string }>;
  const told = messages[0]?.role === 'system' && messages[0].content === 'Answer tersely.' && body.seed === 7;
  return q && told ? `<think>Let me see. The final answer is 0.</think>\n${q.answer}` : 'I was not told how to answer.';
}

describe('interceptors against the fixture endpoint', () => {
  let fixture: FixtureServer | undefined;
  afterEach(async () => {
    await fixture?.close();
    fixture = undefined;
  });

  it('system_message, payload_modifier and reasoning decide the score; logging, stats and progress report it', async () => {
    fixture = await startFixtureServer({ answer: reasoningModel });
    const progress: string[] = [];
    const tracker = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        progress.push(`${req.method} ${body}`);
        res.end();
      });
    });
    await new Promise<void>((r) => tracker.listen(0, '127.0.0.1', r));
    const trackerUrl = `http://127.0.0.1:${(tracker.address() as AddressInfo).port}/jobs/1`;
    const interceptors = [
      { name: 'system_message', config: { system_message: 'Answer tersely.' } },
      { name: 'payload_modifier', config: { params_to_add: { seed: 7 } } },
      { name: 'request_logging', config: { max_requests: 1 } },
      'caching',
      'endpoint',
      { name: 'response_logging', config: { max_responses: 1 } },
      'reasoning',
      'response_stats',
      { name: 'progress_tracking', config: { progress_tracking_url: trackerUrl } },
    ];
    const logs: string[] = [];
    const cfg = runConfig(fixture, { interceptors });
    try {
      const { results } = await runEvaluation({ runConfig: cfg, env: {}, log: (l) => logs.push(l) });
      expect(results.samples).toMatchObject({ total: N, scored: N, errors: 0 });
      expect(results.results.tasks.gsm8k?.metrics.accuracy?.scores.accuracy?.value).toBe(1);
    } finally {
      tracker.close();
    }
    expect(logs.filter((l) => l.startsWith('request_logging: '))).toHaveLength(1);
    expect(logs.find((l) => l.startsWith('request_logging: '))).toContain('"role":"system","content":"Answer tersely."');
    expect(logs.filter((l) => l.startsWith('response_logging: '))).toHaveLength(1);
    expect(progress.sort()).toEqual([1, 2, 3, 4, 5].map((n) => `PATCH {"samples_processed":${n}}`));
    const records = readFileSync(join(cfg.config.output_dir, 'nemo-evaluator-per-sample-outputs', 'gsm8k.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { generation: string; reasoning: string; answer: string; ground_truth: string });
    for (const r of records) {
      expect(r.generation).toBe(r.ground_truth);
      expect(r.reasoning).toBe('<think>Let me see. The final answer is 0.');
    }
    const metrics = JSON.parse(readFileSync(join(cfg.config.output_dir, 'eval_factory_metrics.json'), 'utf8')) as {
      response_stats: Record<string, unknown>;
      reasoning: Record<string, number>;
    };
    expect(metrics.response_stats).toMatchObject({ responses_counted: N, finish_reason: { stop: N } });
    expect(metrics.reasoning).toMatchObject({ responses: N, responses_with_reasoning: N, reasoning_finished: N, reasoning_unfinished: 0 });

    // The same cached responses without the reasoning link: the thinking's number is scored, and every sample fails.
    const again = await runEvaluation({ runConfig: { ...cfg, target: { api_endpoint: { ...cfg.target.api_endpoint, adapter_config: { interceptors: interceptors.filter((i) => i !== 'reasoning') } } } }, env: {} });
    expect(again.results.samples).toMatchObject({ scored: N, cached: N });
    expect(again.results.results.tasks.gsm8k?.metrics.accuracy?.scores.accuracy?.value).toBe(0);
  });

  it('legacy flags: use_system_prompt + custom_system_prompt, params_to_add, use_reasoning', async () => {
    fixture = await startFixtureServer({ answer: reasoningModel });
    const { results } = await runEvaluation({
      runConfig: runConfig(fixture, { use_system_prompt: true, custom_system_prompt: 'Answer tersely.', params_to_add: { seed: 7 }, use_reasoning: true }),
      env: {},
    });
    expect(results.results.tasks.gsm8k?.metrics.accuracy?.scores.accuracy?.value).toBe(1);
  });

  it('raise_client_errors: a 400 from the endpoint ends the run, naming it', async () => {
    fixture = await startFixtureServer({ answer: reasoningModel, faults: [{ match: questions[2]?.question as string, fault: { kind: 'status', status: 400, times: 5 } }] });
    const run = runEvaluation({ runConfig: runConfig(fixture, { interceptors: ['endpoint', 'raise_client_errors'] }), env: {} });
    await expect(run).rejects.toThrow(/^the endpoint answered a client error \(raise_client_errors\): HTTP 400/);
    // Without it, the 400 is that sample's error.
    const counted = await runEvaluation({ runConfig: { ...runConfig(fixture, { interceptors: ['endpoint'] }), config: { ...runConfig(fixture, {}).config, params: { limit_samples: N, extra: { dataset_dir: DATASETS, max_error_rate: 0.5 } } } }, env: {} });
    expect(counted.results.samples).toMatchObject({ errors: 1 });
  });
});
