/**
 * OpenAI-compatible HTTP server over node-llama-cpp: the CPU "llama.cpp" deployment of evalflow.
 *
 * Endpoints (each also answers without the `/v1` prefix, like llama.cpp's server):
 *   GET  /health                 200 {"status":"ok"} once loaded (503 {"status":"loading"} before)
 *   GET  /v1/models              {object:"list", data:[{id, object:"model", ...}]}
 *   GET  /v1/models/{id}
 *   POST /v1/chat/completions    messages → the model's own Jinja chat template (from the GGUF)
 *   POST /v1/completions         raw prompt (special tokens such as <|im_start|> are parsed)
 *
 * Both generation endpoints take max_tokens / max_completion_tokens, temperature (0 = greedy and
 * deterministic), top_p, stop (string | string[]), seed, n (1 only), stream (+ stream_options.include_usage),
 * frequency_penalty / presence_penalty, and the llama.cpp extensions top_k, min_p, repeat_penalty.
 *
 * Concurrency: one llama context with `parallel` sequences; a request takes a free sequence (cleared first,
 * so every request starts from an empty KV cache and greedy output does not depend on earlier requests)
 * and waits in a FIFO queue when all are busy. A client that disconnects aborts its generation.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo } from 'node:net';
import {
  getLlama,
  JinjaTemplateChatWrapper,
  LlamaChat,
  LlamaCompletion,
  LlamaLogLevel,
  resolveChatWrapper,
  type ChatHistoryItem,
  type ChatWrapper,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';

export const DEFAULT_MODEL_ID = 'smollm2-135m-instruct';
const DEFAULT_CONTEXT_SIZE = 4096;
const DEFAULT_PARALLEL = 2;
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_QUEUE = 4096;
const MAX_STOP_SEQUENCES = 16;

export interface ModelServerOptions {
  modelPath: string;
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  modelId?: string;
  /** Context size of each sequence, in tokens (default 4096; SmolLM2 was trained with 8192). */
  contextSize?: number;
  /** Requests decoded at once (sequences of the llama context); more are queued. Default 2. */
  parallel?: number;
  /**
   * CPU threads for decoding. Default: env EVALFLOW_MODEL_THREADS, else 1. A 135M model gains little
   * from more, and llama.cpp's spinning thread barrier collapses (≈1 tok/s) when its threads outnumber
   * the cores that are actually free, as on a 2-core machine that also runs Temporal and the tests.
   */
  threads?: number;
  log?: (line: string) => void;
  /** Also log one line per generation (tokens, seconds, tok/s). Default false. */
  logRequests?: boolean;
}

export interface ModelServer {
  /** http://host:port */
  url: string;
  port: number;
  modelId: string;
  /** Milliseconds spent loading the backend, the weights and the context. */
  loadMs: number;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Errors

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = status >= 500 ? 'server_error' : 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

const badRequest = (message: string, param: string | null = null, code: string | null = null): HttpError =>
  new HttpError(400, message, 'invalid_request_error', param, code);

function errorBody(err: HttpError): { error: { message: string; type: string; param: string | null; code: string | null } } {
  return { error: { message: err.message, type: err.type, param: err.param, code: err.code } };
}

// ---------------------------------------------------------------------------------------------
// Request validation

type Json = Record<string, unknown>;

interface SamplingParams {
  maxTokens: number | undefined;
  temperature: number;
  topP: number | undefined;
  topK: number;
  minP: number | undefined;
  seed: number | undefined;
  stop: string[];
  frequencyPenalty: number;
  presencePenalty: number;
  repeatPenalty: number;
  stream: boolean;
  includeUsage: boolean;
}

function isPresent(v: unknown): boolean {
  return v !== undefined && v !== null;
}

function optNumber(body: Json, key: string, min: number, max: number, integer = false): number | undefined {
  const v = body[key];
  if (!isPresent(v)) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(`'${key}' must be a number`, key);
  if (integer && !Number.isInteger(v)) throw badRequest(`'${key}' must be an integer`, key);
  if (v < min || v > max) throw badRequest(`'${key}' must be between ${min} and ${max}, got ${v}`, key);
  return v;
}

function optBoolean(body: Json, key: string): boolean | undefined {
  const v = body[key];
  if (!isPresent(v)) return undefined;
  if (typeof v !== 'boolean') throw badRequest(`'${key}' must be a boolean`, key);
  return v;
}

function rejectUnsupported(body: Json, key: string, allowed: (v: unknown) => boolean, what: string): void {
  const v = body[key];
  if (isPresent(v) && !allowed(v)) throw badRequest(`'${key}' ${what}`, key);
}

function parseSampling(body: Json): SamplingParams {
  if (isPresent(body['model']) && typeof body['model'] !== 'string') throw badRequest(`'model' must be a string`, 'model');
  const maxCompletion = optNumber(body, 'max_completion_tokens', 1, Number.MAX_SAFE_INTEGER, true);
  const maxTokens = maxCompletion ?? optNumber(body, 'max_tokens', 1, Number.MAX_SAFE_INTEGER, true);
  const n = optNumber(body, 'n', 1, 128, true);
  if (n !== undefined && n !== 1) throw badRequest(`only n=1 is supported`, 'n');
  rejectUnsupported(body, 'best_of', (v) => v === 1, 'must be 1');
  rejectUnsupported(body, 'echo', (v) => v === false, 'is not supported');
  rejectUnsupported(body, 'logprobs', (v) => v === false || v === 0, 'is not supported');
  rejectUnsupported(body, 'top_logprobs', (v) => v === 0, 'is not supported');
  rejectUnsupported(body, 'suffix', (v) => v === '', 'is not supported');
  rejectUnsupported(body, 'logit_bias', (v) => typeof v === 'object' && Object.keys(v as object).length === 0, 'is not supported');
  rejectUnsupported(body, 'tools', (v) => Array.isArray(v) && v.length === 0, 'are not supported by this server');
  rejectUnsupported(body, 'functions', (v) => Array.isArray(v) && v.length === 0, 'are not supported by this server');
  rejectUnsupported(
    body,
    'response_format',
    (v) => typeof v === 'object' && (v as Json)['type'] === 'text',
    `is not supported (only {"type":"text"})`,
  );

  let stop: string[] = [];
  const rawStop = body['stop'];
  if (typeof rawStop === 'string') stop = [rawStop];
  else if (Array.isArray(rawStop)) {
    if (!rawStop.every((s): s is string => typeof s === 'string')) throw badRequest(`'stop' must be a string or an array of strings`, 'stop');
    stop = rawStop;
  } else if (isPresent(rawStop)) throw badRequest(`'stop' must be a string or an array of strings`, 'stop');
  stop = stop.filter((s) => s !== '');
  if (stop.length > MAX_STOP_SEQUENCES) throw badRequest(`at most ${MAX_STOP_SEQUENCES} stop sequences are supported`, 'stop');

  const stream = optBoolean(body, 'stream') ?? false;
  let includeUsage = false;
  const so = body['stream_options'];
  if (isPresent(so)) {
    if (typeof so !== 'object' || Array.isArray(so)) throw badRequest(`'stream_options' must be an object`, 'stream_options');
    includeUsage = optBoolean(so as Json, 'include_usage') ?? false;
  }

  return {
    maxTokens,
    temperature: optNumber(body, 'temperature', 0, 2) ?? 1,
    topP: optNumber(body, 'top_p', 0, 1),
    topK: optNumber(body, 'top_k', 0, 1_000_000, true) ?? 0,
    minP: optNumber(body, 'min_p', 0, 1),
    seed: optNumber(body, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true),
    stop,
    frequencyPenalty: optNumber(body, 'frequency_penalty', -2, 2) ?? 0,
    presencePenalty: optNumber(body, 'presence_penalty', -2, 2) ?? 0,
    repeatPenalty: optNumber(body, 'repeat_penalty', 0, 10) ?? 1,
    stream,
    includeUsage,
  };
}

function messageText(content: unknown, index: number, role: string): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) {
    if (role === 'assistant') return '';
    throw badRequest(`'messages[${index}].content' is required`, `messages[${index}].content`);
  }
  if (Array.isArray(content)) {
    return content
      .map((part: unknown, j) => {
        const p = part as Json | null;
        if (typeof p !== 'object' || p === null || p['type'] !== 'text' || typeof p['text'] !== 'string') {
          throw badRequest(`'messages[${index}].content[${j}]' must be a text part ({"type":"text","text":...}); other content types are not supported`, `messages[${index}].content`);
        }
        return p['text'];
      })
      .join('');
  }
  throw badRequest(`'messages[${index}].content' must be a string or an array of text parts`, `messages[${index}].content`);
}

function parseMessages(body: Json): ChatHistoryItem[] {
  const messages = body['messages'];
  if (!isPresent(messages)) throw badRequest(`'messages' is a required property`, 'messages');
  if (!Array.isArray(messages)) throw badRequest(`'messages' must be an array`, 'messages');
  if (messages.length === 0) throw badRequest(`'messages' must contain at least one message`, 'messages');
  const history: ChatHistoryItem[] = messages.map((m: unknown, i): ChatHistoryItem => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw badRequest(`'messages[${i}]' must be an object`, `messages[${i}]`);
    const role = (m as Json)['role'];
    if (typeof role !== 'string') throw badRequest(`'messages[${i}].role' must be a string`, `messages[${i}].role`);
    const text = messageText((m as Json)['content'], i, role);
    switch (role) {
      case 'system':
      case 'developer':
        return { type: 'system', text };
      case 'user':
        return { type: 'user', text };
      case 'assistant':
        return { type: 'model', response: [text] };
      default:
        throw badRequest(`'messages[${i}].role' must be one of system, developer, user, assistant (got '${role}')`, `messages[${i}].role`);
    }
  });
  // A trailing assistant message is a prefill that the model continues (llama.cpp server semantics);
  // otherwise the model writes a new assistant turn.
  if (history[history.length - 1]?.type !== 'model') history.push({ type: 'model', response: [] });
  return history;
}

// ---------------------------------------------------------------------------------------------
// Sequence pool: `parallel` sequences, FIFO waiters.

class SequencePool {
  private readonly free: LlamaContextSequence[];
  private readonly waiters: { resolve: (s: LlamaContextSequence) => void; reject: (e: Error) => void }[] = [];
  private closed = false;

  constructor(sequences: LlamaContextSequence[]) {
    this.free = [...sequences];
  }

  get queued(): number {
    return this.waiters.length;
  }

  acquire(signal: AbortSignal): Promise<LlamaContextSequence> {
    if (this.closed) return Promise.reject(new HttpError(503, 'the model server is shutting down', 'server_error'));
    const seq = this.free.pop();
    if (seq !== undefined) return Promise.resolve(seq);
    if (this.waiters.length >= MAX_QUEUE) return Promise.reject(new HttpError(503, 'too many queued requests', 'server_error'));
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (s: LlamaContextSequence): void => {
          signal.removeEventListener('abort', onAbort);
          resolve(s);
        },
        reject: (e: Error): void => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new HttpError(499, 'client closed the request', 'invalid_request_error'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(seq: LlamaContextSequence): void {
    const next = this.waiters.shift();
    if (next !== undefined) next.resolve(seq);
    else this.free.push(seq);
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(new HttpError(503, 'the model server is shutting down', 'server_error'));
  }
}

// ---------------------------------------------------------------------------------------------
// Server

type FinishReason = 'stop' | 'length';

interface Generation {
  text: string;
  promptTokens: number;
  completionTokens: number;
  finishReason: FinishReason;
}

export async function startModelServer(opts: ModelServerOptions): Promise<ModelServer> {
  const log = opts.log ?? (() => undefined);
  const modelId = opts.modelId ?? DEFAULT_MODEL_ID;
  const host = opts.host ?? '127.0.0.1';
  const parallel = Math.max(1, Math.floor(opts.parallel ?? DEFAULT_PARALLEL));
  const envThreads = Number(process.env['EVALFLOW_MODEL_THREADS']);
  const threads = Math.max(1, Math.floor(opts.threads ?? (Number.isFinite(envThreads) && envThreads > 0 ? envThreads : 1)));
  const requestedContext = Math.max(64, Math.floor(opts.contextSize ?? DEFAULT_CONTEXT_SIZE));
  const created = Math.floor(Date.now() / 1000);

  let ready = false;
  let closing = false;
  let llama: Llama | undefined;
  let model: LlamaModel | undefined;
  let context: LlamaContext | undefined;
  let chatWrapper: ChatWrapper | undefined;
  let pool: SequencePool | undefined;
  let contextSize = requestedContext;
  const inFlight = new Set<AbortController>();
  /** Generations holding a sequence; close() waits for them before disposing the context. */
  const running = new Set<Promise<unknown>>();
  let requestCounter = 0;

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log(`model-server: unhandled error: ${String(err)}`);
      if (!res.headersSent) sendJson(res, 500, errorBody(new HttpError(500, 'internal error')));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '').replace(/^\/v1(?=\/|$)/, '') || '/';
    const method = req.method ?? 'GET';
    try {
      if (path === '/health') {
        requireMethod(method, ['GET', 'HEAD']);
        if (ready) sendJson(res, 200, { status: 'ok' });
        else sendJson(res, 503, { status: closing ? 'closing' : 'loading' });
        return;
      }
      if (path === '/models' || path.startsWith('/models/')) {
        requireMethod(method, ['GET', 'HEAD']);
        const entry = modelEntry();
        if (path === '/models') {
          sendJson(res, 200, { object: 'list', data: [entry] });
          return;
        }
        const raw = path.slice('/models/'.length);
        let wanted = raw;
        try {
          wanted = decodeURIComponent(raw);
        } catch {
          // malformed escape: compare it as is
        }
        if (wanted === modelId) sendJson(res, 200, entry);
        else throw new HttpError(404, `The model '${wanted}' does not exist`, 'invalid_request_error', 'model', 'model_not_found');
        return;
      }
      if (path === '/chat/completions' || path === '/completions') {
        requireMethod(method, ['POST']);
        const body = await readJsonBody(req);
        if (!ready || pool === undefined) throw new HttpError(503, closing ? 'the model server is shutting down' : 'Loading model', 'unavailable_error');
        if (path === '/chat/completions') await chatCompletions(body, res);
        else await completions(body, res);
        return;
      }
      throw new HttpError(404, `Invalid URL (${method} ${url.pathname})`, 'invalid_request_error', null, 'not_found');
    } catch (err) {
      const httpErr = err instanceof HttpError ? err : new HttpError(500, err instanceof Error ? err.message : String(err));
      if (httpErr.status >= 500) log(`model-server: ${method} ${url.pathname} failed: ${httpErr.message}`);
      if (httpErr.status === 499) {
        res.destroy();
        return;
      }
      if (!res.headersSent) {
        if (httpErr.status === 405) res.setHeader('Allow', allowedMethods(path).join(', '));
        sendJson(res, httpErr.status, errorBody(httpErr));
      } else if (!res.writableEnded) {
        // Mid-stream failure: report it as an SSE event and end the stream.
        res.end(`data: ${JSON.stringify(errorBody(httpErr))}\n\n`);
      }
    }
  }

  function allowedMethods(path: string): string[] {
    return path === '/chat/completions' || path === '/completions' ? ['POST'] : ['GET', 'HEAD'];
  }

  function requireMethod(method: string, allowed: string[]): void {
    if (!allowed.includes(method)) throw new HttpError(405, `Method ${method} is not allowed here; use ${allowed.join(' or ')}`, 'invalid_request_error', null, 'method_not_allowed');
  }

  function modelEntry(): Json {
    return {
      id: modelId,
      object: 'model',
      created,
      owned_by: 'evalflow',
      meta: {
        backend: 'llama.cpp (node-llama-cpp)',
        context_length: contextSize,
        n_ctx_train: model?.trainContextSize ?? null,
        parallel,
        threads,
      },
    };
  }

  /** Aborted when the client goes away before the response is complete, or on close(). */
  function requestAbort(res: ServerResponse): AbortController {
    const ac = new AbortController();
    const onClose = (): void => {
      if (!res.writableFinished) ac.abort(new HttpError(499, 'client closed the request'));
    };
    res.on('close', onClose);
    inFlight.add(ac);
    res.on('close', () => inFlight.delete(ac));
    return ac;
  }

  function clampMaxTokens(requested: number | undefined, promptTokens: number): number {
    if (promptTokens >= contextSize) {
      throw badRequest(
        `This model's maximum context length is ${contextSize} tokens. However, your request has ${promptTokens} prompt tokens. Please reduce the length of the prompt.`,
        'messages',
        'context_length_exceeded',
      );
    }
    return Math.min(requested ?? Number.MAX_SAFE_INTEGER, contextSize - promptTokens);
  }

  function samplingOptions(p: SamplingParams): {
    temperature: number;
    topP?: number;
    topK: number;
    minP?: number;
    seed?: number;
    repeatPenalty: false | { penalty: number; frequencyPenalty: number; presencePenalty: number; lastTokens: number };
  } {
    const penalties = p.frequencyPenalty !== 0 || p.presencePenalty !== 0 || p.repeatPenalty !== 1;
    return {
      temperature: p.temperature,
      ...(p.topP !== undefined ? { topP: p.topP } : {}),
      topK: p.topK,
      ...(p.minP !== undefined ? { minP: p.minP } : {}),
      // node-llama-cpp's default seed is the current second, which would make concurrent requests identical.
      ...(p.temperature > 0 ? { seed: p.seed !== undefined ? Math.abs(p.seed) % 2 ** 32 : randomInt(2 ** 32 - 1) } : {}),
      repeatPenalty: penalties
        ? { penalty: p.repeatPenalty, frequencyPenalty: p.frequencyPenalty, presencePenalty: p.presencePenalty, lastTokens: 64 }
        : false,
    };
  }

  async function chatCompletions(body: Json, res: ServerResponse): Promise<void> {
    const params = parseSampling(body);
    const history = parseMessages(body);
    if (model === undefined || chatWrapper === undefined || pool === undefined) throw new HttpError(503, 'Loading model', 'unavailable_error');
    const promptTokens = chatWrapper.generateContextState({ chatHistory: history }).contextText.tokenize(model.tokenizer).length;
    const maxTokens = clampMaxTokens(params.maxTokens, promptTokens);
    const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
    const stream = params.stream ? new SseWriter(res, id, 'chat.completion.chunk', modelId) : undefined;
    const ac = requestAbort(res);
    const wrapper = chatWrapper;
    const gen = await runOnSequence(pool, ac.signal, promptTokens, async (seq) => {
      const chat = new LlamaChat({ contextSequence: seq, chatWrapper: wrapper });
      try {
        let completionTokens = 0;
        stream?.chatRole();
        const r = await chat.generateResponse(history, {
          ...samplingOptions(params),
          maxTokens,
          customStopTriggers: params.stop,
          signal: ac.signal,
          stopOnAbortSignal: true,
          onToken: (tokens) => {
            completionTokens += tokens.length;
          },
          ...(stream !== undefined ? { onTextChunk: (text: string) => stream.chatDelta(text) } : {}),
        });
        return { text: r.response, promptTokens, completionTokens, finishReason: finishReason(r.metadata.stopReason) };
      } finally {
        chat.dispose({ disposeSequence: false });
      }
    });
    if (gen === undefined) return; // client went away
    logGeneration('chat', gen);
    const usage = usageOf(gen);
    if (stream !== undefined) {
      stream.finish({ index: 0, delta: {}, logprobs: null, finish_reason: gen.finishReason }, params.includeUsage ? usage : undefined);
      return;
    }
    sendJson(res, 200, {
      id,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: modelId,
      choices: [{ index: 0, message: { role: 'assistant', content: gen.text }, logprobs: null, finish_reason: gen.finishReason }],
      usage,
      system_fingerprint: null,
    });
  }

  async function completions(body: Json, res: ServerResponse): Promise<void> {
    const params = parseSampling(body);
    if (model === undefined || pool === undefined) throw new HttpError(503, 'Loading model', 'unavailable_error');
    const tokens = promptTokensOf(body['prompt'], model);
    const maxTokens = clampMaxTokens(params.maxTokens, tokens.length);
    const id = `cmpl-${randomBytes(12).toString('hex')}`;
    const stream = params.stream ? new SseWriter(res, id, 'text_completion', modelId) : undefined;
    const ac = requestAbort(res);
    const gen = await runOnSequence(pool, ac.signal, tokens.length, async (seq) => {
      const completion = new LlamaCompletion({ contextSequence: seq });
      try {
        let completionTokens = 0;
        const r = await completion.generateCompletionWithMeta(tokens, {
          ...samplingOptions(params),
          maxTokens,
          customStopTriggers: params.stop,
          signal: ac.signal,
          stopOnAbortSignal: true,
          disableContextShift: true,
          contextShiftSize: 1,
          onToken: (t) => {
            completionTokens += t.length;
          },
          ...(stream !== undefined ? { onTextChunk: (text: string) => stream.textDelta(text) } : {}),
        });
        return { text: r.response, promptTokens: tokens.length, completionTokens, finishReason: finishReason(r.metadata.stopReason) };
      } finally {
        completion.dispose({ disposeSequence: false });
      }
    });
    if (gen === undefined) return;
    logGeneration('completion', gen);
    const usage = usageOf(gen);
    if (stream !== undefined) {
      stream.finish({ index: 0, text: '', logprobs: null, finish_reason: gen.finishReason }, params.includeUsage ? usage : undefined);
      return;
    }
    sendJson(res, 200, {
      id,
      object: 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model: modelId,
      choices: [{ index: 0, text: gen.text, logprobs: null, finish_reason: gen.finishReason }],
      usage,
      system_fingerprint: null,
    });
  }

  /** Runs `fn` on a free, cleared sequence; undefined when the client disconnected. */
  async function runOnSequence(
    p: SequencePool,
    signal: AbortSignal,
    promptTokens: number,
    fn: (seq: LlamaContextSequence) => Promise<Generation>,
  ): Promise<(Generation & { ms: number; waitMs: number }) | undefined> {
    const queuedAt = Date.now();
    const seq = await p.acquire(signal);
    const startedAt = Date.now();
    const work = (async () => {
      await seq.clearHistory();
      return fn(seq);
    })();
    running.add(work);
    try {
      const gen = await work;
      if (signal.aborted) {
        // Client gone: nothing to send. Shutdown: fail the request (5xx) rather than return a cut-off text.
        if (signal.reason instanceof HttpError && signal.reason.status === 499) return undefined;
        throw signal.reason instanceof HttpError ? signal.reason : new HttpError(503, 'generation aborted');
      }
      return { ...gen, promptTokens, ms: Date.now() - startedAt, waitMs: startedAt - queuedAt };
    } finally {
      running.delete(work);
      p.release(seq);
    }
  }

  function logGeneration(kind: string, gen: Generation & { ms: number; waitMs: number }): void {
    requestCounter++;
    if (opts.logRequests !== true) return;
    const tps = gen.ms > 0 ? (gen.completionTokens * 1000) / gen.ms : 0;
    log(
      `model-server: #${requestCounter} ${kind} prompt=${gen.promptTokens} completion=${gen.completionTokens} finish=${gen.finishReason} ` +
        `${(gen.ms / 1000).toFixed(2)}s (${tps.toFixed(1)} tok/s)${gen.waitMs > 50 ? ` queued ${(gen.waitMs / 1000).toFixed(2)}s` : ''}`,
    );
  }

  // Listen first so /health can say "loading" while the weights load (as llama.cpp's server does).
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  // A wildcard address is not something a client can connect to; advertise loopback instead.
  const urlHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;

  const loadStarted = Date.now();
  try {
    llama = await getLlama({
      gpu: false,
      // Use the prebuilt binary shipped in @node-llama-cpp/<platform> (or a local build); never compile.
      build: 'never',
      maxThreads: threads,
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trim();
        if (text !== '') log(`llama.cpp ${level}: ${text}`);
      },
    });
    model = await llama.loadModel({ modelPath: opts.modelPath, gpuLayers: 0 });
    context = await model.createContext({ contextSize: requestedContext, sequences: parallel, threads });
    contextSize = context.contextSize;
    const sequences: LlamaContextSequence[] = [];
    for (let i = 0; i < parallel; i++) sequences.push(context.getSequence());
    pool = new SequencePool(sequences);
    chatWrapper = makeChatWrapper(model);
  } catch (err) {
    await context?.dispose().catch(() => undefined);
    await model?.dispose().catch(() => undefined);
    await llama?.dispose().catch(() => undefined);
    await new Promise<void>((r) => server.close(() => r()));
    throw new Error(`model server: cannot load ${opts.modelPath}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const loadMs = Date.now() - loadStarted;
  ready = true;
  log(
    `model-server: loaded ${modelId} from ${opts.modelPath} in ${(loadMs / 1000).toFixed(2)}s ` +
      `(llama.cpp ${llama.buildType} ${llama.cpuMathCores}-core CPU, ${threads} thread(s), context ${contextSize} x ${parallel} sequences, chat template ${chatWrapper.wrapperName})`,
  );

  let closePromise: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closePromise ??= (async () => {
      ready = false;
      closing = true;
      pool?.close();
      const serverClosed = new Promise<void>((r) => server.close(() => r()));
      for (const ac of inFlight) ac.abort(new HttpError(503, 'the model server is shutting down'));
      // Give aborted generations a moment to send their errors, closing keep-alive sockets as they go idle;
      // then drop whatever is left.
      let closed = false;
      void serverClosed.then(() => (closed = true));
      for (const deadline = Date.now() + 2000; !closed && Date.now() < deadline; ) {
        server.closeIdleConnections();
        await sleep(25);
      }
      server.closeAllConnections();
      await serverClosed;
      await settledWithin([...running], 10_000);
      await context?.dispose().catch(() => undefined);
      await model?.dispose().catch(() => undefined);
      await llama?.dispose().catch(() => undefined);
      log(`model-server: closed`);
    })();
    return closePromise;
  };

  return { url: `http://${urlHost}:${port}`, port, modelId, loadMs, close };
}

/** The model's own Jinja chat template (as HF transformers / llama.cpp --jinja render it), else node-llama-cpp's pick. */
function makeChatWrapper(model: LlamaModel): ChatWrapper {
  const template = model.fileInfo.metadata.tokenizer.chat_template;
  if (typeof template === 'string' && template.trim() !== '') {
    return new JinjaTemplateChatWrapper({
      template,
      joinAdjacentMessagesOfTheSameType: false,
      trimLeadingWhitespaceInResponses: false,
      tokenizer: model.tokenizer,
    });
  }
  return resolveChatWrapper(model);
}

function promptTokensOf(prompt: unknown, model: LlamaModel): Token[] {
  let tokens: Token[];
  if (!isPresent(prompt)) throw badRequest(`'prompt' is a required property`, 'prompt');
  const single = Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === 'string' ? prompt[0] : prompt;
  if (typeof single === 'string') {
    // Special tokens in the text (e.g. <|im_start|>) are parsed, as llama.cpp's server does for prompts.
    tokens = model.tokenize(single, true);
  } else if (Array.isArray(single) && single.length > 0 && single.every((t) => typeof t === 'number' && Number.isInteger(t) && t >= 0)) {
    tokens = single as Token[];
  } else if (Array.isArray(single) && single.length > 1 && single.every((s) => typeof s === 'string')) {
    throw badRequest(`only one prompt per request is supported`, 'prompt');
  } else {
    throw badRequest(`'prompt' must be a string or an array of token ids`, 'prompt');
  }
  if (tokens.length === 0) {
    const bos = model.tokens.bos;
    if (bos === null) throw badRequest(`'prompt' must not be empty`, 'prompt');
    tokens = [bos];
  }
  return tokens;
}

function finishReason(stopReason: string): FinishReason {
  return stopReason === 'maxTokens' ? 'length' : 'stop';
}

function usageOf(gen: Generation): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  return { prompt_tokens: gen.promptTokens, completion_tokens: gen.completionTokens, total_tokens: gen.promptTokens + gen.completionTokens };
}

/** Server-sent events in the OpenAI streaming format. Headers go out with the first event. */
class SseWriter {
  constructor(
    private readonly res: ServerResponse,
    private readonly id: string,
    private readonly object: 'chat.completion.chunk' | 'text_completion',
    private readonly model: string,
    private readonly created: number = Math.floor(Date.now() / 1000),
  ) {}

  private send(data: unknown): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    if (!this.res.headersSent) {
      this.res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    }
    this.res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  }

  private chunk(choices: Json[], extra: Json = {}): Json {
    return { id: this.id, object: this.object, created: this.created, model: this.model, system_fingerprint: null, choices, ...extra };
  }

  chatRole(): void {
    this.send(this.chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]));
  }

  chatDelta(text: string): void {
    if (text !== '') this.send(this.chunk([{ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }]));
  }

  textDelta(text: string): void {
    if (text !== '') this.send(this.chunk([{ index: 0, text, logprobs: null, finish_reason: null }]));
  }

  finish(lastChoice: Json, usage?: Json): void {
    this.send(this.chunk([lastChoice]));
    if (usage !== undefined) this.send(this.chunk([], { usage }));
    this.send('[DONE]');
    this.res.end();
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

async function readJsonBody(req: IncomingMessage): Promise<Json> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw badRequest('the request body is empty; expected a JSON object');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw badRequest(`We could not parse the JSON body of your request: ${err instanceof Error ? err.message : String(err)}`, null, 'invalid_json');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw badRequest('the request body must be a JSON object');
  return parsed as Json;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits for the promises to settle, at most `ms` (without a timer left behind to hold the process open). */
async function settledWithin(promises: Promise<unknown>[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([Promise.allSettled(promises), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
