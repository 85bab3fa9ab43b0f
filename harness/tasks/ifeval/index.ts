/**
 * IFEval (`<datasetDir>/ifeval/input_data.jsonl`: 541 prompts with 1–3 verifiable instructions each, 25 instruction
 * ids): the prompt is sent as is, the response is checked against each instruction, strictly and loosely.
 *
 * Metrics (lm-eval's names): `prompt_level_strict_acc` and `prompt_level_loose_acc` (every instruction of the prompt
 * followed), `inst_level_strict_acc` and `inst_level_loose_acc` (over all instructions). The per-sample score is the
 * prompt-level strict verdict. One group per instruction id with its instruction-level accuracies.
 */
import { join } from 'node:path';
import { z } from 'zod';
import type { GroupResult, Metrics } from '../../results-schema.js';
import { meanScore } from '../aggregate.js';
import { readJsonl } from '../dataset-io.js';
import { DatasetError } from '../errors.js';
import { extraParser } from '../extra.js';
import type { Prompt, SampleScore, ScoredSample, TaskDefinition, TaskSample } from '../types.js';
import { buildCheckers, checkResponse, InstructionConfigError, type Instruction } from './checkers.js';
import { BUILTIN_TASK_INFO } from '../catalogue.js';

const IfevalExtraSchema = z.object({}).strict();
export const parseIfevalExtra = extraParser(IfevalExtraSchema, 'ifeval');

/** `sample.data` of an ifeval sample. */
export interface IfevalData {
  key: number;
  prompt: string;
  instructions: Instruction[];
}

function data(sample: TaskSample): IfevalData {
  return sample.data as unknown as IfevalData;
}

/** The verdicts of one response (kept in `SampleScore.details` for aggregation). */
export interface IfevalDetails {
  instructionIds: string[];
  strict: boolean[];
  loose: boolean[];
}

const checkerCache = new WeakMap<TaskSample, ReturnType<typeof buildCheckers>>();

/** Checks one response against a sample's instructions. */
export function scoreIfeval(sample: TaskSample, response: string): SampleScore {
  const d = data(sample);
  let checkers = checkerCache.get(sample);
  if (!checkers) checkerCache.set(sample, (checkers = buildCheckers(d.instructions, d.prompt)));
  const { strict, loose } = checkResponse(checkers, response);
  const details: IfevalDetails = { instructionIds: d.instructions.map((i) => i.id), strict, loose };
  const followed = strict.filter(Boolean).length;
  return {
    score: strict.every(Boolean) ? 1 : 0,
    extracted: `strict ${followed}/${strict.length}, loose ${loose.filter(Boolean).length}/${loose.length}`,
    details: details as unknown as Record<string, unknown>,
  };
}

const asNumber = (b: boolean) => (b ? 1 : 0);

/** Over every generation of every sample (with several generations per sample, each counts once). */
export function aggregateIfeval(scored: readonly ScoredSample[]): { metrics: Metrics; group: GroupResult } {
  const promptStrict: number[] = [];
  const promptLoose: number[] = [];
  const instStrict: number[] = [];
  const instLoose: number[] = [];
  const byInstruction = new Map<string, { strict: number[]; loose: number[] }>();
  for (const score of scored.flatMap((s) => s.generations)) {
    const d = score.details as unknown as IfevalDetails;
    promptStrict.push(asNumber(d.strict.every(Boolean)));
    promptLoose.push(asNumber(d.loose.every(Boolean)));
    d.instructionIds.forEach((id, i) => {
      const s = asNumber(d.strict[i] ?? false);
      const l = asNumber(d.loose[i] ?? false);
      instStrict.push(s);
      instLoose.push(l);
      let entry = byInstruction.get(id);
      if (!entry) byInstruction.set(id, (entry = { strict: [], loose: [] }));
      entry.strict.push(s);
      entry.loose.push(l);
    });
  }
  const metrics: Metrics = {
    prompt_level_strict_acc: { scores: { prompt_level_strict_acc: meanScore(promptStrict) } },
    inst_level_strict_acc: { scores: { inst_level_strict_acc: meanScore(instStrict) } },
    prompt_level_loose_acc: { scores: { prompt_level_loose_acc: meanScore(promptLoose) } },
    inst_level_loose_acc: { scores: { inst_level_loose_acc: meanScore(instLoose) } },
  };
  const groups: Record<string, GroupResult> = {};
  for (const id of [...byInstruction.keys()].sort()) {
    const entry = byInstruction.get(id) as { strict: number[]; loose: number[] };
    groups[id] = {
      metrics: {
        inst_level_strict_acc: { scores: { inst_level_strict_acc: meanScore(entry.strict) } },
        inst_level_loose_acc: { scores: { inst_level_loose_acc: meanScore(entry.loose) } },
      },
    };
  }
  return { metrics, group: { metrics, groups } };
}

export const ifeval: TaskDefinition = {
  ...BUILTIN_TASK_INFO.ifeval,

  async loadSamples(ctx) {
    parseIfevalExtra(ctx.extra);
    const path = join(ctx.datasetDir, 'ifeval', 'input_data.jsonl');
    const rows = await readJsonl(path, 'ifeval dataset');
    return rows.map(({ value, line }): TaskSample => {
      const { key, prompt, instruction_id_list: ids, kwargs } = value;
      if (typeof key !== 'number' || typeof prompt !== 'string' || !Array.isArray(ids) || !Array.isArray(kwargs) || ids.length !== kwargs.length) {
        throw new DatasetError(`${path}:${line}: expected "key", "prompt", and "instruction_id_list" and "kwargs" of equal length`);
      }
      const instructions = ids.map((id, i): Instruction => ({ id: String(id), kwargs: (kwargs[i] ?? {}) as Record<string, unknown> }));
      try {
        buildCheckers(instructions, prompt);
      } catch (err) {
        if (err instanceof InstructionConfigError) throw new DatasetError(`${path}:${line}: ${err.message}`);
        throw err;
      }
      const d: IfevalData = { key, prompt, instructions };
      return { id: `ifeval-${key}`, groundTruth: instructions.map((i) => i.id).join(', '), data: d as unknown as Record<string, unknown> };
    });
  },

  buildPrompt(sample, endpointType): Prompt {
    const { prompt } = data(sample);
    return endpointType === 'chat' ? { kind: 'chat', messages: [{ role: 'user', content: prompt }] } : { kind: 'completions', prompt };
  },

  score(sample, generation) {
    return scoreIfeval(sample, generation);
  },

  aggregate(scored) {
    return aggregateIfeval(scored);
  },
};
