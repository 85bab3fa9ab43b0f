/**
 * Concurrency against the real fixture endpoint: `parallelism` is the hard cap; an endpoint that answers 429 when
 * over capacity makes the harness shrink, then recover (no sample lost); `execution.endpoint_parallelism` is one
 * limit for all tasks of an invocation on a worker, through the worker's socket.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { answerFromTable, startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import { runEvaluation } from '../../harness/engine.js';
import { ENDPOINT_LIMITS_ENV, EndpointLimitServer } from '../../harness/shared-limit.js';
import type { InvocationStatus } from '../../workflows/types.js';
import { cli, DATASETS, gsm8kHead, startedInvocationId, tempDir, writeConfig } from '../support/run-helpers.js';
import { startWorker, testClient, testTarget, type RunningWorker } from '../support/temporal.js';

const N = 60;
const questions = gsm8kHead(N);
const answers = answerFromTable(Object.fromEntries(questions.map(({ question, answer }) => [question, `The final answer is ${answer}`])));

function runConfig(fixture: FixtureServer, params: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    config: {
      type: 'gsm8k',
      output_dir: tempDir(),
      params: { limit_samples: N, max_retries: 10, ...params, extra: { dataset_dir: DATASETS, ...extra } },
    },
    target: { api_endpoint: { url: `${fixture.url}/v1/chat/completions`, model_id: 'fixture-model', type: 'chat' as const } },
  };
}

interface ConcurrencyStats {
  parallelism: number;
  lowest_limit: number;
  final_limit: number;
  overload_responses: number;
}
const concurrencyOf = (outputDir: string) =>
  (JSON.parse(readFileSync(join(outputDir, 'eval_factory_metrics.json'), 'utf8')) as { response_stats: { concurrency: ConcurrencyStats } }).response_stats.concurrency;

describe('harness concurrency against the fixture endpoint', () => {
  let fixture: FixtureServer | undefined;
  afterEach(async () => {
    await fixture?.close();
    fixture = undefined;
  });

  it('never has more than `parallelism` requests in flight', async () => {
    fixture = await startFixtureServer({ answer: answers, latencyMs: 20, capacity: 1000 });
    const { results } = await runEvaluation({ runConfig: runConfig(fixture, { parallelism: 5 }), env: {} });
    expect(results.samples).toMatchObject({ total: N, scored: N, errors: 0 });
    expect(fixture.capacityStats()).toEqual({ overloads: 0, peakInService: 5 });
  });

  it('shrinks on 429s from an endpoint over capacity, recovers, and loses no sample', async () => {
    fixture = await startFixtureServer({ answer: answers, latencyMs: 30, capacity: 4 });
    const logs: string[] = [];
    const cfg = runConfig(fixture, { parallelism: 16 });
    const { results } = await runEvaluation({ runConfig: cfg, env: {}, retryBaseDelayMs: 20, log: (l) => logs.push(l) });
    expect(results.samples).toMatchObject({ total: N, scored: N, errors: 0 });
    expect(results.results.tasks.gsm8k?.metrics.accuracy?.scores.accuracy?.value).toBe(1);
    const stats = concurrencyOf(cfg.config.output_dir);
    const { overloads } = fixture.capacityStats();
    expect(stats.overload_responses).toBe(overloads);
    expect(stats.parallelism).toBe(16);
    expect(stats.lowest_limit).toBeLessThanOrEqual(4);
    expect(fixture.totalRequests()).toBe(N + overloads);
    // Without adapting, each round of 16 would meet 12 refusals; adapted, refusals are a fraction of the samples.
    expect(overloads).toBeLessThan(N / 2);
    expect(logs.some((l) => /^endpoint overloaded \(429\/503\): at most \d+ requests at once now \(parallelism 16\)$/.test(l))).toBe(true);
    console.log(`capacity 4, parallelism 16, ${N} samples: ${overloads} 429s, lowest limit ${stats.lowest_limit}, final ${stats.final_limit}`);
  });

  it('two tasks share one endpoint limit through the socket; without the socket it caps each task', async () => {
    fixture = await startFixtureServer({ answer: answers, latencyMs: 20, capacity: 1000 });
    const server = await EndpointLimitServer.start(join(tempDir(), 'limits.sock'));
    try {
      const extra = { endpoint_parallelism: 4, endpoint_limit_group: 'inv-1' };
      const env = { [ENDPOINT_LIMITS_ENV]: server.socketPath };
      const runs = await Promise.all([1, 2].map(() => runEvaluation({ runConfig: runConfig(fixture as FixtureServer, { parallelism: 6 }, extra), env })));
      for (const { results } of runs) expect(results.samples).toMatchObject({ total: N, scored: N, errors: 0 });
      expect(fixture.capacityStats().peakInService).toBe(4);
    } finally {
      await server.close();
    }
    const cfg = runConfig(fixture, { parallelism: 6, limit_samples: 20 }, { endpoint_parallelism: 3 });
    const alone = await runEvaluation({ runConfig: cfg, env: {} });
    expect(alone.results.samples).toMatchObject({ scored: 20, errors: 0 });
    expect(concurrencyOf(cfg.config.output_dir).parallelism).toBe(3);
  });
});

describe('execution.endpoint_parallelism through evalflow run (worker socket, process runtime)', () => {
  let fixture: FixtureServer;
  let worker: RunningWorker;
  let client: Client;
  beforeAll(async () => {
    process.env.TEMPORAL_ADDRESS = testTarget().address;
    fixture = await startFixtureServer({ answer: answers, latencyMs: 20, capacity: 1000 });
    worker = await startWorker();
    client = await testClient();
  });
  afterAll(async () => {
    await worker?.stop();
    await fixture?.close();
    await client?.connection.close();
  });

  it('three parallel tasks with parallelism 4 each keep to 3 requests at once in all', async () => {
    const dir = tempDir();
    const task = `    - name: evalflow.gsm8k\n      dataset_dir: ${DATASETS}\n`;
    const config = writeConfig(
      dir,
      `
execution:
  output_dir: ${dir}/results
  runtime: process
  mode: parallel
  endpoint_parallelism: 3
target:
  api_endpoint:
    url: ${fixture.url}/v1/chat/completions
    model_id: fixture-model
    type: chat
evaluation:
  nemo_evaluator_config:
    config:
      params: {parallelism: 4, limit_samples: 40}
  tasks:
${task}${task}${task}`,
    );
    const res = await cli('run', '-c', config, '--wait');
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const status = await client.workflow.getHandle(`evalflow-${startedInvocationId(res.stdout)}`).query<InvocationStatus>('status');
    expect(status.tasks.map((t) => t.stage)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(fixture.totalRequests()).toBe(120);
    expect(fixture.capacityStats().peakInService).toBeLessThanOrEqual(3);
  });
});
