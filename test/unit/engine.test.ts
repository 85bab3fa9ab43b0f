import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { HarnessConfigError, InterruptedError, limitSamples, MAX_SCORED_CHARS, parseRunConfig, runEvaluation, runPool, scoredText } from '../../harness/engine.js';
import type { HarnessRunConfig } from '../../harness/run-config.js';
import { BUILTIN_TASKS, gsm8k } from '../../harness/tasks/index.js';
import { DATASETS } from '../support/run-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'evalflow-engine-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let runs = 0;
const outDir = () => join(root, `out-${runs++}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A small gsm8k dataset directory: `<dir>/gsm8k/test.jsonl`. */
function gsm8kDataset(answers: number[]): string {
  const dir = join(root, `data-${runs++}`);
  mkdirSync(join(dir, 'gsm8k'), { recursive: true });
  const rows = answers.map((a, i) => JSON.stringify({ question: `What is ${i} + ${a - i}?`, answer: `${i} + ${a - i} = ${a}\n#### ${a}` }));
  writeFileSync(join(dir, 'gsm8k', 'test.jsonl'), `${rows.join('\n')}\n`);
  return dir;
}

function runConfig(over: { type?: string; params?: Record<string, unknown>; endpoint?: Record<string, unknown>; outputDir?: string } = {}): HarnessRunConfig {
  return {
    config: { type: over.type ?? 'evalflow.gsm8k', output_dir: over.outputDir ?? outDir(), params: { ...(over.params ?? {}) } },
    target: { api_endpoint: { url: 'http://127.0.0.1:9/v1/chat/completions', model_id: 'm', ...(over.endpoint ?? {}) } },
  } as HarnessRunConfig;
}

async function configError(p: Promise<unknown>): Promise<HarnessConfigError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(HarnessConfigError);
    return err as HarnessConfigError;
  }
  throw new Error('expected a HarnessConfigError');
}

describe('scoredText', () => {
  it('scores at most the last MAX_SCORED_CHARS characters of a generation (where final answers are)', () => {
    expect(scoredText('The answer is 5.')).toBe('The answer is 5.');
    const long = `${'x'.repeat(MAX_SCORED_CHARS * 3)}The answer is 5.`;
    expect(scoredText(long)).toHaveLength(MAX_SCORED_CHARS);
    expect(scoredText(long).endsWith('The answer is 5.')).toBe(true);
  });
});

describe('limitSamples', () => {
  const ten = Array.from({ length: 10 }, (_, i) => i);

  it('returns everything for null/undefined', () => {
    expect(limitSamples(ten, null)).toEqual(ten);
    expect(limitSamples(ten, undefined)).toEqual(ten);
  });

  it('takes a prefix of an integer count, capped at the dataset size', () => {
    expect(limitSamples(ten, 3)).toEqual([0, 1, 2]);
    expect(limitSamples(ten, 1)).toEqual([0]);
    expect(limitSamples(ten, 10)).toEqual(ten);
    expect(limitSamples(ten, 25)).toEqual(ten);
  });

  it('floors a non-integer count of 1 or more', () => {
    expect(limitSamples(ten, 2.9)).toEqual([0, 1]);
  });

  it('treats values below 1 as a fraction, rounding up', () => {
    expect(limitSamples(ten, 0.5)).toEqual([0, 1, 2, 3, 4]);
    expect(limitSamples(ten, 0.25)).toEqual([0, 1, 2]); // 2.5 → 3
    expect(limitSamples(ten, 0.01)).toEqual([0]); // 0.1 → 1: a tiny fraction still runs one sample
    expect(limitSamples(Array.from({ length: 3 }, (_, i) => i), 0.34)).toEqual([0, 1]); // 1.02 → 2
    expect(limitSamples([], 0.5)).toEqual([]);
  });
});

describe('runPool', () => {
  it('runs every index exactly once and never exceeds the concurrency bound', async () => {
    const calls: number[] = [];
    let inFlight = 0;
    let peak = 0;
    await runPool(40, 4, async (i) => {
      calls.push(i);
      inFlight++;
      peak = Math.max(peak, inFlight);
      await sleep((i * 7) % 5);
      inFlight--;
    });
    expect([...calls].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(peak).toBe(4);
    expect(inFlight).toBe(0);
  });

  it('starts indices in order and uses min(concurrency, n) workers', async () => {
    const calls: number[] = [];
    let inFlight = 0;
    let peak = 0;
    await runPool(3, 16, async (i) => {
      calls.push(i);
      peak = Math.max(peak, ++inFlight);
      await sleep(5);
      inFlight--;
    });
    expect(calls).toEqual([0, 1, 2]);
    expect(peak).toBe(3);
  });

  it('does nothing for n = 0', async () => {
    let called = false;
    await runPool(0, 4, async () => {
      called = true;
    });
    expect(called).toBe(false);
  });

  it('stops starting new work at the first error and rethrows it (sequential)', async () => {
    const calls: number[] = [];
    await expect(
      runPool(10, 1, async (i) => {
        calls.push(i);
        if (i === 2) throw new Error('sample 2 broke');
      }),
    ).rejects.toThrow('sample 2 broke');
    expect(calls).toEqual([0, 1, 2]);
  });

  it('stops starting new work at the first error with concurrency: only in-flight work finishes', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    const boom = new Error('boom at 5');
    await expect(
      runPool(100, 3, async (i) => {
        started.push(i);
        await sleep(10);
        if (i === 5) throw boom;
        finished.push(i);
      }),
    ).rejects.toBe(boom);
    // Index 5 starts in the second wave; at most the two other in-flight indices (and none after them) start.
    expect(started.length).toBeLessThanOrEqual(8);
    expect(Math.max(...started)).toBeLessThanOrEqual(7);
    expect(new Set(started).size).toBe(started.length);
    await sleep(50);
    expect(started.length).toBeLessThanOrEqual(8); // nothing started after the rejection either
  });

  it('throws InterruptedError when the signal is already aborted, before running anything', async () => {
    const controller = new AbortController();
    controller.abort();
    let called = 0;
    await expect(
      runPool(5, 2, async () => {
        called++;
      }, controller.signal),
    ).rejects.toBeInstanceOf(InterruptedError);
    expect(called).toBe(0);
  });

  it('stops picking up new indices once the signal aborts mid-run', async () => {
    const controller = new AbortController();
    const calls: number[] = [];
    await expect(
      runPool(
        50,
        2,
        async (i) => {
          calls.push(i);
          if (i === 3) controller.abort();
          await sleep(2);
        },
        controller.signal,
      ),
    ).rejects.toBeInstanceOf(InterruptedError);
    expect(calls.length).toBeLessThanOrEqual(5);
  });
});

describe('parseRunConfig', () => {
  const valid = () => ({
    config: { type: 'gsm8k', output_dir: '/tmp/o', params: { limit_samples: 5 } },
    target: { api_endpoint: { url: 'http://h:8000/v1/chat/completions', model_id: 'm' } },
  });

  it('accepts a valid config and fills defaults', () => {
    const cfg = parseRunConfig({ config: { type: 'gsm8k', output_dir: '/o' }, target: valid().target });
    expect(cfg.config.params).toEqual({});
    expect(parseRunConfig(valid()).config.params.limit_samples).toBe(5);
  });

  it('names the key path of a bad value', () => {
    const bad = valid();
    (bad.config.params as Record<string, unknown>).parallelism = 0;
    expect(() => parseRunConfig(bad)).toThrow(HarnessConfigError);
    expect(() => parseRunConfig(bad)).toThrow(/^run config config\.params\.parallelism: /);
  });

  it('names the path of a bad URL, a bad api_key_name and an unknown endpoint type', () => {
    const url = valid();
    url.target.api_endpoint.url = 'ftp://x/y';
    expect(() => parseRunConfig(url)).toThrow(/^run config target\.api_endpoint\.url: /);
    const key = valid();
    (key.target.api_endpoint as Record<string, unknown>).api_key_name = 'not a name';
    expect(() => parseRunConfig(key)).toThrow('run config target.api_endpoint.api_key_name: must be an environment variable name');
    const type = valid();
    (type.target.api_endpoint as Record<string, unknown>).type = 'embeddings';
    expect(() => parseRunConfig(type)).toThrow(/^run config target\.api_endpoint\.type: /);
  });

  it('rejects unknown keys (typos) naming the containing object', () => {
    const typo = valid();
    (typo.config.params as Record<string, unknown>).paralelism = 4;
    expect(() => parseRunConfig(typo)).toThrow(/^run config config\.params: .*paralelism/);
  });

  it('names a missing required key, and (root) for a non-object', () => {
    expect(() => parseRunConfig({ config: { type: 'gsm8k' }, target: valid().target })).toThrow(/^run config config\.output_dir: /);
    expect(() => parseRunConfig('nope')).toThrow(/^run config \(root\): /);
  });
});

describe('runEvaluation: HarnessConfigError before anything is sent', () => {
  it('rejects an unknown task, listing the built-in ones', async () => {
    const err = await configError(runEvaluation({ runConfig: runConfig({ type: 'evalflow.gsm9k' }), env: {} }));
    expect(err.message).toMatch(/^config\.type: unknown built-in task "evalflow\.gsm9k"/);
    expect(err.message).toContain('evalflow.gsm8k');
  });

  it('rejects an endpoint type outside the schema, naming target.api_endpoint.type', async () => {
    const err = await configError(runEvaluation({ runConfig: runConfig({ endpoint: { type: 'embedding' } }), env: {} }));
    expect(err.message).toMatch(/^run config target\.api_endpoint\.type: /);
  });

  it("rejects an endpoint type the task does not support, naming the task's types", async () => {
    BUILTIN_TASKS.chatonly = { ...gsm8k, name: 'chatonly', supportedEndpointTypes: ['chat'] };
    try {
      const output = outDir();
      const err = await configError(
        runEvaluation({ runConfig: runConfig({ type: 'evalflow.chatonly', endpoint: { type: 'completions' }, outputDir: output }), env: {} }),
      );
      expect(err.message).toBe('target.api_endpoint.type: task chatonly supports chat, not completions');
      expect(existsSync(output)).toBe(false);
    } finally {
      delete BUILTIN_TASKS.chatonly;
    }
  });

  it('requires a dataset directory (config or NEMO_EVALUATOR_DATASET_DIR)', async () => {
    const err = await configError(runEvaluation({ runConfig: runConfig(), env: {} }));
    expect(err.message).toBe('no dataset directory: set config.params.extra.dataset_dir or NEMO_EVALUATOR_DATASET_DIR');
  });

  it('reports a dataset directory that does not exist', async () => {
    const missing = join(root, 'no-such-dataset');
    const err = await configError(runEvaluation({ runConfig: runConfig({ params: { extra: { dataset_dir: missing } } }), env: {} }));
    expect(err.message).toMatch(new RegExp(`^loading gsm8k samples from ${missing}: `));
  });

  it('reads NEMO_EVALUATOR_DATASET_DIR from the given env when the config has none', async () => {
    const missing = join(root, 'env-dataset');
    const err = await configError(runEvaluation({ runConfig: runConfig(), env: { NEMO_EVALUATOR_DATASET_DIR: missing } }));
    expect(err.message).toMatch(new RegExp(`^loading gsm8k samples from ${missing}: `));
  });

  it('requires the env var named by api_key_name, without creating the output dir', async () => {
    const output = outDir();
    const err = await configError(
      runEvaluation({
        runConfig: runConfig({ outputDir: output, endpoint: { api_key_name: 'MY_API_KEY' }, params: { extra: { dataset_dir: gsm8kDataset([1]) } } }),
        env: {},
      }),
    );
    expect(err.message).toBe('target.api_endpoint.api_key_name names MY_API_KEY, but that environment variable is not set');
    expect(existsSync(output)).toBe(false);
  });

  it('treats an empty API key value as not set', async () => {
    const err = await configError(
      runEvaluation({
        runConfig: runConfig({ endpoint: { api_key_name: 'MY_API_KEY' }, params: { extra: { dataset_dir: gsm8kDataset([1]) } } }),
        env: { MY_API_KEY: '' },
      }),
    );
    expect(err.message).toContain('MY_API_KEY');
  });

  it('rejects a bad max_error_rate, naming config.params.extra.max_error_rate', async () => {
    for (const bad of [1.5, -0.1, 'half']) {
      const err = await configError(runEvaluation({ runConfig: runConfig({ params: { extra: { dataset_dir: '/d', max_error_rate: bad } } }), env: {} }));
      expect(err.message).toMatch(/^config\.params\.extra\.max_error_rate: /);
    }
  });

  it('rejects an invalid run config with the key path (parseRunConfig)', async () => {
    const err = await configError(runEvaluation({ runConfig: runConfig({ params: { max_retries: -1 } }), env: {} }));
    expect(err.message).toMatch(/^run config config\.params\.max_retries: /);
  });
});

describe('runEvaluation against a local endpoint', () => {
  const servers: http.Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  async function endpoint(
    answer: (body: { messages: Array<{ content: string }> }) => { status: number; text: string },
  ): Promise<{ url: string; count: () => number; auth: () => Array<string | undefined> }> {
    let count = 0;
    const auth: Array<string | undefined> = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        count++;
        auth.push(req.headers.authorization);
        const { status, text } = answer(JSON.parse(Buffer.concat(chunks).toString('utf8')) as { messages: Array<{ content: string }> });
        const body = status === 200 ? JSON.stringify({ choices: [{ message: { content: text }, finish_reason: 'stop' }], usage: { prompt_tokens: 10, completion_tokens: 3 } }) : text;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(body);
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}/v1/chat/completions`, count: () => count, auth: () => auth };
  }

  it('scores, writes the upstream files, uses the API key, and serves a rerun from the cache', async () => {
    const ep = await endpoint(() => ({ status: 200, text: 'The final answer is 42.' }));
    const dataset = gsm8kDataset([42, 7, 42, 9]);
    const output = outDir();
    const cfg = runConfig({ outputDir: output, endpoint: { url: ep.url, api_key_name: 'K' }, params: { parallelism: 2, extra: { dataset_dir: dataset } } });
    const first = await runEvaluation({ runConfig: cfg, env: { K: 'sk-abc' } });
    expect(first.errorThresholdExceeded).toBe(false);
    expect(first.results.samples).toEqual({ total: 4, scored: 4, errors: 0, cached: 0 });
    expect(ep.count()).toBe(4);
    expect(new Set(ep.auth())).toEqual(new Set(['Bearer sk-abc']));
    for (const f of ['results.yml', 'run_config.yml', 'eval_factory_metrics.json', 'metadata.yaml', 'progress', 'progress.json']) {
      expect(existsSync(join(output, f)), f).toBe(true);
    }
    expect(readFileSync(join(output, 'progress'), 'utf8')).toBe('4\n');
    const written = parse(readFileSync(join(output, 'run_config.yml'), 'utf8')) as { config: { type: string }; target: { api_endpoint: Record<string, unknown> } };
    expect(written.config.type).toBe('gsm8k');
    expect(written.target.api_endpoint.api_key_name).toBe('K');
    // The key itself is never written anywhere in the output dir's text files.
    for (const f of ['results.yml', 'run_config.yml', 'metadata.yaml', 'eval_factory_metrics.json']) {
      expect(readFileSync(join(output, f), 'utf8')).not.toContain('sk-abc');
    }

    const second = await runEvaluation({ runConfig: cfg, env: { K: 'sk-abc' } });
    expect(ep.count()).toBe(4); // nothing new sent
    expect(second.results.samples).toEqual({ total: 4, scored: 4, errors: 0, cached: 4 });
    expect(second.results.results).toEqual(first.results.results);
    const metrics = JSON.parse(readFileSync(join(output, 'eval_factory_metrics.json'), 'utf8')) as { evaluation: { attempts: number }; response_stats: { requests_sent: number } };
    expect(metrics.evaluation.attempts).toBe(2);
    expect(metrics.response_stats.requests_sent).toBe(4);
  });

  it('counts failed samples and flags the run when they exceed max_error_rate', async () => {
    const ep = await endpoint(() => ({ status: 400, text: 'bad request' }));
    const dataset = gsm8kDataset([1, 2, 3]);
    const cfg = runConfig({ endpoint: { url: ep.url }, params: { limit_samples: 2, extra: { dataset_dir: dataset, max_error_rate: 0.5 } } });
    const outcome = await runEvaluation({ runConfig: cfg, env: {} });
    expect(ep.count()).toBe(2);
    expect(outcome.results.samples).toEqual({ total: 2, scored: 0, errors: 2, cached: 0 });
    expect(outcome.errorThresholdExceeded).toBe(true);
    expect(outcome.errorMessage).toMatch(/^2 of 2 samples failed after retries \(max_error_rate 0\.5 allows 1\)/);
  });

  it('requests n_samples generations per sample, scores them in the sandbox off the request path, reports pass@k', async () => {
    const humanevalSamples = await BUILTIN_TASKS.humaneval?.loadSamples({ datasetDir: DATASETS, extra: {} });
    const [first, second] = (humanevalSamples ?? []) as Array<{ id: string; groundTruth: string; data: { prompt: string; entryPoint: string } }>;
    if (!first || !second) throw new Error('no humaneval samples');
    const fullFunction = (s: typeof first, body: string) => `\`\`\`python\n${s.data.prompt.slice(s.data.prompt.indexOf(`def ${s.data.entryPoint}(`))}${body}\`\`\``;
    // Per problem, the k-th request gets answer k: HumanEval/0 right, wrong, right (c = 2 of 3); HumanEval/1 always wrong.
    const seen = new Map<string, number>();
    const ep = await endpoint((body) => {
      const prompt = body.messages.at(-1)?.content ?? '';
      const s = prompt.includes(`def ${first.data.entryPoint}(`) ? first : second;
      const k = seen.get(s.id) ?? 0;
      seen.set(s.id, k + 1);
      const right = s === first && k !== 1;
      return { status: 200, text: fullFunction(s, right ? s.groundTruth : '    return None\n') };
    });
    const output = outDir();
    const cfg = runConfig({
      type: 'evalflow.humaneval',
      outputDir: output,
      endpoint: { url: ep.url, type: 'chat' },
      params: { parallelism: 3, limit_samples: 2, extra: { dataset_dir: DATASETS, n_samples: 3, k: [1, 3, 10], timeout: 20 } },
    });
    const run = await runEvaluation({ runConfig: cfg, env: {} });
    expect(ep.count()).toBe(6);
    expect(run.results.samples).toEqual({ total: 2, scored: 2, errors: 0, cached: 0 });
    const metrics = run.results.results.tasks.humaneval?.metrics;
    expect(Object.keys(metrics ?? {})).toEqual(['pass@1', 'pass@3']);
    expect(metrics?.['pass@1']?.scores['pass@1']?.value).toBeCloseTo((2 / 3 + 0) / 2, 12);
    expect(metrics?.['pass@3']?.scores['pass@3']?.value).toBe(0.5);
    const records = readFileSync(join(output, 'nemo-evaluator-per-sample-outputs', 'humaneval.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; score: number; score_name: string; generations: Array<{ score: number; cached: boolean }> });
    expect(records.map((r) => [r.id, r.score_name, r.generations.map((g) => g.score).sort()])).toEqual([
      ['HumanEval/0', 'pass@1', [0, 1, 1]],
      ['HumanEval/1', 'pass@1', [0, 0, 0]],
    ]);
    expect(records[0]?.score).toBeCloseTo(2 / 3, 12);

    // Every generation has its own cache entry: a rerun sends nothing and scores the same.
    const again = await runEvaluation({ runConfig: cfg, env: {} });
    expect(ep.count()).toBe(6);
    expect(again.results.samples).toEqual({ total: 2, scored: 2, errors: 0, cached: 2 });
    expect(again.results.results).toEqual(run.results.results);
  }, 120_000);
});
