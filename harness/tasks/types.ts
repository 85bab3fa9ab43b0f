/**
 * What a built-in benchmark provides to the harness engine. The engine owns everything generic
 * (dataset limiting, requests, retries, caching, progress, results files, several generations per sample); a task
 * only knows how to load its samples, turn one into a prompt, score one generation and aggregate scores into metrics.
 */
import type { Metrics, GroupResult } from '../results-schema.js';
import type { BuiltinTaskInfo } from './catalogue.js';

export type EndpointType = 'chat' | 'completions';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** A prompt for one sample: chat messages for chat endpoints, a plain prompt for completions endpoints. */
export type Prompt =
  | { kind: 'chat'; messages: ChatMessage[]; stop?: string[] }
  | { kind: 'completions'; prompt: string; stop?: string[] };

export interface TaskSample {
  /** Stable across runs and unique within the task (used for per-sample outputs and ordering). */
  id: string;
  /** Optional subset (e.g. MMLU subject) for per-subset metrics. */
  subset?: string;
  /** The reference answer as shown in per-sample outputs. */
  groundTruth: string;
  /** Task-specific data needed to build the prompt and score the answer. */
  data: Record<string, unknown>;
}

export interface SampleScore {
  /** Numeric score of the sample, usually 1 (correct) or 0. */
  score: number;
  /** What was extracted from the generation and compared (null when nothing could be extracted). */
  extracted: string | null;
  /** Task-specific per-sample results that `aggregate` needs beyond the score (e.g. IFEval's per-instruction verdicts). */
  details?: Record<string, unknown>;
}

/** A sample with the scores of its generations (`config.params.extra.n_samples` of them, 1 by default). */
export interface ScoredSample {
  sample: TaskSample;
  /** One score per generation, in generation order. */
  generations: readonly SampleScore[];
}

export interface TaskParams {
  /** `config.params.extra` of the run config: task-specific knobs (e.g. `subjects`, `num_fewshot`). */
  extra: Record<string, unknown>;
}

export interface LoadContext extends TaskParams {
  /** Directory holding the datasets (`<dataset_dir>/gsm8k/test.jsonl`, `<dataset_dir>/mmlu/test/*.csv`, …). */
  datasetDir: string;
}

/** What the engine tells a scorer about the run. */
export interface ScoreContext {
  /** The endpoint type the generation came from (its prompt was built for it). */
  endpointType: EndpointType;
  /** Aborts with the run: a scorer stops what it started (a sandboxed process). */
  signal?: AbortSignal;
}

export interface TaskAggregate {
  /** Metrics of the task itself: results.tasks.<task name>.metrics */
  metrics: Metrics;
  /** Optional per-subset breakdown: results.groups.<task name> (its `groups` hold one entry per subset). */
  group?: GroupResult;
}

/** A built-in task: what the catalogue says of it (catalogue.ts), and its code. */
export interface TaskDefinition extends BuiltinTaskInfo {
  /**
   * Samples in a deterministic order. `limit_samples` takes a prefix of this list, so a task whose samples
   * fall into subsets should interleave them (round-robin) to keep a small limit representative.
   */
  loadSamples(ctx: LoadContext): Promise<TaskSample[]>;
  buildPrompt(sample: TaskSample, endpointType: EndpointType, params: TaskParams): Prompt;
  /**
   * Scores one generation. May be asynchronous (running generated code in a sandbox is I/O): the engine scores off
   * the request path, so a slow scorer never holds a request slot.
   */
  score(sample: TaskSample, generation: string, params: TaskParams, context?: ScoreContext): SampleScore | Promise<SampleScore>;
  /**
   * How many `score` calls may run at once, for scorers that start processes (a sandbox each); unset: no limit
   * beyond the engine's window of samples in flight (right for scorers that return at once).
   */
  scoringConcurrency?(params: TaskParams): number;
  /**
   * What the scorer needs but this host lacks (a program on PATH …), said in a sentence; undefined when nothing is
   * missing. Checked before any request is sent: a run that could not score would spend the endpoint's work for nothing.
   */
  missingTools?(): string | undefined;
  /** `score_name` of the per-sample records: the metric the per-sample score stands for (default `accuracy`). */
  scoreName?: string;
  aggregate(scored: readonly ScoredSample[], params: TaskParams): TaskAggregate;
}
