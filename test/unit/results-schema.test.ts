import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  flattenMetrics,
  parseResultsFile,
  RESULTS_FORMAT_VERSION,
  ResultsFormatError,
  type ResultsFile,
} from '../../harness/results-schema.js';
import { scoreStats } from '../../harness/stats.js';

describe('scoreStats', () => {
  it('computes exact values for [1, 0, 1, 1] (sample variance, stderr of the mean)', () => {
    const s = scoreStats([1, 0, 1, 1]);
    expect(s.count).toBe(4);
    expect(s.sum).toBe(3);
    expect(s.sum_squared).toBe(3);
    expect(s.min).toBe(0);
    expect(s.max).toBe(1);
    expect(s.mean).toBe(0.75);
    // Σ(x-mean)² = 3·0.0625 + 0.5625 = 0.75; / (n-1) = 0.25
    expect(s.variance).toBeCloseTo(0.25, 15);
    expect(s.stddev).toBeCloseTo(0.5, 15);
    expect(s.stderr).toBeCloseTo(0.25, 15); // 0.5 / √4
  });

  it('returns all zeros for no values (no NaN, no Infinity)', () => {
    expect(scoreStats([])).toEqual({ count: 0, sum: 0, sum_squared: 0, min: 0, max: 0, mean: 0, variance: 0, stddev: 0, stderr: 0 });
  });

  it('has zero spread for a single value', () => {
    expect(scoreStats([0.7])).toEqual({ count: 1, sum: 0.7, sum_squared: 0.7 * 0.7, min: 0.7, max: 0.7, mean: 0.7, variance: 0, stddev: 0, stderr: 0 });
  });

  it('never reports a negative variance from rounding on identical values', () => {
    const s = scoreStats([0.1, 0.1, 0.1]);
    expect(s.variance).toBeGreaterThanOrEqual(0);
    expect(s.variance).toBeCloseTo(0, 15);
    expect(Number.isNaN(s.stddev)).toBe(false);
  });

  it('handles negative and fractional values', () => {
    const s = scoreStats([-1, 2, 5]);
    expect([s.min, s.max, s.mean, s.sum, s.sum_squared]).toEqual([-1, 5, 2, 6, 30]);
    expect(s.variance).toBeCloseTo(9, 12); // (9 + 0 + 9) / 2
    expect(s.stderr).toBeCloseTo(Math.sqrt(3), 12); // 3 / √3
  });
});

function validDoc(): Record<string, unknown> {
  return {
    evalflow_results_version: 1,
    command: 'run_eval --run_config x.yml',
    config: { type: 'gsm8k', output_dir: '/o' },
    target: { api_endpoint: { url: 'http://h/v1/chat/completions', model_id: 'm' } },
    results: {
      tasks: {
        gsm8k: {
          metrics: {
            exact_match: { scores: { exact_match: { value: 0.75, stats: { count: 4, mean: 0.75, stderr: 0.25 } } } },
          },
        },
      },
      groups: { mmlu: { metrics: { acc: { scores: { acc: { value: 0.5 } } } }, groups: { stem: { metrics: { acc: { scores: { acc: { value: 0.4 } } } } } } } },
    },
    samples: { total: 4, scored: 4, errors: 0, cached: 1 },
    metadata: { versioning: { evalflow: '0.1.0' } },
  };
}

function formatError(fn: () => unknown): ResultsFormatError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ResultsFormatError);
    return err as ResultsFormatError;
  }
  throw new Error('expected a ResultsFormatError');
}

describe('parseResultsFile', () => {
  it('accepts a valid document and returns its data', () => {
    const doc = parseResultsFile(validDoc());
    expect(doc.evalflow_results_version).toBe(RESULTS_FORMAT_VERSION);
    expect(doc.results.tasks.gsm8k?.metrics.exact_match?.scores.exact_match?.value).toBe(0.75);
    expect(doc.results.groups?.mmlu?.groups?.stem?.metrics.acc?.scores.acc?.value).toBe(0.4);
    expect(doc.samples).toEqual({ total: 4, scored: 4, errors: 0, cached: 1 });
  });

  it('accepts a minimal document (optional fields absent)', () => {
    const { command: _c, metadata: _m, ...rest } = validDoc();
    const doc = parseResultsFile({ ...rest, results: { tasks: {} } });
    expect(doc.results.groups).toBeUndefined();
    expect(doc.command).toBeUndefined();
  });

  it('rejects a newer evalflow_results_version with an upgrade message', () => {
    const err = formatError(() => parseResultsFile({ ...validDoc(), evalflow_results_version: RESULTS_FORMAT_VERSION + 1 }, '/runs/a/results.yml'));
    expect(err.message).toBe(
      `/runs/a/results.yml: results format version ${RESULTS_FORMAT_VERSION + 1} is newer than this evalflow understands (${RESULTS_FORMAT_VERSION}); upgrade evalflow`,
    );
  });

  it('names the path of an invalid field', () => {
    const doc = validDoc();
    (doc.results as { tasks: Record<string, unknown> }).tasks.gsm8k = { metrics: { exact_match: { scores: { exact_match: { value: 'high' } } } } };
    const err = formatError(() => parseResultsFile(doc, 'r.yml'));
    expect(err.message).toMatch(/^r\.yml: invalid at results\.tasks\.gsm8k\.metrics\.exact_match\.scores\.exact_match\.value: /);
  });

  it('names the path inside nested groups and sample counts', () => {
    const groups = validDoc();
    (groups.results as { groups: { mmlu: { groups: { stem: unknown } } } }).groups.mmlu.groups.stem = { metrics: { acc: {} } };
    expect(formatError(() => parseResultsFile(groups)).message).toMatch(/^results\.yml: invalid at results\.groups\.mmlu\.groups\.stem\.metrics\.acc\.scores: /);
    const samples = validDoc();
    samples.samples = { total: 4, scored: 4, errors: -1, cached: 0 };
    expect(formatError(() => parseResultsFile(samples)).message).toMatch(/invalid at samples\.errors: /);
  });

  it('names a non-integer version, and evalflow results without their sample counts', () => {
    expect(formatError(() => parseResultsFile({ ...validDoc(), evalflow_results_version: 1.5 })).message).toMatch(/invalid at evalflow_results_version: /);
    const { samples: _s, ...noSamples } = validDoc();
    expect(formatError(() => parseResultsFile(noSamples)).message).toBe('results.yml: invalid at samples: required in evalflow results (evalflow_results_version is set)');
  });

  it("reads upstream's results.yml (no version, no sample counts) and flattens its metrics as upstream's exporters do", () => {
    // The shape nemo-evaluator's harness containers write (simple_evals and lm-evaluation-harness style).
    const upstream = parse(`
command: 'simple_evals --model meta/llama-3.1-8b-instruct --eval_name mmlu_pro'
config:
  output_dir: /results
  params: {limit_samples: 10, parallelism: 8, temperature: 0.0}
  type: mmlu_pro
git_hash: null
results:
  groups:
    mmlu_pro:
      metrics:
        score:
          scores:
            micro: {stats: {stderr: 0.1507, count: 10, mean: 0.6, sum: 6, sum_squared: 6, min: 0, max: 1, variance: 0.24, stddev: 0.49}, value: 0.6}
  tasks:
    mmlu_pro:
      metrics:
        score:
          scores:
            micro: {stats: {stderr: 0.1507, count: 10, mean: 0.6}, value: 0.6}
target:
  api_endpoint: {model_id: meta/llama-3.1-8b-instruct, type: chat, url: 'http://127.0.0.1:8000/v1/chat/completions', api_key_name: null}
`);
    const doc = parseResultsFile(upstream);
    expect(doc.evalflow_results_version).toBeUndefined();
    expect(doc.samples).toBeUndefined();
    expect(flattenMetrics(doc.results, { groups: false })).toEqual({ mmlu_pro_score_micro: 0.6 });
    expect(formatError(() => parseResultsFile({ ...upstream, results: {} })).message).toMatch(/invalid at results\.tasks: /);
  });

  it('reports (root) for a document that is not a mapping', () => {
    expect(formatError(() => parseResultsFile(null)).message).toMatch(/^results\.yml: invalid at \(root\): /);
    expect(formatError(() => parseResultsFile('text')).message).toMatch(/^results\.yml: invalid at \(root\): /);
  });
});

describe('flattenMetrics', () => {
  const score = (value: number) => ({ value });

  it('names task_metric when the score equals the metric, task_metric_score otherwise', () => {
    const flat = flattenMetrics({
      tasks: {
        gsm8k: { metrics: { exact_match: { scores: { exact_match: score(0.5), strict: score(0.4) } } } },
        mmlu: { metrics: { acc: { scores: { acc: score(0.6), acc_norm: score(0.61) } } } },
      },
    });
    expect(flat).toEqual({ gsm8k_exact_match: 0.5, gsm8k_exact_match_strict: 0.4, mmlu_acc: 0.6, mmlu_acc_acc_norm: 0.61 });
  });

  it('flattens groups under their own names and nested groups as group_sub', () => {
    const flat = flattenMetrics({
      tasks: { mmlu: { metrics: { acc: { scores: { acc: score(0.5) } } } } },
      groups: {
        mmlu_groups: {
          metrics: { acc: { scores: { acc: score(0.5) } } },
          groups: {
            stem: {
              metrics: { acc: { scores: { acc: score(0.3), stderr: score(0.01) } } },
              groups: { physics: { metrics: { acc: { scores: { acc: score(0.2) } } } } },
            },
            humanities: { metrics: { acc: { scores: { acc: score(0.7) } } } },
          },
        },
      },
    });
    expect(flat).toEqual({
      mmlu_acc: 0.5,
      mmlu_groups_acc: 0.5,
      mmlu_groups_stem_acc: 0.3,
      mmlu_groups_stem_acc_stderr: 0.01,
      mmlu_groups_stem_physics_acc: 0.2,
      mmlu_groups_humanities_acc: 0.7,
    });
  });

  it('allows a task and its group of the same name when the values agree', () => {
    // The engine writes results.tasks.<task> and results.groups.<task> with the same top-level metrics.
    const flat = flattenMetrics({
      tasks: { mmlu: { metrics: { acc: { scores: { acc: score(0.5) } } } } },
      groups: { mmlu: { metrics: { acc: { scores: { acc: score(0.5) } } }, groups: { stem: { metrics: { acc: { scores: { acc: score(0.4) } } } } } } },
    });
    expect(flat).toEqual({ mmlu_acc: 0.5, mmlu_stem_acc: 0.4 });
  });

  it('throws on a key collision with different values', () => {
    // task "a" metric "b_c" vs task "a_b" metric "c": both flatten to a_b_c.
    const err = formatError(() =>
      flattenMetrics({
        tasks: {
          a: { metrics: { b_c: { scores: { b_c: score(1) } } } },
          a_b: { metrics: { c: { scores: { c: score(0) } } } },
        },
      }),
    );
    expect(err.message).toBe('metric key collision: a_b_c');
  });

  it('throws on a collision between a group and a task', () => {
    expect(() =>
      flattenMetrics({
        tasks: { mmlu: { metrics: { acc: { scores: { acc: score(0.5) } } } } },
        groups: { mmlu: { metrics: { acc: { scores: { acc: score(0.9) } } } } },
      }),
    ).toThrow('metric key collision: mmlu_acc');
  });

  it('returns an empty object for no tasks', () => {
    expect(flattenMetrics({ tasks: {} } as ResultsFile['results'])).toEqual({});
  });
});
