/**
 * Per-sample scores of a job (`artifacts/nemo-evaluator-per-sample-outputs/<task>.jsonl`), read as a
 * stream (a run may have 100k samples) and validated line by line, and the pairing of two runs'
 * samples by id.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { z } from 'zod';

/** The fields of a per-sample record that a comparison needs (upstream's record has more; they pass). */
const SampleRecordSchema = z.object({
  id: z.union([z.string().min(1), z.number()]).transform(String),
  score: z.number().finite().nullable(),
  score_name: z.string().optional(),
  sub_query_id: z.union([z.string(), z.number()]).nullish().transform((v) => (v == null ? null : String(v))),
  error: z.string().nullish(),
});

export interface SampleScore {
  /** null: the sample failed (no answer) or was not scored. */
  score: number | null;
  /** Subset of the sample (e.g. the MMLU subject), when the task has subsets. */
  subset: string | null;
}

export interface SampleScores {
  /** `score_name` of the records (the metric the per-sample score belongs to), e.g. `accuracy`. */
  scoreName: string | null;
  byId: Map<string, SampleScore>;
}

export class SampleFileError extends Error {
  override name = 'SampleFileError';
}

export async function readSampleScores(file: string): Promise<SampleScores> {
  const byId = new Map<string, SampleScore>();
  let scoreName: string | null = null;
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      throw new SampleFileError(`${file}:${lineNo}: not JSON`);
    }
    const parsed = SampleRecordSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new SampleFileError(`${file}:${lineNo}: invalid at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
    }
    const record = parsed.data;
    if (byId.has(record.id)) throw new SampleFileError(`${file}:${lineNo}: sample id '${record.id}' appears twice`);
    if (record.score_name !== undefined) {
      if (scoreName !== null && scoreName !== record.score_name) {
        throw new SampleFileError(`${file}:${lineNo}: mixed score names '${scoreName}' and '${record.score_name}'`);
      }
      scoreName = record.score_name;
    }
    byId.set(record.id, { score: record.error ? null : record.score, subset: record.sub_query_id });
  }
  return { scoreName, byId };
}

export interface AlignedSamples {
  /** Samples scored in both runs, in A's order. */
  a: number[];
  b: number[];
  /** Subset of each pair (A's; null when the task has none). */
  subsets: Array<string | null>;
  /** Sample ids present in only one run. */
  onlyA: number;
  onlyB: number;
  /** Samples present in both but unscored (failed) in one or both. */
  unscored: number;
}

/** Pairs two runs' samples by id; only samples scored in both enter the paired statistics. */
export function alignSamples(a: SampleScores, b: SampleScores): AlignedSamples {
  const out: AlignedSamples = { a: [], b: [], subsets: [], onlyA: 0, onlyB: 0, unscored: 0 };
  for (const [id, sa] of a.byId) {
    const sb = b.byId.get(id);
    if (!sb) {
      out.onlyA++;
      continue;
    }
    if (sa.score === null || sb.score === null) {
      out.unscored++;
      continue;
    }
    out.a.push(sa.score);
    out.b.push(sb.score);
    out.subsets.push(sa.subset);
  }
  for (const id of b.byId.keys()) if (!a.byId.has(id)) out.onlyB++;
  return out;
}
