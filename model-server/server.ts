/**
 * OpenAI-compatible HTTP server over node-llama-cpp: the CPU "llama.cpp" deployment of evalflow. This file
 * is the HTTP layer (routes, JSON and SSE responses, lifecycle); requests.ts parses request bodies and
 * engine.ts runs the model.
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
 * A client that disconnects aborts its generation.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo } from 'node:net';
import { loadEngine, type Generation, type LlamaEngine } from './engine.js';
import { errorBody, HttpError, parseGenerationRequest, readJsonBody, type Json } from './requests.js';

export const DEFAULT_MODEL_ID = 'smollm2-135m-instruct';
const DEFAULT_CONTEXT_SIZE = 4096;
const DEFAULT_PARALLEL = 2;

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

const ROUTES = {
  '/chat/completions': { kind: 'chat', id: 'chatcmpl', object: 'chat.completion', chunk: 'chat.completion.chunk' },
  '/completions': { kind: 'completion', id: 'cmpl', object: 'text_completion', chunk: 'text_completion' },
} as const;
type GenerationRoute = (typeof ROUTES)[keyof typeof ROUTES];

export async function startModelServer(opts: ModelServerOptions): Promise<ModelServer> {
  const log = opts.log ?? (() => undefined);
  const modelId = opts.modelId ?? DEFAULT_MODEL_ID;
  const host = opts.host ?? '127.0.0.1';
  const parallel = Math.max(1, Math.floor(opts.parallel ?? DEFAULT_PARALLEL));
  const envThreads = Number(process.env['EVALFLOW_MODEL_THREADS']);
  const threads = Math.max(1, Math.floor(opts.threads ?? (Number.isFinite(envThreads) && envThreads > 0 ? envThreads : 1)));
  const contextSize = Math.max(64, Math.floor(opts.contextSize ?? DEFAULT_CONTEXT_SIZE));
  const created = Math.floor(Date.now() / 1000);

  let engine: LlamaEngine | undefined;
  let closing = false;
  const inFlight = new Set<AbortController>();
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
        if (engine && !closing) sendJson(res, 200, { status: 'ok' });
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
        const request = parseGenerationRequest(ROUTES[path].kind, body);
        if (!engine || closing) throw new HttpError(503, closing ? 'the model server is shutting down' : 'Loading model', 'unavailable_error');
        await generate(engine, ROUTES[path], request, res);
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

  /** One generation, answered as one JSON body or as a stream of chunks. */
  async function generate(llm: LlamaEngine, route: GenerationRoute, request: ReturnType<typeof parseGenerationRequest>, res: ServerResponse): Promise<void> {
    const id = `${route.id}-${randomBytes(12).toString('hex')}`;
    const stream = request.params.stream ? new SseWriter(res, id, route.chunk, modelId) : undefined;
    const chat = route.kind === 'chat';
    const gen = await llm.generate(request, {
      signal: requestAbort(res).signal,
      ...(stream === undefined
        ? {}
        : {
            onStart: () => {
              if (chat) stream.chatRole();
            },
            onText: (text: string) => (chat ? stream.chatDelta(text) : stream.textDelta(text)),
          }),
    });
    if (gen === undefined) return; // client went away
    logGeneration(route.kind, gen);
    const usage = usageOf(gen);
    const last = chat ? { index: 0, delta: {}, logprobs: null, finish_reason: gen.finishReason } : { index: 0, text: '', logprobs: null, finish_reason: gen.finishReason };
    if (stream !== undefined) {
      stream.finish(last, request.params.includeUsage ? usage : undefined);
      return;
    }
    const choice = chat ? { index: 0, message: { role: 'assistant', content: gen.text } } : { index: 0, text: gen.text };
    sendJson(res, 200, {
      id,
      object: route.object,
      created: Math.floor(Date.now() / 1000),
      model: modelId,
      choices: [{ ...choice, logprobs: null, finish_reason: gen.finishReason }],
      usage,
      system_fingerprint: null,
    });
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
        context_length: engine?.contextSize ?? contextSize,
        n_ctx_train: engine?.trainContextSize ?? null,
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

  function logGeneration(kind: string, gen: Generation): void {
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
    engine = await loadEngine({ modelPath: opts.modelPath, contextSize, parallel, threads, log });
  } catch (err) {
    await new Promise<void>((r) => server.close(() => r()));
    throw err;
  }
  const loadMs = Date.now() - loadStarted;
  log(`model-server: loaded ${modelId} from ${opts.modelPath} in ${(loadMs / 1000).toFixed(2)}s (${engine.description})`);

  let closePromise: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closePromise ??= (async () => {
      closing = true;
      // Queued requests fail now; running ones are aborted below and the model is freed once they end.
      const engineClosed = engine?.close();
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
      await engineClosed;
      log(`model-server: closed`);
    })();
    return closePromise;
  };

  return { url: `http://${urlHost}:${port}`, port, modelId, loadMs, close };
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

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
