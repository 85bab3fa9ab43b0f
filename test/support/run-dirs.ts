/** Run directories written directly (results.yml + per-sample outputs), for comparison and report tests. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

export interface JobSpec {
  task: string;
  /** Per-sample 0/1 (or continuous) scores; null = a failed sample. */
  scores?: Array<number | null>;
  subsets?: string[];
  /** Metric values written to results.yml (default: accuracy = mean of the scores). */
  metrics?: Record<string, Record<string, number>>;
  results?: boolean;
}

export function writeRun(root: string, name: string, jobs: Record<string, JobSpec>): string {
  const runDir = join(root, name);
  for (const [jobName, spec] of Object.entries(jobs)) {
    const artifacts = join(runDir, jobName, 'artifacts');
    mkdirSync(artifacts, { recursive: true });
    const scores = spec.scores ?? [];
    const scored = scores.filter((s): s is number => s !== null);
    const meanScore = scored.reduce((s, v) => s + v, 0) / Math.max(1, scored.length);
    const metrics = spec.metrics ?? { accuracy: { accuracy: meanScore } };
    if (spec.results !== false) {
      const results = {
        evalflow_results_version: 1,
        config: {},
        target: {},
        results: {
          tasks: {
            [spec.task]: {
              metrics: Object.fromEntries(
                Object.entries(metrics).map(([m, s]) => [m, { scores: Object.fromEntries(Object.entries(s).map(([k, v]) => [k, { value: v }])) }]),
              ),
            },
          },
        },
        samples: { total: scores.length, scored: scored.length, errors: scores.length - scored.length, cached: 0 },
      };
      writeFileSync(join(artifacts, 'results.yml'), stringify(results));
    }
    if (spec.scores) {
      const lines = spec.scores.map((score, i) =>
        JSON.stringify({
          id: `q${i}`,
          score,
          score_name: 'accuracy',
          sub_query_id: spec.subsets?.[i] ?? null,
          error: score === null ? 'HTTP 500' : null,
          generation: 'x',
        }),
      );
      mkdirSync(join(artifacts, 'nemo-evaluator-per-sample-outputs'), { recursive: true });
      writeFileSync(join(artifacts, 'nemo-evaluator-per-sample-outputs', `${spec.task}.jsonl`), `${lines.join('\n')}\n`);
    }
  }
  return runDir;
}

