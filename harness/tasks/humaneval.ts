/**
 * HumanEval (`<datasetDir>/humaneval/HumanEval.jsonl.gz`: 164 Python problems of Chen et al. 2021, each a function
 * signature with a docstring, `test` defining `check(candidate)`, and `entry_point`). The model completes the
 * function; the program (completion + tests + `check(<entry_point>)`) runs in the sandbox (harness/sandbox.ts);
 * pass@k over `n_samples` generations.
 *
 * Completions endpoints: the prompt is the problem's text stripped, and the completion is cut at bigcode-evaluation-
 * harness's stop sequences, as its `humaneval` task does. Chat endpoints: the model is asked for the whole function in
 * a ```python block; when that block defines the entry point, it runs after the problem's text up to that function
 * (its imports and helper functions), otherwise it is taken as the function's body.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { codeAggregate, codeExtraParser, codeScoringConcurrency, extractCode, missingPython, scoreProgram, truncateAtStop } from './code.js';
import { DatasetError } from './errors.js';
import type { EndpointType, Prompt, TaskDefinition, TaskSample } from './types.js';
import { BUILTIN_TASK_INFO } from './catalogue.js';

export const parseHumanevalExtra = codeExtraParser('humaneval');

/** bigcode-evaluation-harness's stop sequences for HumanEval (a new top-level statement ends the function). */
export const HUMANEVAL_STOP = ['\nclass', '\ndef', '\n#', '\n@', '\nprint', '\nif', '\n```'];

export const HUMANEVAL_INSTRUCTION =
  'Complete the following Python function. Reply with the complete function (signature and body) in one ```python code block.';

/** `sample.data` of a humaneval sample. */
export interface HumanevalData {
  prompt: string;
  test: string;
  entryPoint: string;
}

export function buildHumanevalPrompt(sample: TaskSample, endpointType: EndpointType): Prompt {
  const { prompt } = sample.data as unknown as HumanevalData;
  if (endpointType === 'chat') {
    return { kind: 'chat', messages: [{ role: 'user', content: `${HUMANEVAL_INSTRUCTION}\n\n\`\`\`python\n${prompt.trim()}\n\`\`\`` }] };
  }
  return { kind: 'completions', prompt: prompt.trim(), stop: HUMANEVAL_STOP };
}

/** The program that scores a generation: the function as completed, then the problem's tests and their call. */
export function humanevalProgram(data: HumanevalData, generation: string, endpointType: EndpointType): { program: string; code: string } {
  let solution: string;
  let code: string;
  if (endpointType === 'completions') {
    code = truncateAtStop(generation, HUMANEVAL_STOP);
    solution = data.prompt.trim() + code;
  } else {
    code = extractCode(generation);
    const definition = new RegExp(`^def\\s+${data.entryPoint}\\s*\\(`, 'm');
    const defined = definition.exec(code);
    const inPrompt = definition.exec(data.prompt);
    solution = defined && inPrompt ? `${data.prompt.slice(0, inPrompt.index)}${code}` : `${data.prompt}${code}`;
  }
  return { program: `${solution}\n\n${data.test}\n\ncheck(${data.entryPoint})\n`, code };
}

export const humaneval: TaskDefinition = {
  ...BUILTIN_TASK_INFO.humaneval,
  scoreName: 'pass@1',

  async loadSamples(ctx) {
    parseHumanevalExtra(ctx.extra);
    const path = join(ctx.datasetDir, 'humaneval', 'HumanEval.jsonl.gz');
    let text: string;
    try {
      text = gunzipSync(await readFile(path)).toString('utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new DatasetError(`humaneval dataset: ${code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? (err as Error).message})`}: ${path}`);
    }
    const samples: TaskSample[] = [];
    for (const [i, line] of text.split('\n').entries()) {
      if (line.trim() === '') continue;
      let row: Record<string, unknown>;
      try {
        row = JSON.parse(line) as Record<string, unknown>;
      } catch (err) {
        throw new DatasetError(`${path}:${i + 1}: invalid JSON (${(err as Error).message})`);
      }
      const { task_id: id, prompt, test, entry_point: entryPoint, canonical_solution: canonical } = row;
      if (typeof id !== 'string' || typeof prompt !== 'string' || typeof test !== 'string' || typeof entryPoint !== 'string' || !/^\w+$/.test(entryPoint)) {
        throw new DatasetError(`${path}:${i + 1}: expected string fields "task_id", "prompt", "test" and an identifier "entry_point"`);
      }
      const data: HumanevalData = { prompt, test, entryPoint };
      samples.push({ id, groundTruth: typeof canonical === 'string' ? canonical : '', data: data as unknown as Record<string, unknown> });
    }
    return samples;
  },

  buildPrompt(sample, endpointType) {
    return buildHumanevalPrompt(sample, endpointType);
  },

  score(sample, generation, params, context) {
    const extra = parseHumanevalExtra(params.extra);
    const { program, code } = humanevalProgram(sample.data as unknown as HumanevalData, generation, context?.endpointType ?? 'completions');
    return scoreProgram(program, code, extra, context?.signal);
  },

  scoringConcurrency(params) {
    return codeScoringConcurrency(parseHumanevalExtra(params.extra));
  },

  missingTools: missingPython,

  aggregate(scored, params) {
    return codeAggregate(scored, params, parseHumanevalExtra);
  },
};
