/** The bench's prompts: distinct GSM8K-sized custom samples, and the request bodies the harness builds for them. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultAnswer, FIXTURE_MODEL } from '../../common/fixture-endpoint.js';
import { buildRequestBody } from '../../harness/client.js';
import { custom } from '../../harness/tasks/custom.js';
import type { HarnessTask } from './harness-run.js';

export interface CustomDataset {
  /** `dataset_dir` of the run config. */
  dir: string;
  /** The JSONL file inside it. */
  path: string;
  rows: number;
}

/** The custom task reading `dataset`, as the harness runs it and as the engine hands `extra` to the task. */
export function customTask(dataset: CustomDataset): HarnessTask {
  return { type: 'custom', extra: { dataset_dir: dataset.dir, ...customExtra(dataset) } };
}

function customExtra(dataset: CustomDataset): Record<string, unknown> {
  return { dataset_path: dataset.path, prompt_template: '{{q}}', scorer: 'exact', answer_field: 'answer' };
}

/** GSM8K test questions in file order (empty when the dataset is not there). */
export function gsm8kQuestions(datasetsDir: string): string[] {
  const file = join(datasetsDir, 'gsm8k', 'test.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => (JSON.parse(l) as { question: string }).question);
}

/**
 * `rows` distinct samples with GSM8K-sized questions under `scratch/custom/`; each answer is what
 * the fixture will reply, so an exact-match accuracy of 1 shows that every response came back and was scored.
 */
export function writeCustomDataset(scratch: string, rows: number, datasetsDir: string): CustomDataset {
  const dir = join(scratch, 'custom');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'bench.jsonl');
  let questions = gsm8kQuestions(datasetsDir);
  if (questions.length === 0) questions = ['A farmer has 17 cows and buys 5 more each week. How many cows does the farmer have after 9 weeks?'];
  const lines: string[] = [];
  for (let i = 0; i < rows; i++) {
    const q = `${questions[i % questions.length] ?? ''} (sample ${i})`;
    lines.push(JSON.stringify({ q, answer: defaultAnswer(q) }));
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
  return { dir, path, rows };
}

/** The request bodies the harness builds for the first `n` samples of the dataset (same functions, same params). */
export async function harnessBodies(dataset: CustomDataset, n: number): Promise<Array<Record<string, unknown>>> {
  const extra = customExtra(dataset);
  const samples = (await custom.loadSamples({ datasetDir: dataset.dir, extra })).slice(0, n);
  const params = { ...custom.defaultParams, temperature: 0 };
  return samples.map((s) => buildRequestBody(custom.buildPrompt(s, 'chat', { extra }), FIXTURE_MODEL, params, false));
}
