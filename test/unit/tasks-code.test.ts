import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { MetricsSchema } from '../../harness/results-schema.js';
import { passAtKMetrics } from '../../harness/tasks/aggregate.js';
import { extractCode, truncateAtStop } from '../../harness/tasks/code.js';
import { TaskConfigError } from '../../harness/tasks/errors.js';
import { buildHumanevalPrompt, HUMANEVAL_STOP, humaneval, humanevalProgram, type HumanevalData } from '../../harness/tasks/humaneval.js';
import { buildMbppPrompt, MBPP_STOP, mbpp, type MbppData } from '../../harness/tasks/mbpp.js';
import type { ScoredSample, TaskSample } from '../../harness/tasks/types.js';

const DATASET_DIR = fileURLToPath(new URL('../../../shared/datasets', import.meta.url));
const NO_PARAMS = { extra: {} };
/** Generous limits: the machine is shared and loaded; the programs themselves take milliseconds. */
const LIMITS = { extra: { timeout: 20 } };

interface HumanEvalRow {
  task_id: string;
  canonical_solution: string;
}
const humanevalRows = (): HumanEvalRow[] =>
  gunzipSync(readFileSync(`${DATASET_DIR}/humaneval/HumanEval.jsonl.gz`)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as HumanEvalRow);

interface MbppRow {
  task_id: number;
  code: string;
}
const mbppRows = (): MbppRow[] =>
  readFileSync(`${DATASET_DIR}/mbpp/mbpp.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MbppRow);

describe('code extraction', () => {
  it('cuts a completion at the first stop sequence (bigcode-evaluation-harness)', () => {
    expect(truncateAtStop('\n    return 1\n\ndef other():\n    pass', HUMANEVAL_STOP)).toBe('\n    return 1\n');
    expect(truncateAtStop('\n    return 1\nprint(f())\nif x:', HUMANEVAL_STOP)).toBe('\n    return 1');
    expect(truncateAtStop('def f(x):\n    return x\nassert f(1) == 1', MBPP_STOP)).toBe('def f(x):\n    return x');
    expect(truncateAtStop('no stop here', MBPP_STOP)).toBe('no stop here');
  });

  it('takes the first fenced block of a chat answer, an unterminated one to the end, or the whole answer', () => {
    expect(extractCode('Here:\n```python\ndef f():\n    return 1\n```\nand\n```python\nx = 2\n```')).toBe('def f():\n    return 1\n');
    expect(extractCode('```\nx = 1\n```')).toBe('x = 1\n');
    expect(extractCode('Sure.\n```py\nx = 1\ny = 2')).toBe('x = 1\ny = 2');
    expect(extractCode('def f():\n    return 1\n')).toBe('def f():\n    return 1\n');
  });
});

describe('humaneval', () => {
  it('loads the 164 problems in dataset order, with prompts for both endpoint types', async () => {
    const samples = await humaneval.loadSamples({ datasetDir: DATASET_DIR, extra: {} });
    expect(samples).toHaveLength(164);
    expect(samples[0]?.id).toBe('HumanEval/0');
    const first = samples[0] as TaskSample;
    const completion = buildHumanevalPrompt(first, 'completions');
    expect(completion).toMatchObject({ kind: 'completions', stop: HUMANEVAL_STOP });
    expect(completion.kind === 'completions' && completion.prompt.endsWith('"""')).toBe(true); // stripped, as bigcode does
    const chat = buildHumanevalPrompt(first, 'chat');
    expect(chat.kind === 'chat' && chat.messages[0]?.content).toContain('def has_close_elements(numbers: List[float], threshold: float) -> bool:');
  });

  it('passes the published canonical solutions as completions and as chat answers; fails wrong ones', async () => {
    const samples = (await humaneval.loadSamples({ datasetDir: DATASET_DIR, extra: {} })).slice(0, 12);
    const rows = humanevalRows();
    const verdicts: number[] = [];
    for (const sample of samples) {
      const canonical = rows.find((r) => r.task_id === sample.id)?.canonical_solution ?? '';
      const data = sample.data as unknown as HumanevalData;
      // A completions model continues the stripped prompt (its first token is the newline the strip removed),
      // then starts a new top-level statement that the stop sequences cut off.
      const asCompletion = `\n${canonical}\n\ndef unrelated():\n    raise SystemExit(1)\n`;
      // A chat model repeats the signature (the prompt's helper functions and imports are prepended).
      const asChat = `Here it is:\n\`\`\`python\n${data.prompt.slice(data.prompt.indexOf(`def ${data.entryPoint}(`))}${canonical}\`\`\``;
      verdicts.push((await humaneval.score(sample, asCompletion, LIMITS, { endpointType: 'completions' })).score);
      verdicts.push((await humaneval.score(sample, asChat, LIMITS, { endpointType: 'chat' })).score);
      verdicts.push((await humaneval.score(sample, '\n    return None\n', LIMITS, { endpointType: 'completions' })).score);
    }
    expect(verdicts).toEqual(samples.flatMap(() => [1, 1, 0]));
  }, 120_000);

  it('runs a chat answer that is only a body after the problem text; HumanEval/38 keeps its helper function', async () => {
    const samples = await humaneval.loadSamples({ datasetDir: DATASET_DIR, extra: {} });
    const sample = samples.find((s) => s.id === 'HumanEval/38') as TaskSample;
    const data = sample.data as unknown as HumanevalData;
    const canonical = humanevalRows().find((r) => r.task_id === 'HumanEval/38')?.canonical_solution ?? '';
    const full = humanevalProgram(data, `\`\`\`python\ndef decode_cyclic(s: str):\n${canonical}\`\`\``, 'chat');
    expect(full.program).toContain('def encode_cyclic'); // the helper from the prompt
    expect((await humaneval.score(sample, `\`\`\`python\ndef decode_cyclic(s: str):\n${canonical}\`\`\``, LIMITS, { endpointType: 'chat' })).score).toBe(1);
    expect((await humaneval.score(sample, `\`\`\`python\n${canonical}\`\`\``, LIMITS, { endpointType: 'chat' })).score).toBe(1);
  }, 60_000);

  it('scores sandbox escapes and runaway programs as failures', async () => {
    const [sample] = await humaneval.loadSamples({ datasetDir: DATASET_DIR, extra: {} });
    const attempts = [
      '\n    while True:\n        pass\n',
      '\n    import os\n    os.fork()\n    return True\n',
      "\n    import socket\n    socket.create_connection(('127.0.0.1', 22), timeout=1)\n    return True\n",
      "\n    open('/etc/evalflow-escape', 'w').write('x')\n    return True\n",
      "\n    print('x' * 10_000_000)\n    raise SystemExit(1)\n",
    ];
    const scores = [];
    for (const attempt of attempts) scores.push((await humaneval.score(sample as TaskSample, attempt, { extra: { timeout: 1 } }, { endpointType: 'completions' })).score);
    expect(scores).toEqual([0, 0, 0, 0, 0]);
  }, 60_000);

  it('rejects unknown or bad extra keys, naming config.params.extra.<key>', async () => {
    await expect(humaneval.loadSamples({ datasetDir: DATASET_DIR, extra: { kk: [1] } })).rejects.toThrow(TaskConfigError);
    await expect(humaneval.loadSamples({ datasetDir: DATASET_DIR, extra: { k: [0] } })).rejects.toThrow(/config\.params\.extra\.k\.0/);
    await expect(humaneval.loadSamples({ datasetDir: DATASET_DIR, extra: { timeout: -1 } })).rejects.toThrow(/config\.params\.extra\.timeout/);
  });
});

describe('mbpp', () => {
  it('loads the test split (task ids 11-510) with bigcode and MBPP-paper prompts', async () => {
    const samples = await mbpp.loadSamples({ datasetDir: DATASET_DIR, extra: {} });
    expect(samples).toHaveLength(500);
    expect(samples[0]?.id).toBe('mbpp/11');
    expect(samples.at(-1)?.id).toBe('mbpp/510');
    const first = samples[0] as TaskSample;
    expect(buildMbppPrompt(first, 'completions')).toEqual({
      kind: 'completions',
      prompt: '"""\nWrite a python function to remove first and last occurrence of a given character from the string.\nassert remove_Occ("hello","l") == "heo"\n"""\n',
      stop: MBPP_STOP,
    });
    const chat = buildMbppPrompt(first, 'chat');
    expect(chat.kind === 'chat' && chat.messages[0]?.content).toMatch(/^You are an expert Python programmer, and here is your task: Write a python function to remove first and last occurrence/);
    expect(chat.kind === 'chat' && chat.messages[0]?.content).toContain('assert remove_Occ("PHP","P") == "H"');
  });

  it('passes the published reference code as a completion and as a chat answer; fails wrong code', async () => {
    const samples = (await mbpp.loadSamples({ datasetDir: DATASET_DIR, extra: {} })).slice(0, 12);
    const rows = mbppRows();
    const verdicts: number[] = [];
    for (const sample of samples) {
      const code = rows.find((r) => `mbpp/${r.task_id}` === sample.id)?.code.replaceAll('\r\n', '\n') ?? '';
      verdicts.push((await mbpp.score(sample, `${code}\nprint("done")\nassert False`, LIMITS, { endpointType: 'completions' })).score);
      verdicts.push((await mbpp.score(sample, `Solution:\n\`\`\`python\n${code}\n\`\`\`\nDone.`, LIMITS, { endpointType: 'chat' })).score);
      const wrong = (sample.data as unknown as MbppData).tests[0]?.match(/assert\s+(\w+)\(/)?.[1];
      verdicts.push((await mbpp.score(sample, `def ${wrong}(*args):\n    return None\n`, LIMITS, { endpointType: 'completions' })).score);
    }
    expect(verdicts).toEqual(samples.flatMap(() => [1, 1, 0]));
  }, 120_000);
});

describe('pass@k aggregation', () => {
  const sample = (i: number, passes: number[]): ScoredSample => ({
    sample: { id: `s${i}`, groundTruth: '', data: {} },
    generations: passes.map((score) => ({ score, extracted: null })),
  });

  it('averages the unbiased estimator over samples; leaves out k above the generations per sample', () => {
    // n = 5 per sample, c = 2 and c = 0: pass@1 = (0.4 + 0) / 2; pass@5 = (1 + 0) / 2; pass@2 = (1 - C(3,2)/C(5,2)) / 2 = 0.35.
    const scored = [sample(0, [1, 0, 1, 0, 0]), sample(1, [0, 0, 0, 0, 0])];
    const metrics = passAtKMetrics(scored, [10, 1, 5, 2, 1]);
    expect(MetricsSchema.parse(metrics)).toEqual(metrics);
    expect(Object.keys(metrics)).toEqual(['pass@1', 'pass@2', 'pass@5']);
    expect(metrics['pass@1']?.scores['pass@1']?.value).toBeCloseTo(0.2, 12);
    expect(metrics['pass@2']?.scores['pass@2']?.value).toBeCloseTo(0.35, 12);
    expect(metrics['pass@5']?.scores['pass@5']?.value).toBe(0.5);
  });

  it('reports pass@1 only for one generation per sample (the default k [1, 10, 100])', () => {
    const { metrics } = humaneval.aggregate([sample(0, [1]), sample(1, [0]), sample(2, [1])], NO_PARAMS);
    expect(Object.keys(metrics)).toEqual(['pass@1']);
    expect(metrics['pass@1']?.scores['pass@1']?.value).toBeCloseTo(2 / 3, 12);
  });
});
