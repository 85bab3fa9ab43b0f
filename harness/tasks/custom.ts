/**
 * `custom`: the user's own JSON Lines dataset, prompt template and scorer, configured in `config.params.extra`:
 *
 * | key | meaning |
 * |---|---|
 * | `dataset_path` | required; absolute, or relative to the dataset dir |
 * | `prompt_template` | required; `{{field}}` (or `{{a.b}}` for nested objects) is replaced by the row's value |
 * | `system_prompt` | optional system message (chat) or prefix (completions) |
 * | `answer_field` | the reference answer's field (default `answer`) |
 * | `id_field` | optional field holding a unique sample id (default `custom-<row>`) |
 * | `scorer` | `exact` (default), `regex` or `numeric` |
 * | `case_sensitive` | `exact` only: compare case-sensitively (default false); both sides are trimmed |
 * | `answer_regex` | `regex` only (required), RE2 syntax (linear-time: no lookaround, no backreferences; `(?i)` for case-insensitive): the first capture group (or the whole match) of the first match, trimmed, must equal the trimmed answer |
 * | `tolerance` | `numeric` only: the last number in the output must be within this of the answer (default 1e-6) |
 *
 * Every row is checked when loading (template fields, answer, id, numeric answers), so a bad dataset fails
 * before any request is sent.
 */
import { isAbsolute, resolve } from 'node:path';
import { RE2JS } from 're2js';
import { z } from 'zod';
import { accuracyMetrics } from './aggregate.js';
import { readJsonl } from './dataset-io.js';
import { DatasetError } from './errors.js';
import { extraParser } from './extra.js';
import { lastNumber, parseNumber } from './numbers.js';
import type { ChatMessage, Prompt, SampleScore, TaskDefinition, TaskSample } from './types.js';
import { BUILTIN_TASK_INFO } from './catalogue.js';

export const CUSTOM_SCORERS = ['exact', 'regex', 'numeric'] as const;
export type CustomScorer = (typeof CUSTOM_SCORERS)[number];

const PLACEHOLDER = /\{\{\s*([^{}]+?)\s*\}\}/g;

const requiredString = z
  .string({ error: (iss) => (iss.input === undefined ? 'required' : 'expected a string') })
  .min(1, 'must not be empty');

const CustomExtraSchema = z
  .object({
    dataset_path: requiredString,
    prompt_template: requiredString.refine((t) => new RegExp(PLACEHOLDER.source).test(t), {
      message: 'has no {{field}} placeholder: every sample would get the same prompt',
    }),
    system_prompt: z.string().optional(),
    answer_field: z.string().min(1, 'must not be empty').default('answer'),
    id_field: z.string().min(1, 'must not be empty').optional(),
    scorer: z.enum(CUSTOM_SCORERS).default('exact'),
    case_sensitive: z.boolean().optional(),
    answer_regex: z.string().min(1, 'must not be empty').optional(),
    tolerance: z.number().nonnegative().optional(),
  })
  .strict()
  .superRefine((extra, ctx) => {
    const onlyFor = (key: 'case_sensitive' | 'answer_regex' | 'tolerance', scorer: CustomScorer) => {
      if (extra[key] !== undefined && extra.scorer !== scorer) {
        ctx.addIssue({ code: 'custom', path: [key], message: `only used with scorer "${scorer}" (scorer is "${extra.scorer}")` });
      }
    };
    onlyFor('case_sensitive', 'exact');
    onlyFor('answer_regex', 'regex');
    onlyFor('tolerance', 'numeric');
    if (extra.scorer === 'regex') {
      if (extra.answer_regex === undefined) {
        ctx.addIssue({ code: 'custom', path: ['answer_regex'], message: 'required when scorer is "regex"' });
      } else {
        try {
          compiled(extra.answer_regex);
        } catch (err) {
          ctx.addIssue({
            code: 'custom',
            path: ['answer_regex'],
            message: `not a valid RE2 regular expression (linear-time matching: no lookaround, no backreferences): ${(err as Error).message}`,
          });
        }
      }
    }
  });
export type CustomExtra = z.output<typeof CustomExtraSchema>;
export const parseCustomExtra = extraParser(CustomExtraSchema, 'custom');

/** `sample.data` of a custom sample. */
export interface CustomData {
  /** The dataset row. */
  row: Record<string, unknown>;
  /** 1-based line of the row in the dataset file (for error messages). */
  line: number;
}

function data(sample: TaskSample): CustomData {
  return sample.data as unknown as CustomData;
}

/** A row's value for a field name: the key itself, else a dotted path into nested objects. */
function lookup(row: Record<string, unknown>, field: string): unknown {
  if (Object.hasOwn(row, field)) return row[field];
  let cur: unknown = row;
  for (const part of field.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function asText(value: unknown): string {
  return typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** Rows are named 1-based with their file line: `row 3 (/data/qa.jsonl:3)`. */
function rowLabel(path: string, index: number, line: number): string {
  return `row ${index + 1} (${path}:${line})`;
}

/** Fills `{{field}}` placeholders from a row; a missing (or null) field is a DatasetError naming it and the row. */
export function renderTemplate(template: string, row: Record<string, unknown>, where: string): string {
  return template.replace(PLACEHOLDER, (_, field: string) => {
    const value = lookup(row, field);
    if (value === undefined || value === null) {
      throw new DatasetError(`custom: ${where} has no field "${field}" (used in config.params.extra.prompt_template)`);
    }
    return asText(value);
  });
}

/**
 * User patterns run on RE2 (re2js, pure JS): matching time is linear in the text, so no pattern can stall the
 * harness on pathological model output, as a backtracking engine can (`(a+)+$` on 50 kB of `a`s).
 */
const regexCache = new Map<string, RE2JS>();
function compiled(source: string): RE2JS {
  let re = regexCache.get(source);
  if (!re) regexCache.set(source, (re = RE2JS.compile(source)));
  return re;
}

/** What `answer_regex` extracts: the first capture group of the first match (whole match if it has no groups). */
export function extractByRegex(generation: string, source: string): string | null {
  const m = compiled(source).matcher(generation);
  if (!m.find()) return null;
  return m.groupCount() > 0 ? m.group(1) : m.group();
}

/** Scores one generation against a reference answer with the configured scorer. */
export function scoreCustom(generation: string, answer: string, extra: CustomExtra): SampleScore {
  switch (extra.scorer) {
    case 'exact': {
      const extracted = generation.trim();
      const want = answer.trim();
      const equal = extra.case_sensitive ? extracted === want : extracted.toLowerCase() === want.toLowerCase();
      return { score: equal ? 1 : 0, extracted };
    }
    case 'regex': {
      const raw = extractByRegex(generation, extra.answer_regex ?? '');
      const extracted = raw === null ? null : raw.trim();
      return { score: extracted !== null && extracted === answer.trim() ? 1 : 0, extracted };
    }
    case 'numeric': {
      const extracted = lastNumber(generation);
      const got = extracted === null ? null : parseNumber(extracted);
      const want = parseNumber(answer);
      const tolerance = extra.tolerance ?? 1e-6;
      return { score: got !== null && want !== null && Math.abs(got - want) <= tolerance ? 1 : 0, extracted };
    }
  }
}

export const custom: TaskDefinition = {
  ...BUILTIN_TASK_INFO.custom,

  async loadSamples(ctx) {
    const extra = parseCustomExtra(ctx.extra);
    const path = isAbsolute(extra.dataset_path) ? extra.dataset_path : resolve(ctx.datasetDir, extra.dataset_path);
    const rows = await readJsonl(path, 'custom dataset (config.params.extra.dataset_path)');
    if (rows.length === 0) throw new DatasetError(`custom: ${path} holds no rows`);
    const seen = new Map<string, number>();
    return rows.map(({ index, line, value: row }): TaskSample => {
      const where = rowLabel(path, index, line);
      renderTemplate(extra.prompt_template, row, where);
      const answer = lookup(row, extra.answer_field);
      if (answer === undefined || answer === null) {
        throw new DatasetError(`custom: ${where} has no answer field "${extra.answer_field}" (config.params.extra.answer_field)`);
      }
      const groundTruth = asText(answer);
      if (extra.scorer === 'numeric' && parseNumber(groundTruth) === null) {
        throw new DatasetError(`custom: ${where}: answer ${JSON.stringify(groundTruth)} is not a number (scorer "numeric")`);
      }
      let id = `custom-${index}`;
      if (extra.id_field !== undefined) {
        const raw = lookup(row, extra.id_field);
        if (raw === undefined || raw === null || asText(raw) === '') {
          throw new DatasetError(`custom: ${where} has no id field "${extra.id_field}" (config.params.extra.id_field)`);
        }
        id = asText(raw);
        const first = seen.get(id);
        if (first !== undefined) throw new DatasetError(`custom: ${where}: id "${id}" already used by row ${first + 1}`);
        seen.set(id, index);
      }
      const d: CustomData = { row, line };
      return { id, groundTruth, data: d as unknown as Record<string, unknown> };
    });
  },

  buildPrompt(sample, endpointType, params): Prompt {
    const extra = parseCustomExtra(params.extra);
    const { row, line } = data(sample);
    const text = renderTemplate(extra.prompt_template, row, `sample ${sample.id} (line ${line})`);
    if (endpointType === 'chat') {
      const messages: ChatMessage[] = [];
      if (extra.system_prompt) messages.push({ role: 'system', content: extra.system_prompt });
      messages.push({ role: 'user', content: text });
      return { kind: 'chat', messages };
    }
    return { kind: 'completions', prompt: extra.system_prompt ? `${extra.system_prompt}\n\n${text}` : text };
  },

  score(sample, generation, params) {
    return scoreCustom(generation, sample.groundTruth, parseCustomExtra(params.extra));
  },

  aggregate(scored) {
    return { metrics: accuracyMetrics(scored) };
  },
};
