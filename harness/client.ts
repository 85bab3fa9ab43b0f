/**
 * OpenAI-compatible client for chat and completions endpoints: one keep-alive undici Pool per run
 * (global fetch opens far more connections and is ~10x slower), bounded retries with exponential
 * backoff that honour `Retry-After`, and a per-attempt timeout.
 */
import { errors as undiciErrors, Pool, requestOnce } from './http.js';
import type { RequestLimiter, SlotOutcome } from './limiter.js';
import type { EndpointType, Prompt } from './tasks/types.js';

export interface GenerationParams {
  max_new_tokens?: number | null | undefined;
  temperature?: number | null | undefined;
  top_p?: number | null | undefined;
}

export interface EndpointClientOptions {
  /** Full URL of the chat or completions route, e.g. http://host:8000/v1/chat/completions */
  url: string;
  modelId: string;
  type: EndpointType;
  apiKey?: string | undefined;
  /** Upper bound on concurrent requests (pool connections). */
  parallelism: number;
  requestTimeoutMs: number;
  maxRetries: number;
  stream?: boolean;
  /** Backoff base; tests shorten it. */
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  /** Aborting it destroys the pool, failing every request in flight (one listener, not one per request). */
  signal?: AbortSignal;
  /**
   * Asked before each retry: true stops retrying at once (the endpoint is down, or the run stops sending) and the
   * request fails with `held` set, to be sent again later or not at all.
   */
  holdRetries?: () => boolean;
  /** Grants each attempt its slot (adaptive concurrency, a shared per-endpoint limit); told how the attempt ended. */
  limiter?: RequestLimiter;
}

export interface Completion {
  text: string;
  finishReason: string | null;
  promptTokens: number;
  completionTokens: number;
  /** Retries spent on this request. */
  retries: number;
  /** `message.reasoning_content` (or `reasoning`) of servers that return the reasoning apart from the answer. */
  reasoningContent?: string;
}

/** A request that failed for good: non-retryable status, or retries exhausted (or held). */
export class RequestFailedError extends Error {
  override name = 'RequestFailedError';
  constructor(
    message: string,
    readonly status: number | null,
    readonly retries: number,
    /** The endpoint's fault, not the request's: transport error, timeout or a retryable 5xx. */
    readonly endpointFault = false,
    /** Retries were stopped by `holdRetries`, not used up. */
    readonly held = false,
  ) {
    super(message);
  }
}

class RetryableError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly retryAfterMs: number | null = null,
    /** Connection refused/reset, timeout, a body cut off: nothing (complete) came back. */
    readonly transport = false,
  ) {
    super(message);
  }

  get endpointFault(): boolean {
    return this.transport || (this.status !== null && this.status >= 500);
  }

  /** The endpoint says it is saturated (429 Too Many Requests, 503 Service Unavailable): fewer requests at once. */
  get overload(): boolean {
    return this.status === 429 || this.status === 503;
  }
}

const RETRYABLE_STATUSES = new Set([408, 409, 425, 429, 500, 502, 503, 504]);
/** The prompt of an outage probe (recognisable in endpoint logs). */
export const PROBE_PROMPT = 'evalflow endpoint probe';
const MAX_RETRY_AFTER_MS = 300_000;

/** Builds the JSON body sent for one prompt; also the input of the response-cache key. */
export function buildRequestBody(prompt: Prompt, modelId: string, params: GenerationParams, stream: boolean): Record<string, unknown> {
  const body: Record<string, unknown> =
    prompt.kind === 'chat' ? { model: modelId, messages: prompt.messages } : { model: modelId, prompt: prompt.prompt };
  if (params.max_new_tokens != null) body.max_tokens = params.max_new_tokens;
  if (params.temperature != null) body.temperature = params.temperature;
  if (params.top_p != null) body.top_p = params.top_p;
  if (prompt.stop?.length) body.stop = prompt.stop;
  if (stream) body.stream = true;
  return body;
}

export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | null {
  const raw = Array.isArray(value) ? value[0] : value;
  if (!raw) return null;
  const seconds = Number(raw);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

export class EndpointClient {
  private readonly pool: Pool;
  private readonly path: string;
  private readonly headers: Record<string, string>;

  constructor(private readonly opts: EndpointClientOptions) {
    const url = new URL(opts.url);
    this.path = url.pathname + url.search;
    this.pool = new Pool(url.origin, {
      connections: opts.parallelism,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: opts.requestTimeoutMs,
      bodyTimeout: opts.requestTimeoutMs,
    });
    this.headers = { 'content-type': 'application/json' };
    if (opts.apiKey) this.headers.authorization = `Bearer ${opts.apiKey}`;
    opts.signal?.addEventListener('abort', () => void this.pool.destroy(new Error('aborted')).catch(() => undefined), { once: true });
  }

  /** Sends one request (a body, or its JSON) with retries. Throws RequestFailedError when it cannot succeed. */
  async send(body: Record<string, unknown> | string): Promise<Completion> {
    const payload = typeof body === 'string' ? body : JSON.stringify(body);
    const signal = this.opts.signal;
    const base = this.opts.retryBaseDelayMs ?? 500;
    const cap = this.opts.retryMaxDelayMs ?? 30_000;
    for (let attempt = 0; ; attempt++) {
      try {
        const completion = await this.limitedAttempt(payload);
        completion.retries = attempt;
        return completion;
      } catch (err) {
        if (signal?.aborted) throw err;
        if (!(err instanceof RetryableError)) {
          const status = err instanceof RequestFailedError ? err.status : null;
          throw new RequestFailedError((err as Error).message, status, attempt);
        }
        if (attempt >= this.opts.maxRetries) {
          throw new RequestFailedError(`${err.message} (gave up after ${attempt + 1} attempts)`, err.status, attempt, err.endpointFault);
        }
        const backoff = Math.min(cap, base * 2 ** attempt) * (0.5 + Math.random() / 2);
        // Honour Retry-After, within reason: a server asking for an hour would stall the sample.
        await sleep(err.retryAfterMs === null ? backoff : Math.min(err.retryAfterMs, MAX_RETRY_AFTER_MS), signal);
        if (this.opts.holdRetries?.()) {
          throw new RequestFailedError(`${err.message} (retries held after ${attempt + 1} attempts)`, err.status, attempt, err.endpointFault, true);
        }
      }
    }
  }

  /** One attempt holding a limiter slot (none while backing off), released with how it ended. */
  private async limitedAttempt(payload: string): Promise<Completion> {
    const slot = await this.opts.limiter?.acquire(this.opts.signal);
    let outcome: SlotOutcome = 'other';
    try {
      const completion = await this.attempt(payload);
      outcome = 'ok';
      return completion;
    } catch (err) {
      if (err instanceof RetryableError && err.overload) outcome = 'overload';
      throw err;
    } finally {
      slot?.release(outcome);
    }
  }

  private async attempt(payload: string): Promise<Completion> {
    let res;
    try {
      res = await this.pool.request({
        method: 'POST',
        path: this.path,
        headers: this.headers,
        body: payload,
        headersTimeout: this.opts.requestTimeoutMs,
        bodyTimeout: this.opts.requestTimeoutMs,
      });
    } catch (err) {
      if (this.opts.signal?.aborted) throw err;
      throw new RetryableError(describeNetworkError(err), null, null, true);
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (err) {
      throw new RetryableError(`reading response failed: ${describeNetworkError(err)}`, res.statusCode, null, true);
    }
    if (res.statusCode !== 200) {
      const detail = `HTTP ${res.statusCode}: ${text.slice(0, 200)}`;
      if (RETRYABLE_STATUSES.has(res.statusCode)) {
        throw new RetryableError(detail, res.statusCode, parseRetryAfter(res.headers['retry-after']));
      }
      throw new RequestFailedError(detail, res.statusCode, 0);
    }
    const parsed = this.opts.stream ? parseSse(text) : parseJson(text);
    if (!parsed) throw new RetryableError(`malformed response body: ${text.slice(0, 120)}`, 200);
    return this.toCompletion(parsed);
  }

  private toCompletion(data: OpenAIResponse): Completion {
    const choice = data.choices?.[0];
    const content = this.opts.type === 'chat' ? choice?.message?.content : choice?.text;
    // No text at all (null, missing, not a string) is a malformed response, not an empty answer: scoring it
    // as 0 and caching it would make the loss permanent. An empty string is an answer.
    if (typeof content !== 'string') {
      const field = this.opts.type === 'chat' ? 'choices[0].message.content' : 'choices[0].text';
      throw new RetryableError(`malformed response: no ${field} (${content === null ? 'null' : content === undefined ? 'missing' : typeof content})`, 200);
    }
    const reasoning = choice?.message?.reasoning_content ?? choice?.message?.reasoning;
    return {
      text: content,
      finishReason: choice?.finish_reason ?? null,
      promptTokens: data.usage?.prompt_tokens ?? 0,
      completionTokens: data.usage?.completion_tokens ?? 0,
      retries: 0,
      ...(typeof reasoning === 'string' && reasoning !== '' ? { reasoningContent: reasoning } : {}),
    };
  }

  /**
   * Does the endpoint answer? One tiny completion (max_tokens 1) on its own connection, so busy or hung pool
   * connections do not delay it. null when any status below 500 comes back (even 4xx: something is serving the
   * route), else what went wrong.
   */
  async probe(): Promise<string | null> {
    const body =
      this.opts.type === 'chat'
        ? { model: this.opts.modelId, messages: [{ role: 'user', content: PROBE_PROMPT }], max_tokens: 1 }
        : { model: this.opts.modelId, prompt: PROBE_PROMPT, max_tokens: 1 };
    try {
      const res = await requestOnce(this.opts.url, {
        method: 'POST',
        headers: this.headers,
        body: JSON.stringify(body),
        timeoutMs: this.opts.requestTimeoutMs,
        signal: this.opts.signal,
      });
      const text = res.text;
      return res.statusCode < 500 ? null : `HTTP ${res.statusCode}: ${text.slice(0, 200)}`;
    } catch (err) {
      return describeNetworkError(err);
    }
  }

  async close(): Promise<void> {
    if (!this.pool.destroyed) await this.pool.close();
  }
}

interface OpenAIResponse {
  choices?: Array<{ message?: { content?: unknown; reasoning_content?: unknown; reasoning?: unknown }; text?: unknown; finish_reason?: string | null }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number };
}

function parseJson(text: string): OpenAIResponse | null {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' ? (value as OpenAIResponse) : null;
  } catch {
    return null;
  }
}

/** Folds an SSE stream of chunks into one response (content concatenated, last finish_reason/usage kept). */
function parseSse(text: string): OpenAIResponse | null {
  let content: string | undefined;
  let reasoning = '';
  let finishReason: string | null = null;
  let usage: OpenAIResponse['usage'];
  let chunks = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('data:')) continue;
    const data = line.slice(5).trim();
    if (data === '[DONE]') break;
    const chunk = parseJson(data) as {
      choices?: Array<{ delta?: { content?: unknown; reasoning_content?: unknown; reasoning?: unknown }; text?: unknown; finish_reason?: string | null }>;
      usage?: OpenAIResponse['usage'];
    } | null;
    if (!chunk) return null;
    chunks++;
    const choice = chunk.choices?.[0];
    const piece = choice?.delta?.content ?? choice?.text;
    // A stream whose chunks never carry text (only roles, finish reasons) has no answer: left undefined.
    if (typeof piece === 'string') content = (content ?? '') + piece;
    const thought = choice?.delta?.reasoning_content ?? choice?.delta?.reasoning;
    if (typeof thought === 'string') reasoning += thought;
    if (choice?.finish_reason) finishReason = choice.finish_reason;
    if (chunk.usage) usage = chunk.usage;
  }
  if (chunks === 0) return null;
  return { choices: [{ message: { content, ...(reasoning ? { reasoning_content: reasoning } : {}) }, text: content, finish_reason: finishReason }], usage };
}

function describeNetworkError(err: unknown): string {
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) return 'request timed out';
  if (err instanceof Error) {
    const code = (err as { code?: string }).code;
    return code ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** Resolves after `ms`; rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
