/**
 * The built-in benchmarks end to end: CLI → real Temporal dev server → worker → harness process → the fixture
 * endpoint, whose scripted answers give exactly known scores. One invocation runs every benchmark in parallel.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limitSamples } from '../../harness/engine.js';
import { getBuiltinTask } from '../../harness/tasks/index.js';
import type { TaskSample } from '../../harness/tasks/types.js';
import type { InvocationStatus } from '../../workflows/types.js';
import { startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import { cli, DATASETS, readYaml, startedInvocationId, tempDir, writeConfig } from '../support/run-helpers.js';
import { startWorker, testClient, testTarget, type RunningWorker } from '../support/temporal.js';

const MATH500_N = 7;
const MATH500_CORRECT = 4;
/** HumanEval: which of the 3 generations of each problem are right (c = 2, 3, 0: pass@1 = 5/9, pass@3 = 2/3). */
const HUMANEVAL_RIGHT = [[true, false, true], [true, true, true], [false, false, false]];
const HUMANEVAL_N = HUMANEVAL_RIGHT.length;
/** MBPP: the first two answers are the reference code; then a wrong function and an endless loop. */
const MBPP_N = 4;
const MBPP_RIGHT = 2;
/**
 * GSM8K chain-of-thought, by lm-eval's two filters: right by both, by strict-match only (a later number ends the
 * answer), by flexible-extract only (no "The answer is N" cue, or `$N` after it), and wrong by both.
 */
const GSM8K_COT_ANSWERS: readonly ((n: number) => string)[] = [
  (n) => `Let us add it up step by step. The answer is ${n}.`,
  (n) => `Working it through gives ${n - 1} + 1 = ${n}. The answer is ${n}.\n\n`,
  (n) => `The answer is ${n.toFixed(2)}.`,
  (n) => `The answer is ${n}. Checking: ${n} + 1 = ${n + 1}`,
  (n) => `So the total comes to ${n}`,
  (n) => `The answer is $${n}.`,
  (n) => `The answer is ${n + 1}.`,
];
const GSM8K_COT_N = GSM8K_COT_ANSWERS.length;

async function firstSamples(task: string, n: number): Promise<TaskSample[]> {
  return limitSamples(await getBuiltinTask(task).loadSamples({ datasetDir: DATASETS, extra: {} }), n);
}

/** Answers keyed by a substring of the prompt (the problem text); the first key found in the prompt wins. */
function scriptedAnswers(table: ReadonlyMap<string, string>): (prompt: string) => string {
  return (prompt) => {
    for (const [key, answer] of table) if (prompt.includes(key)) return answer;
    return 'no scripted answer';
  };
}

describe('built-in benchmarks through evalflow run (process runtime, fixture endpoint)', () => {
  let fixture: FixtureServer;
  let worker: RunningWorker;
  let client: Client;
  const answers = new Map<string, string>();
  const generations = new Map<string, string[]>();
  /** The chat messages of each gsm8k_cot request (its user turns start "Q: "). */
  const cotConversations: unknown[][] = [];

  beforeAll(async () => {
    process.env.TEMPORAL_ADDRESS = testTarget().address;
    // MATH-500: the first answers are right but written differently from the reference (\dfrac, spaces, units).
    for (const [i, sample] of (await firstSamples('math500', MATH500_N)).entries()) {
      const { problem } = sample.data as { problem: string };
      const answer = i < MATH500_CORRECT ? sample.groundTruth.replaceAll('\\frac', '\\dfrac').replaceAll(',', ', ') : `${sample.groundTruth}+1`;
      answers.set(problem, `Let us work it out.\nThe answer is $\\boxed{${answer}}$.`);
    }
    for (const [i, sample] of (await firstSamples('gsm8k_cot', GSM8K_COT_N)).entries()) {
      const { question } = sample.data as { question: string };
      answers.set(question, (GSM8K_COT_ANSWERS[i] as (n: number) => string)(Number(sample.groundTruth)));
    }
    // IFEval, prompts 1000, 1001, 1005, 1012 (7 instructions); verdicts worked out by hand in the test below.
    answers.set('Raymond_III', '*Count* *Raymond* *Tripoli* without any commas at all');
    answers.set('Shakespearean', 'Day one: Tokyo and its temples.');
    answers.set('fresh high school graduate', 'Name: [name]');
    const emailRequest = 'Write an email to my boss telling him that I am quitting. The email must contain a title wrapped in double angular brackets, i.e. <<title>>.';
    answers.set('telling him that I am quitting', `Sure.\n${emailRequest}\n<<Leaving>>\nDear boss, I quit.`);
    // HumanEval, 3 generations each: the k-th request for a problem gets its k-th scripted function (published
    // canonical solution or a wrong one). MBPP: the published reference code, a wrong one, and a program that never ends.
    for (const [i, sample] of (await firstSamples('humaneval', HUMANEVAL_N)).entries()) {
      const { prompt, entryPoint } = sample.data as { prompt: string; entryPoint: string };
      const fn = (body: string) => `\`\`\`python\n${prompt.slice(prompt.indexOf(`def ${entryPoint}(`))}${body}\`\`\``;
      generations.set(`def ${entryPoint}(`, (HUMANEVAL_RIGHT[i] ?? []).map((right) => fn(right ? sample.groundTruth : '    return None\n')));
    }
    const mbppReference = new Map(
      readFileSync(join(DATASETS, 'mbpp', 'mbpp.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { task_id: number; code: string })
        .map((r) => [`mbpp/${r.task_id}`, r.code]),
    );
    for (const [i, sample] of (await firstSamples('mbpp', MBPP_N)).entries()) {
      const { text } = sample.data as { text: string };
      const code = i < MBPP_RIGHT ? (mbppReference.get(sample.id) ?? '') : i === MBPP_RIGHT ? 'def nothing():\n    return None\n' : 'while True:\n    pass\n';
      answers.set(text, `Here you go:\n\`\`\`python\n${code}\n\`\`\``);
    }
    const scripted = scriptedAnswers(answers);
    const requested = new Map<string, number>();
    fixture = await startFixtureServer({
      answer: (prompt, body) => {
        if (prompt.startsWith('Q: ') && Array.isArray(body.messages)) cotConversations.push(body.messages);
        for (const [key, list] of generations) {
          if (!prompt.includes(key)) continue;
          const k = requested.get(key) ?? 0;
          requested.set(key, k + 1);
          return list[k] ?? 'no scripted answer';
        }
        return scripted(prompt);
      },
    });
    worker = await startWorker();
    client = await testClient();
  });

  afterAll(async () => {
    await worker?.stop();
    await fixture?.close();
    await client?.connection.close();
  });

  it('scores every benchmark exactly', async () => {
    const dir = tempDir();
    const config = writeConfig(
      dir,
      `
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
      params: {parallelism: 4, temperature: 0}
  tasks:
    - name: evalflow.math500
      dataset_dir: ${DATASETS}
      nemo_evaluator_config: {config: {params: {limit_samples: ${MATH500_N}}}}
    - name: evalflow.ifeval
      dataset_dir: ${DATASETS}
      nemo_evaluator_config: {config: {params: {limit_samples: 4}}}
    - name: evalflow.humaneval
      dataset_dir: ${DATASETS}
      nemo_evaluator_config: {config: {params: {limit_samples: ${HUMANEVAL_N}, extra: {n_samples: 3, k: [1, 3], timeout: 20}}}}
    - name: evalflow.mbpp
      dataset_dir: ${DATASETS}
      nemo_evaluator_config: {config: {params: {limit_samples: ${MBPP_N}, extra: {timeout: 5}}}}
    - name: evalflow.gsm8k_cot
      dataset_dir: ${DATASETS}
      nemo_evaluator_config: {config: {params: {limit_samples: ${GSM8K_COT_N}}}}
`,
    );
    const res = await cli('run', '-c', config, '--wait');
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const inv = startedInvocationId(res.stdout);
    const status = await client.workflow.getHandle(`evalflow-${inv}`).query<InvocationStatus>('status');
    expect(status.tasks.map((t) => t.stage)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded']);

    const jobDir = (task: string) => status.tasks.find((t) => t.jobName.startsWith(task))?.jobDir as string;
    const results = readYaml<{
      samples: Record<string, number>;
      results: { tasks: Record<string, { metrics: Record<string, { scores: Record<string, { value: number }> }> }>; groups: Record<string, { groups: Record<string, unknown> }> };
    }>(join(jobDir('math500'), 'artifacts', 'results.yml'));
    expect(results.samples).toMatchObject({ total: MATH500_N, scored: MATH500_N, errors: 0 });
    expect(results.results.tasks.math500?.metrics.accuracy?.scores.accuracy?.value).toBeCloseTo(MATH500_CORRECT / MATH500_N, 12);
    expect(Object.keys(results.results.groups.math500?.groups ?? {})).toHaveLength(7);
    const perSample = readFileSync(join(jobDir('math500'), 'artifacts', 'nemo-evaluator-per-sample-outputs', 'math500.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { answer: string; score: number });
    expect(perSample.map((s) => s.score)).toEqual([1, 1, 1, 1, 0, 0, 0]);
    expect(status.tasks[0]?.metrics?.math500_accuracy).toBeCloseTo(MATH500_CORRECT / MATH500_N, 12);

    // IFEval. Strict: 1000 [no_comma ✓, 3 highlights ✓, ≥300 words ✗], 1001 [no_comma ✓], 1005 [12 placeholders ✗],
    // 1012 [repeat prompt ✗ ("Sure." first), title ✓]. Loose also drops the first line, so 1012 repeats the prompt.
    const ifeval = readYaml<typeof results>(join(jobDir('ifeval'), 'artifacts', 'results.yml'));
    const metric = (name: string) => ifeval.results.tasks.ifeval?.metrics[name]?.scores[name]?.value;
    expect(ifeval.samples).toMatchObject({ total: 4, scored: 4, errors: 0 });
    expect(metric('prompt_level_strict_acc')).toBe(1 / 4);
    expect(metric('inst_level_strict_acc')).toBeCloseTo(4 / 7, 12);
    expect(metric('prompt_level_loose_acc')).toBe(2 / 4);
    expect(metric('inst_level_loose_acc')).toBeCloseTo(5 / 7, 12);
    expect(Object.keys(ifeval.results.groups.ifeval?.groups ?? {})).toHaveLength(6);

    // HumanEval: 9 generations run in the sandbox; c = 2, 3, 0 of n = 3.
    const humaneval = readYaml<typeof results>(join(jobDir('humaneval'), 'artifacts', 'results.yml'));
    const passAt = (r: typeof results, task: string, k: number) => r.results.tasks[task]?.metrics[`pass@${k}`]?.scores[`pass@${k}`]?.value;
    expect(humaneval.samples).toMatchObject({ total: HUMANEVAL_N, scored: HUMANEVAL_N, errors: 0 });
    expect(Object.keys(humaneval.results.tasks.humaneval?.metrics ?? {})).toEqual(['pass@1', 'pass@3']);
    expect(passAt(humaneval, 'humaneval', 1)).toBeCloseTo(5 / 9, 12);
    expect(passAt(humaneval, 'humaneval', 3)).toBeCloseTo(2 / 3, 12);
    const humanevalRecords = readFileSync(join(jobDir('humaneval'), 'artifacts', 'nemo-evaluator-per-sample-outputs', 'humaneval.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; generations: Array<{ score: number }> });
    expect(humanevalRecords.map((r) => [r.id, r.generations.map((g) => g.score).sort()])).toEqual([
      ['HumanEval/0', [0, 1, 1]],
      ['HumanEval/1', [1, 1, 1]],
      ['HumanEval/2', [0, 0, 0]],
    ]);

    // MBPP: 2 of 4 pass (the endless loop is killed at the 5 s limit and fails).
    const mbpp = readYaml<typeof results>(join(jobDir('mbpp'), 'artifacts', 'results.yml'));
    expect(mbpp.samples).toMatchObject({ total: MBPP_N, scored: MBPP_N, errors: 0 });
    expect(passAt(mbpp, 'mbpp', 1)).toBe(MBPP_RIGHT / MBPP_N);
    expect(status.tasks[3]?.metrics?.['mbpp_pass@1']).toBe(MBPP_RIGHT / MBPP_N);

    // GSM8K CoT (8 exemplars as chat turns): strict-match 4 of 7 (answers 0-3), flexible-extract 5 of 7 (0-2, 4, 5).
    const cot = readYaml<typeof results>(join(jobDir('gsm8k_cot'), 'artifacts', 'results.yml'));
    const exactMatch = (name: string) => cot.results.tasks.gsm8k_cot?.metrics[name]?.scores[name]?.value;
    expect(cot.samples).toMatchObject({ total: GSM8K_COT_N, scored: GSM8K_COT_N, errors: 0 });
    expect(Object.keys(cot.results.tasks.gsm8k_cot?.metrics ?? {})).toEqual(['exact_match_strict', 'exact_match_flexible']);
    expect(exactMatch('exact_match_strict')).toBeCloseTo(4 / 7, 12);
    expect(exactMatch('exact_match_flexible')).toBeCloseTo(5 / 7, 12);
    const cotRecords = readFileSync(join(jobDir('gsm8k_cot'), 'artifacts', 'nemo-evaluator-per-sample-outputs', 'gsm8k_cot.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; query: string; score: number; score_name: string });
    expect(cotRecords.map((r) => [r.id, r.score])).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => [`gsm8k_cot-${i}`, i < 4 ? 1 : 0]));
    expect(cotRecords.every((r) => r.score_name === 'exact_match_strict' && /^Q: [^]+\nA:$/.test(r.query))).toBe(true);
    // Each request: the 8 exemplars as user/assistant turns, then the question.
    expect(cotConversations).toHaveLength(GSM8K_COT_N);
    for (const messages of cotConversations) {
      expect(messages).toHaveLength(17);
      expect(messages[0]).toMatchObject({ role: 'user', content: expect.stringMatching(/^Q: There are 15 trees in the grove\./) });
      expect(messages[15]).toMatchObject({ role: 'assistant', content: expect.stringMatching(/The answer is 8\.$/) });
    }
    expect(status.tasks[4]?.metrics).toMatchObject({ gsm8k_cot_exact_match_strict: 4 / 7, gsm8k_cot_exact_match_flexible: 5 / 7 });
  });
});
