/**
 * The built-in evaluation engine: loads a task's samples, sends them to the endpoint with bounded
 * concurrency, reuses cached responses, scores, and writes the upstream-format output files.
 */
import { PROGRESS_FILES } from '../core/harness-contract.js';
import type { Progress } from '../core/progress.js';
import { setMaxListeners } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { writeFileAtomic, writeJsonAtomic, writeYamlAtomic } from '../common/files.js';
import { evalflowVersion } from '../common/paths.js';
import { canonicalRequest, generationKey, ResponseCache, type CachedResponse } from './cache.js';
import { AdapterConfigError, InterceptorChain, planInterceptors, type ProcessedResponse } from './interceptors.js';
import { buildRequestBody, EndpointClient, RequestFailedError } from './client.js';
import { describeIoError, isIoError } from './lines.js';
import { AdaptiveLimiter, CombinedLimiter, Semaphore, type LimiterStats, type RequestLimiter } from './limiter.js';
import { EndpointOutageError, OutageGate, type OutageStats } from './outage.js';
import { HarnessRunConfigSchema, type HarnessRunConfig, type ResolvedHarnessRunConfig } from './run-config.js';
import { OrderedJsonlWriter } from './sample-outputs.js';
import { ENDPOINT_LIMITS_ENV, SharedEndpointLimiter } from './shared-limit.js';
import { RESULTS_FORMAT_VERSION, type EvalflowResultsFile, type SampleCounts } from './results-schema.js';
import { sampleMean } from './tasks/aggregate.js';
import { DatasetError, getBuiltinTask } from './tasks/index.js';
import type { EndpointType, Prompt, SampleScore, ScoredSample, TaskDefinition, TaskParams, TaskSample } from './tasks/types.js';

/** Invalid run config, environment or dataset: nothing was sent. */
export class HarnessConfigError extends Error {
  override name = 'HarnessConfigError';
  constructor(
    message: string,
    /** The dataset is the problem (missing, unreadable, malformed): the message names the file (and line). */
    readonly dataset = false,
  ) {
    super(message);
  }
}

/** The run was interrupted (SIGTERM / abort); responses so far are cached for a resume. */
export class InterruptedError extends Error {
  override name = 'InterruptedError';
}

/** Writing the run's files failed (ENOSPC, EIO, a vanished directory …): the run stops; responses written so far stay cached. */
export class StorageError extends Error {
  override name = 'StorageError';
}

export { EndpointOutageError };

/** Default of `endpoint_outage_timeout` when the launcher passes none (its `endpoint_readiness_timeout` default). */
export const DEFAULT_OUTAGE_TIMEOUT_S = 600;

/**
 * After the caller's signal (SIGTERM, SIGINT), the requests already sent get this long to come back, so that their
 * responses are cached and a resume sends none of them again; nothing new is sent meanwhile. Executors allow 10 s
 * between SIGTERM and SIGKILL (bench/resume.ts measures what a kill costs).
 */
export const DRAIN_MS = 5_000;

/** Upper bound of `n_samples` (generations per sample). */
export const MAX_GENERATIONS = 1000;

/** Keys of `config.params.extra` that belong to the engine, not to the task. */
const EngineExtraSchema = z.object({
  dataset_dir: z.string().min(1).optional(),
  /** Fraction of samples allowed to fail (after retries) before the run counts as failed. */
  max_error_rate: z.number().min(0).max(1).default(0),
  /** Seconds the endpoint may stay down (sending paused, probing) before the run fails. */
  endpoint_outage_timeout: z.number().positive().default(DEFAULT_OUTAGE_TIMEOUT_S),
  /** Generations per sample (upstream's name, as bigcode-evaluation-harness takes it): pass@k needs k or more. */
  n_samples: z.number().int().min(1).max(MAX_GENERATIONS).default(1),
  /**
   * Requests at once to this endpoint URL across the tasks of one invocation on one worker (the launcher passes
   * `execution.endpoint_parallelism` and the invocation id as the group); shared through the worker's socket.
   */
  endpoint_parallelism: z.number().int().min(1).optional(),
  endpoint_limit_group: z.string().min(1).optional(),
});
const ENGINE_EXTRA_KEYS = ['dataset_dir', 'max_error_rate', 'endpoint_outage_timeout', 'n_samples', 'endpoint_parallelism', 'endpoint_limit_group'];

/**
 * Scoring looks at the last 64 Ki characters of a generation at most (where final answers are): the answer-extracting
 * regexes are linear, but a multi-megabyte output must not hold the event loop for seconds. The per-sample outputs
 * keep the whole generation.
 */
export const MAX_SCORED_CHARS = 65_536;

export function scoredText(generation: string): string {
  return generation.length > MAX_SCORED_CHARS ? generation.slice(-MAX_SCORED_CHARS) : generation;
}

export type { Progress } from '../core/progress.js';

export interface RunOptions {
  runConfig: HarnessRunConfig;
  /** Environment for the API key (`api_key_name`) and NEMO_EVALUATOR_DATASET_DIR. Default process.env. */
  env?: Record<string, string | undefined>;
  signal?: AbortSignal;
  onProgress?: (progress: Progress) => void;
  /** How the run was started, recorded in results.yml. */
  command?: string;
  /** Test hook: shorter retry backoff. */
  retryBaseDelayMs?: number;
  /** Test hook: probe delays while the endpoint is down (default 1 s doubling to 10 s). */
  outageProbeDelayMs?: { initial: number; max: number };
  /** Lines for the log (endpoint outages); default: none. */
  log?: (line: string) => void;
  /** Test hook: how long requests in flight may finish after `signal` aborts (default DRAIN_MS). */
  drainMs?: number;
}

export interface RunOutcome {
  results: EvalflowResultsFile;
  outputDir: string;
  /** More samples failed than `max_error_rate` allows: the results are written but the run failed. */
  errorThresholdExceeded: boolean;
  errorMessage?: string;
}

/** Runs a write of the run's files; an fs error becomes a StorageError naming what was written. */
function storage<T>(doing: string, write: () => T): T {
  try {
    return write();
  } catch (err) {
    throw new StorageError(describeIoError(err, doing).message, { cause: err });
  }
}

/** One generation of a sample: its response (none when it failed or was never sent) and its score. */
interface GenerationResult {
  /** After the response interceptors (e.g. reasoning stripped): what is scored. */
  response: ProcessedResponse | undefined;
  cached: boolean;
  error: string | null;
  score: SampleScore | null;
}

/** A sample whose generations are being requested or scored. */
interface SampleInFlight {
  sample: TaskSample;
  prompt: Prompt;
  body: Record<string, unknown>;
  /** The canonical request JSON and its cache key (generation 0's; see generationKey). */
  json: string;
  key: string;
  results: GenerationResult[];
  /** Generations not settled yet. */
  left: number;
  /** A generation was never sent (the error budget was spent): the sample has no record. */
  notRun: boolean;
}

/** The per-generation fields of a per-sample record. */
interface GenerationRecord {
  generation: string | null;
  /** What the reasoning interceptor took out of the generation (present only when it took something). */
  reasoning?: string;
  answer: string | null;
  score: number | null;
  num_generated_tokens: number;
  finish_reason: string | null;
  cached: boolean;
  error: string | null;
}

/**
 * A line of the per-sample outputs (upstream's fields plus ours). With several generations (`n_samples`), the
 * top-level generation fields are the first generation's, `score` is the sample's (the mean over its generations),
 * `num_generated_tokens` the sum, and `generations` holds every generation.
 */
interface SampleRecord extends GenerationRecord {
  id: string;
  sub_query_id: string | null;
  query: string;
  ground_truth: string;
  score_name: string;
  num_prompt_tokens: number;
  generations?: GenerationRecord[];
}

function generationRecord(r: GenerationResult): GenerationRecord {
  return {
    generation: r.response?.text ?? null,
    ...(r.response?.reasoning ? { reasoning: r.response.reasoning } : {}),
    answer: r.score?.extracted ?? null,
    score: r.score?.score ?? null,
    num_generated_tokens: r.response?.completionTokens ?? 0,
    finish_reason: r.response?.finishReason ?? null,
    cached: r.cached,
    error: r.error,
  };
}

function sampleRecord(st: SampleInFlight, error: string | null, scoreName: string, score: number | null): SampleRecord {
  const first = st.results[0] as GenerationResult;
  const record: SampleRecord = {
    id: st.sample.id,
    sub_query_id: st.sample.subset ?? null,
    query: promptText(st.prompt),
    ...generationRecord(first),
    ground_truth: st.sample.groundTruth,
    score,
    score_name: scoreName,
    num_prompt_tokens: first.response?.promptTokens ?? 0,
    error,
  };
  if (st.results.length > 1) {
    record.generations = st.results.map(generationRecord);
    record.num_generated_tokens = record.generations.reduce((sum, g) => sum + g.num_generated_tokens, 0);
    record.cached = record.generations.every((g) => g.cached);
  }
  return record;
}

/** What aggregation keeps of a score: not the extracted text (for `exact`, the whole answer). */
function leanScore(score: SampleScore): SampleScore {
  return score.details ? { score: score.score, extracted: null, details: score.details } : { score: score.score, extracted: null };
}

export function parseRunConfig(input: unknown): ResolvedHarnessRunConfig {
  const parsed = HarnessRunConfigSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new HarnessConfigError(`run config ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

export async function runEvaluation(opts: RunOptions): Promise<RunOutcome> {
  const startedAt = new Date();
  const env = opts.env ?? process.env;
  const cfg = parseRunConfig(opts.runConfig);
  const task = lookupTask(cfg.config.type);
  const endpoint = cfg.target.api_endpoint;
  const supported = cfg.config.supported_endpoint_types ?? task.supportedEndpointTypes;
  const endpointType: EndpointType = endpoint.type ?? (supported[0] as EndpointType);
  if (!supported.includes(endpointType) || !task.supportedEndpointTypes.includes(endpointType)) {
    throw new HarnessConfigError(`target.api_endpoint.type: task ${task.name} supports ${supported.join(', ')}, not ${endpointType}`);
  }

  const params = { ...task.defaultParams, ...stripNullish(cfg.config.params) };
  const extra = { ...task.defaultParams.extra, ...(cfg.config.params.extra ?? {}) };
  const engineExtra = EngineExtraSchema.safeParse(pick(extra, ENGINE_EXTRA_KEYS));
  if (!engineExtra.success) {
    const issue = engineExtra.error.issues[0];
    throw new HarnessConfigError(`config.params.extra.${issue?.path.join('.')}: ${issue?.message}`);
  }
  const taskParams: TaskParams = { extra: omit(extra, ENGINE_EXTRA_KEYS) };
  const datasetDir = engineExtra.data.dataset_dir ?? env.NEMO_EVALUATOR_DATASET_DIR;
  if (!datasetDir) {
    throw new HarnessConfigError('no dataset directory: set config.params.extra.dataset_dir or NEMO_EVALUATOR_DATASET_DIR');
  }
  const missing = task.missingTools?.();
  if (missing) throw new HarnessConfigError(`${task.name}: ${missing}`);
  let apiKey: string | undefined;
  if (endpoint.api_key_name) {
    apiKey = env[endpoint.api_key_name];
    if (!apiKey) {
      throw new HarnessConfigError(
        `target.api_endpoint.api_key_name names ${endpoint.api_key_name}, but that environment variable is not set`,
      );
    }
  }

  let interceptors: ReturnType<typeof planInterceptors>;
  try {
    interceptors = planInterceptors(endpoint.adapter_config);
  } catch (err) {
    if (err instanceof AdapterConfigError) throw new HarnessConfigError(err.message);
    throw err;
  }

  const outputDir = resolve(cfg.config.output_dir);
  const resolvedConfig = {
    ...cfg,
    config: { ...cfg.config, type: task.name, output_dir: outputDir, params: { ...params, extra } },
    target: { api_endpoint: { ...endpoint, type: endpointType } },
  };
  storage(`writing ${join(outputDir, 'run_config.yml')}`, () => {
    mkdirSync(outputDir, { recursive: true });
    writeYamlAtomic(join(outputDir, 'run_config.yml'), resolvedConfig);
  });

  let samples: TaskSample[];
  try {
    samples = limitSamples(await task.loadSamples({ datasetDir: resolve(datasetDir), ...taskParams }), params.limit_samples);
  } catch (err) {
    throw new HarnessConfigError(`loading ${task.name} samples from ${datasetDir}: ${(err as Error).message}`, err instanceof DatasetError);
  }

  // One way to stop everything at once: the user's signal (after the drain below), a failed background write, an
  // endpoint gone for good.
  const run = new AbortController();
  const signal = run.signal;
  // Every request waiting for a slot or for room listens on it (and stops listening when served): not a leak.
  setMaxListeners(0, signal);
  /** The caller's signal came: nothing new is sent; what is in flight may finish for `drainMs`, then everything stops. */
  let interrupted = false;
  let drainTimer: NodeJS.Timeout | undefined;
  const onInterrupt = () => {
    interrupted = true;
    stopSending = true;
    drainTimer = setTimeout(() => run.abort(opts.signal?.reason ?? new InterruptedError('interrupted')), opts.drainMs ?? DRAIN_MS);
  };
  let fatal: Error | undefined;
  const failRun = (err: Error) => {
    if (fatal || opts.signal?.aborted) return;
    fatal = err;
    run.abort(err);
  };
  const onWriteError = (err: Error) => failRun(new StorageError(err.message, { cause: err }));
  const log = opts.log ?? (() => undefined);

  const sharedCap = env[ENDPOINT_LIMITS_ENV] ? undefined : engineExtra.data.endpoint_parallelism;
  const parallelism = Math.min(params.parallelism ?? 1, sharedCap ?? Infinity);
  for (const line of interceptors.ignored) log(line);
  const chain = new InterceptorChain(interceptors.links, { outputDir, log });
  // The interceptor chain around the endpoint client; its caching link (if any) decides where the cache lives.
  const cacheDir = chain.cacheDir;
  const cacheFile = cacheDir === undefined ? undefined : join(resolve(outputDir, cacheDir), 'responses.jsonl');
  const cache = cacheFile === undefined ? undefined : storage(`opening ${cacheFile}`, () => ResponseCache.open(cacheFile, onWriteError));
  chain.attachCache(cache);
  const samplesFile = join(outputDir, 'nemo-evaluator-per-sample-outputs', `${task.name}.jsonl`);
  let outputs: OrderedJsonlWriter;
  try {
    outputs = new OrderedJsonlWriter(samplesFile, Math.max(256, 4 * parallelism), onWriteError);
  } catch (err) {
    cache?.close();
    throw new StorageError((err as Error).message, { cause: err });
  }
  /** The error budget is spent, or the run was interrupted: nothing more is sent (samples already in flight finish). */
  let stopSending = false;
  if (opts.signal?.aborted) onInterrupt();
  else opts.signal?.addEventListener('abort', onInterrupt, { once: true });
  const gate: OutageGate = new OutageGate({
    url: endpoint.url,
    limitMs: engineExtra.data.endpoint_outage_timeout * 1000,
    limitSource: 'config.params.extra.endpoint_outage_timeout',
    probe: () => client.probe(),
    initialDelayMs: opts.outageProbeDelayMs?.initial,
    maxDelayMs: opts.outageProbeDelayMs?.max,
    signal,
    onChange: (_state, detail) => log(detail),
  });
  // `parallelism` is the hard cap; the limit under it shrinks on 429/503 and recovers (harness/limiter.ts).
  const ownLimit = new AdaptiveLimiter(parallelism, (limit, why) => {
    if (why === 'overload') log(`endpoint overloaded (429/503): at most ${limit} requests at once now (parallelism ${parallelism})`);
  });
  const sharedLimit = sharedEndpointLimit(engineExtra.data, endpoint.url, env, log);
  const limiter: RequestLimiter = sharedLimit ? new CombinedLimiter([ownLimit, sharedLimit]) : ownLimit;
  const client = new EndpointClient({
    limiter,
    url: endpoint.url,
    modelId: endpoint.model_id,
    type: endpointType,
    apiKey,
    parallelism,
    requestTimeoutMs: (params.request_timeout ?? 60) * 1000,
    maxRetries: params.max_retries ?? 5,
    stream: endpoint.stream ?? false,
    retryBaseDelayMs: opts.retryBaseDelayMs,
    signal,
    holdRetries: () => stopSending || !gate.isUp,
  });
  const route = endpointType === 'chat' ? 'chat' : 'completions';
  const generations = engineExtra.data.n_samples;
  const progress: Progress = { total: samples.length, done: 0, cached: 0, errors: 0 };
  const scored: Array<ScoredSample | undefined> = new Array<ScoredSample | undefined>(samples.length);
  const usage = { prompt_tokens: 0, completion_tokens: 0, retries: 0, requests: 0 };
  const allowedErrors = Math.floor(engineExtra.data.max_error_rate * samples.length);
  const progressWriter = new ProgressWriter(outputDir, progress, opts.onProgress, onWriteError);
  const scoreName = task.scoreName ?? 'accuracy';
  /** Samples whose generations are being requested or scored (the window of the outputs writer bounds them). */
  const inFlight = new Map<number, SampleInFlight>();
  /** Scoring that runs after its request slot was freed (asynchronous scorers), until it settles. */
  const scoring = new Set<Promise<void>>();
  const scoringSlots = task.scoringConcurrency ? new Semaphore(task.scoringConcurrency(taskParams)) : undefined;

  const sampleInFlight = (index: number): SampleInFlight => {
    let st = inFlight.get(index);
    if (!st) {
      const sample = samples[index] as TaskSample;
      const prompt = task.buildPrompt(sample, endpointType, taskParams);
      const body = chain.prepareRequest(buildRequestBody(prompt, endpoint.model_id, params, false));
      st = { sample, prompt, body, ...canonicalRequest(route, body), results: new Array<GenerationResult>(generations), left: generations, notRun: false };
      inFlight.set(index, st);
    }
    return st;
  };

  /** The response to one generation of a sample: from the cache, else from the endpoint; null: not sent (the error budget is spent). */
  const requestGeneration = async (st: SampleInFlight, generation: number): Promise<Omit<GenerationResult, 'score'> | null> => {
    const key = generationKey(st.key, generation);
    let response: CachedResponse | undefined = chain.cached(key);
    const cached = response !== undefined;
    let error: string | null = null;
    let resentAfterProbe = false;
    while (!response && error === null) {
      if (stopSending) return null;
      if (!gate.isUp) await gate.whenUp();
      try {
        const completion = await client.send(endpoint.stream ? { ...st.body, stream: true } : st.json);
        usage.requests++;
        usage.retries += completion.retries;
        usage.prompt_tokens += completion.promptTokens;
        usage.completion_tokens += completion.completionTokens;
        response = {
          text: completion.text,
          finishReason: completion.finishReason,
          promptTokens: completion.promptTokens,
          completionTokens: completion.completionTokens,
        };
        if (completion.reasoningContent !== undefined) response.reasoningContent = completion.reasoningContent;
        chain.store(key, response);
      } catch (err) {
        if (signal.aborted) throw new InterruptedError('interrupted');
        if (!(err instanceof RequestFailedError)) throw err;
        usage.retries += err.retries;
        if (err.held) continue; // the endpoint is down or sending stopped: decided at the top of the loop
        chain.checkFailure(err.status, err.message);
        if (err.endpointFault) {
          // Down: wait for it and send again (not an error of this sample). Up: a transport failure may have been
          // the tail of an outage that just ended, so it gets one more round; a 5xx from a live endpoint is the sample's.
          if ((await gate.check()) === 'down') continue;
          if (err.status === null && !resentAfterProbe) {
            resentAfterProbe = true;
            continue;
          }
        }
        error = err.message;
      }
    }
    return { response: response && chain.processResponse(response, cached), cached, error };
  };

  /** A sample whose generations have all settled: its record, its score, the counts. */
  const finishSample = (index: number, st: SampleInFlight) => {
    inFlight.delete(index);
    if (st.notRun) {
      outputs.put(index, null);
      return;
    }
    const results = st.results;
    const error = results.find((r) => r.error !== null)?.error ?? null;
    if (error === null) {
      // Aggregation needs the scores and the task's details, not the extracted text (for `exact`, the whole answer).
      scored[index] = { sample: st.sample, generations: results.map(({ score }) => leanScore(score as SampleScore)) };
    }
    outputs.put(index, sampleRecord(st, error, scoreName, error === null ? sampleMean(scored[index] as ScoredSample) : null));
    progress.done++;
    if (results.every((r) => r.cached)) progress.cached++;
    if (error !== null) {
      progress.errors++;
      if (progress.errors > allowedErrors) stopSending = true;
    }
  };

  const settle = (index: number, st: SampleInFlight, generation: number, result: GenerationResult) => {
    st.results[generation] = result;
    if (--st.left === 0) finishSample(index, st);
  };

  /** Scores a generation; an asynchronous scorer runs detached from the request slot (tracked in `scoring`). */
  const scoreGeneration = (index: number, st: SampleInFlight, generation: number, got: Omit<GenerationResult, 'score'> & { response: CachedResponse }) => {
    const text = scoredText(got.response.text);
    const done = (score: SampleScore) => settle(index, st, generation, { ...got, score });
    const context = { endpointType, signal };
    const result = scoringSlots
      ? scoringSlots.run(() => task.score(st.sample, text, taskParams, context), signal)
      : task.score(st.sample, text, taskParams, context);
    if (!(result instanceof Promise)) {
      done(result);
      return;
    }
    const tracked: Promise<void> = result.then(done, (err: unknown) => failRun(signal.aborted ? new InterruptedError('interrupted') : (err as Error))).finally(() => scoring.delete(tracked));
    scoring.add(tracked);
  };

  /** One unit of work: generation `unit % generations` of sample `unit / generations`. */
  const evaluateUnit = async (unit: number) => {
    const index = generations === 1 ? unit : Math.floor(unit / generations);
    const generation = unit - index * generations;
    if (!outputs.hasRoom(index)) await outputs.waitForRoom(index, signal);
    const st = sampleInFlight(index);
    const got = await requestGeneration(st, generation);
    if (got === null) {
      st.notRun = true;
      settle(index, st, generation, { response: undefined, cached: false, error: null, score: null });
    } else if (got.response === undefined) {
      settle(index, st, generation, { ...got, score: null });
    } else {
      scoreGeneration(index, st, generation, { ...got, response: got.response });
    }
  };

  try {
    await runPool(
      samples.length * generations,
      parallelism,
      async (unit) => {
        try {
          await evaluateUnit(unit);
        } catch (err) {
          failRun(err as Error);
          throw err;
        }
      },
      signal,
      () => stopSending || fatal !== undefined,
    );
    while (scoring.size > 0) await Promise.all(scoring);
    if (fatal) throw fatal;
    // Drained: the responses that came back are cached (below); an interrupted run writes no results.
    if (interrupted) throw new InterruptedError('interrupted');
    progressWriter.stop();
    await chain.drain();
    if (cache) storage(`closing ${cacheFile}`, () => cache.close());
    storage(`writing ${samplesFile}`, () => outputs.finish());
  } catch (err) {
    // Sandboxed scorers still running stop with the run (their processes are killed) before the files are closed.
    if (!run.signal.aborted) run.abort(err);
    await Promise.allSettled(scoring);
    progressWriter.abandon();
    try {
      cache?.close();
    } catch {
      // already failing: the first error is the one reported
    }
    outputs.abandon();
    sharedLimit?.close();
    clearTimeout(drainTimer);
    opts.signal?.removeEventListener('abort', onInterrupt);
    await client.close();
    if (opts.signal?.aborted) {
      try {
        writeFileSync(join(outputDir, '.nemo_evaluator_interrupted'), `${new Date().toISOString()}\n`);
      } catch {
        // the marker is a courtesy; the interruption is reported either way
      }
      throw new InterruptedError(`interrupted after ${progress.done} of ${progress.total} samples`);
    }
    const cause = fatal ?? err;
    if (cause instanceof EndpointOutageError || cause instanceof StorageError) throw cause;
    if (isIoError(cause)) throw new StorageError(describeIoError(cause, `reading or writing the files in ${outputDir}`).message, { cause });
    throw cause;
  }
  sharedLimit?.close();
  clearTimeout(drainTimer);
  opts.signal?.removeEventListener('abort', onInterrupt);
  await client.close();
  if (fatal) throw fatal;

  const scoredSamples = scored.filter((s): s is ScoredSample => s !== undefined);
  const aggregate = task.aggregate(scoredSamples, taskParams);
  const notRun = samples.length - progress.done;
  const counts: SampleCounts = {
    total: samples.length,
    scored: scoredSamples.length,
    errors: progress.errors,
    cached: progress.cached,
    ...(notRun > 0 ? { not_run: notRun } : {}),
  };
  const endedAt = new Date();
  const versioning = { evalflow: evalflowVersion(), node: process.version, results_format: RESULTS_FORMAT_VERSION };
  const results: EvalflowResultsFile = {
    evalflow_results_version: RESULTS_FORMAT_VERSION,
    command: opts.command ?? 'evaluate()',
    config: resolvedConfig.config,
    target: resolvedConfig.target,
    results: {
      tasks: { [task.name]: { metrics: aggregate.metrics } },
      ...(aggregate.group ? { groups: { [task.name]: aggregate.group } } : {}),
    },
    samples: counts,
    metadata: { versioning },
  };

  storage(`writing the results in ${outputDir}`, () => {
    writeYamlAtomic(join(outputDir, 'results.yml'), results);
    writeJsonAtomic(join(outputDir, 'eval_factory_metrics.json'), mergeMetrics(outputDir, startedAt, endedAt, usage, progress, gate.stats, ownLimit.stats, chain.metrics()));
    writeYamlAtomic(join(outputDir, 'metadata.yaml'), { versioning, ...(cfg.metadata ? { launcher: cfg.metadata } : {}) });
  });

  const errorThresholdExceeded = progress.errors > allowedErrors;
  return {
    results,
    outputDir,
    errorThresholdExceeded,
    ...(errorThresholdExceeded
      ? {
          errorMessage:
            `${progress.errors} of ${samples.length} samples failed after retries (max_error_rate ${engineExtra.data.max_error_rate} allows ${allowedErrors})` +
            `${notRun > 0 ? `; stopped sending, ${notRun} samples not run` : ''}; see ${samplesFile}`,
        }
      : {}),
  };
}

/**
 * The shared per-endpoint limit, when the launcher asked for one (`endpoint_parallelism`) and the worker serves it
 * (`EVALFLOW_ENDPOINT_LIMITS`). Without the worker's socket (run_eval alone, a container), the task's own parallelism
 * is lowered to it instead.
 */
function sharedEndpointLimit(
  extra: { endpoint_parallelism?: number | undefined; endpoint_limit_group?: string | undefined },
  url: string,
  env: Record<string, string | undefined>,
  log: (line: string) => void,
): SharedEndpointLimiter | undefined {
  const socket = env[ENDPOINT_LIMITS_ENV];
  if (extra.endpoint_parallelism === undefined || !socket) return undefined;
  return new SharedEndpointLimiter(socket, `${extra.endpoint_limit_group ?? ''}\n${url}`, extra.endpoint_parallelism, log);
}

function lookupTask(name: string): TaskDefinition {
  try {
    return getBuiltinTask(name);
  } catch (err) {
    throw new HarnessConfigError(`config.type: ${(err as Error).message}`);
  }
}

/** `limit_samples`: a count, or a fraction of the dataset when below 1. Takes a prefix (tasks order samples representatively). */
export function limitSamples<T>(samples: T[], limit: number | null | undefined): T[] {
  if (limit == null) return samples;
  const n = limit < 1 ? Math.ceil(samples.length * limit) : Math.floor(limit);
  return samples.slice(0, n);
}

/** Runs `fn(i)` for i in [0, n) with at most `concurrency` in flight; stops at the first error or when told to. */
export async function runPool(
  n: number,
  concurrency: number,
  fn: (index: number) => Promise<void>,
  signal?: AbortSignal,
  /** Checked before each new index: true stops taking more (what is running finishes). */
  shouldStop?: () => boolean,
): Promise<void> {
  if (!(concurrency >= 1)) throw new RangeError(`concurrency must be at least 1, got ${concurrency}`);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < n && !shouldStop?.()) {
      if (signal?.aborted) throw new InterruptedError('interrupted');
      const index = next++;
      try {
        await fn(index);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(concurrency, n) }, worker));
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
}

/**
 * Writes `progress` (upstream: an integer) and `progress.json` at most every 500 ms. A failed write in the timer
 * (ENOSPC …) goes to `onError`, which ends the run: a timer must never throw (that kills the process unreported).
 */
class ProgressWriter {
  private readonly timer: NodeJS.Timeout;
  private lastWritten = -1;

  constructor(
    private readonly outputDir: string,
    private readonly progress: Progress,
    private readonly onProgress: ((p: Progress) => void) | undefined,
    private readonly onError: (err: Error) => void,
  ) {
    this.flush();
    this.timer = setInterval(() => {
      try {
        this.flush();
      } catch (err) {
        clearInterval(this.timer);
        this.onError(err as Error);
      }
    }, 500);
    this.timer.unref();
  }

  /** Writes the files when progress moved; throws a StorageError naming the file when that fails. */
  flush(): void {
    if (this.progress.done === this.lastWritten) return;
    this.lastWritten = this.progress.done;
    storage(`writing ${join(this.outputDir, PROGRESS_FILES.count)}`, () => {
      writeFileAtomic(join(this.outputDir, PROGRESS_FILES.count), `${this.progress.done}
`);
      writeFileAtomic(join(this.outputDir, PROGRESS_FILES.json), JSON.stringify(this.progress));
    });
    this.onProgress?.({ ...this.progress });
  }

  stop(): void {
    clearInterval(this.timer);
    this.flush();
  }

  /** Stops after a failure: one last best-effort write (so a resume sees how far this run got). */
  abandon(): void {
    try {
      this.stop();
    } catch {
      // the run is already failing; its own error is the one reported
    }
  }
}

/** eval_factory_metrics.json accumulates across resumed attempts (runtime, tokens, requests). */
function mergeMetrics(
  outputDir: string,
  startedAt: Date,
  endedAt: Date,
  usage: { prompt_tokens: number; completion_tokens: number; retries: number; requests: number },
  progress: Progress,
  outages: OutageStats,
  concurrency: LimiterStats,
  /** What the response interceptors collected in this attempt (response_stats, reasoning). */
  collected: ReturnType<InterceptorChain['metrics']>,
): Record<string, unknown> {
  const file = join(outputDir, 'eval_factory_metrics.json');
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as PreviousMetrics) : undefined;
  const prevEval = previous?.evaluation;
  const runtime = (endedAt.getTime() - startedAt.getTime()) / 1000 + (prevEval?.runtime_seconds ?? 0);
  const prompt = usage.prompt_tokens + (prevEval?.token_usage?.prompt_tokens ?? 0);
  const completion = usage.completion_tokens + (prevEval?.token_usage?.completion_tokens ?? 0);
  return {
    evaluation: {
      runtime_seconds: runtime,
      start_time: prevEval?.start_time ?? startedAt.toISOString(),
      end_time: endedAt.toISOString(),
      token_usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
      peak_memory_bytes: Math.max(process.resourceUsage().maxRSS * 1024, prevEval?.peak_memory_bytes ?? 0),
      attempts: (prevEval?.attempts ?? 0) + 1,
    },
    response_stats: {
      requests_sent: usage.requests + (previous?.response_stats?.requests_sent ?? 0),
      retries: usage.retries + (previous?.response_stats?.retries ?? 0),
      cached_samples: progress.cached,
      failed_samples: progress.errors,
      endpoint_outages: outages.outages + (previous?.response_stats?.endpoint_outages ?? 0),
      endpoint_outage_seconds: outages.downMs / 1000 + (previous?.response_stats?.endpoint_outage_seconds ?? 0),
      // This attempt's adaptive concurrency: the cap, the lowest and the final limit, overload answers (429/503).
      concurrency: { parallelism: concurrency.max, lowest_limit: concurrency.lowest, final_limit: concurrency.limit, overload_responses: concurrency.overloads },
      ...collected.response_stats,
    },
    ...(collected.reasoning ? { reasoning: collected.reasoning } : {}),
  };
}

interface PreviousMetrics {
  evaluation?: {
    runtime_seconds?: number;
    start_time?: string;
    token_usage?: { prompt_tokens?: number; completion_tokens?: number };
    peak_memory_bytes?: number;
    attempts?: number;
  };
  response_stats?: { requests_sent?: number; retries?: number; endpoint_outages?: number; endpoint_outage_seconds?: number };
}

function promptText(prompt: Prompt): string {
  return prompt.kind === 'chat' ? (prompt.messages[prompt.messages.length - 1]?.content ?? '') : prompt.prompt;
}

function stripNullish<T extends Record<string, unknown>>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== null && v !== undefined)) as Partial<T>;
}

function pick(obj: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => k in obj).map((k) => [k, obj[k]]));
}

function omit(obj: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => !keys.includes(k)));
}

/** Reads a run config YAML file (the run_eval `--run_config` argument). */
export function readRunConfigFile(file: string): unknown {
  try {
    return parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new HarnessConfigError(`${file}: ${(err as Error).message}`);
  }
}
