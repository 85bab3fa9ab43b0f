/**
 * Endpoint outages pause the run instead of burning it, with real processes: the built harness (`run_eval` as the
 * process backend starts it) against the fixture endpoint, which goes down (connections refused, open ones
 * dropped) in the middle of the run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { PROBE_PROMPT } from '../../harness/client.js';
import { readResultsFile } from '../../harness/results-schema.js';
import { parseStageExit, parseStageFailure } from '../../core/harness-contract.js';
import { answerFromTable, startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import { DATASETS, gsm8kHead, runHarnessProcess, tempDir } from '../support/run-helpers.js';

const N = 200;
const questions = gsm8kHead(N);
// Every third answer is wrong, so the accuracy compared below is not trivially 1.
const table = Object.fromEntries(questions.map(({ question, answer }, i) => [question, `The final answer is ${i % 3 === 0 ? Number(answer) + 1 : answer}`]));

const fixtures: FixtureServer[] = [];
afterEach(async () => {
  await Promise.all(fixtures.splice(0).map((f) => f.close()));
});

async function fixture(): Promise<FixtureServer> {
  const f = await startFixtureServer({ answer: answerFromTable(table), latencyMs: 20 });
  fixtures.push(f);
  return f;
}

/** A job directory with its run config, as the process backend lays it out; returns the run_eval arguments. */
function job(f: FixtureServer, extra: Record<string, unknown> = {}) {
  const dir = tempDir('evalflow-outage-');
  const artifacts = join(dir, 'artifacts');
  const configFile = join(dir, 'config_ef.yaml');
  writeFileSync(
    configFile,
    stringify({
      config: {
        type: 'gsm8k',
        output_dir: artifacts,
        params: { limit_samples: N, parallelism: 8, max_retries: 2, request_timeout: 5, extra: { dataset_dir: DATASETS, ...extra } },
      },
      target: { api_endpoint: { url: `${f.url}/v1/chat/completions`, model_id: 'fixture-model', type: 'chat' } },
    }),
  );
  return { artifacts, logs: join(dir, 'logs'), args: ['--run_config', configFile, '--stage_dir', join(dir, 'logs')] };
}

/** Completions answered with 200 per sample prompt (the outage probes left out). */
function answeredPerPrompt(f: FixtureServer): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of f.requests) {
    if (r.prompt.includes(PROBE_PROMPT) || !r.answered || r.status !== 200) continue;
    counts.set(r.prompt, (counts.get(r.prompt) ?? 0) + 1);
  }
  return counts;
}

describe('harness: an endpoint outage pauses the run', () => {
  it('the endpoint down for 30 s at ~50 % of the samples: 0 errors, the same scores, no answered sample requested again', async () => {
    // Undisturbed reference run.
    const calm = await fixture();
    const reference = job(calm);
    const first = await runHarnessProcess(reference.args);
    expect(first.code, first.output).toBe(0);
    const expected = readResultsFile(join(reference.artifacts, 'results.yml'));

    const f = await fixture();
    const disturbed = job(f);
    const running = runHarnessProcess(disturbed.args);
    await f.waitForRequests(N / 2);
    const downAt = Date.now();
    const back = f.goDown(30_000);
    const result = await running;
    await back;
    expect(result.code, result.output).toBe(0);
    expect(Date.now() - downAt).toBeGreaterThanOrEqual(30_000);

    const results = readResultsFile(join(disturbed.artifacts, 'results.yml'));
    expect(results.samples).toEqual({ total: N, scored: N, errors: 0, cached: 0 });
    expect(results.results).toEqual(expected.results);
    expect(results.results.tasks.gsm8k?.metrics.accuracy?.scores.accuracy?.value).toBeCloseTo(2 / 3, 2);

    // Every sample answered exactly once: what had an answer before the outage was not requested again.
    const answered = answeredPerPrompt(f);
    expect(answered.size).toBe(N);
    expect([...answered.values()].filter((n) => n !== 1)).toEqual([]);
    const unanswered = f.requests.filter((r) => !r.answered && !r.prompt.includes(PROBE_PROMPT)).length;

    const metrics = JSON.parse(readFileSync(join(disturbed.artifacts, 'eval_factory_metrics.json'), 'utf8')) as {
      response_stats: { endpoint_outages: number; endpoint_outage_seconds: number; requests_sent: number };
    };
    expect(metrics.response_stats.endpoint_outages).toBe(1);
    expect(metrics.response_stats.endpoint_outage_seconds).toBeGreaterThan(20);
    expect(metrics.response_stats.requests_sent).toBe(N);
    expect(result.output).toMatch(/is not answering \(ECONNREFUSED/);
    expect(result.output).toMatch(/answers again after [\d.]+ s; resuming/);
    console.log(
      `outage test: ${f.totalRequests()} completion requests for ${N} samples (${unanswered} dropped by the outage, ` +
        `${f.requests.filter((r) => r.prompt.includes(PROBE_PROMPT)).length} probes), down ${metrics.response_stats.endpoint_outage_seconds.toFixed(1)} s as seen by the harness`,
    );
  });

  it('an outage longer than endpoint_outage_timeout fails with exit 4, the URL and the last error in stage.exit', async () => {
    const f = await fixture();
    const { args, logs, artifacts } = job(f, { endpoint_outage_timeout: 3 });
    const running = runHarnessProcess(args);
    await f.waitForRequests(N / 2);
    void f.goDown(120_000).catch(() => undefined); // closed by afterEach long before
    const started = Date.now();
    const result = await running;
    expect(result.code, result.output).toBe(4);
    expect(Date.now() - started).toBeLessThan(30_000);

    const stageExit = readFileSync(join(logs, 'stage.exit'), 'utf8');
    expect(parseStageExit(stageExit)).toBe(4);
    const failure = parseStageFailure(stageExit);
    expect(failure?.reason).toBe('endpoint_unavailable');
    expect(failure?.message).toMatch(
      new RegExp(`^endpoint ${f.url}/v1/chat/completions did not answer for [\\d.]+ s \\(limit 3 s, config\\.params\\.extra\\.endpoint_outage_timeout\\); last error: ECONNREFUSED`),
    );
    // What was answered before the outage is cached for a resume.
    const cachedLines = readFileSync(join(artifacts, 'cache', 'responses.jsonl'), 'utf8').trim().split('\n');
    expect(cachedLines.length).toBeGreaterThanOrEqual(N / 2 - 8);
  });
});
