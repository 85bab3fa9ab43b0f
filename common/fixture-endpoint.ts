/**
 * A deterministic OpenAI-compatible endpoint for integration tests and benchmarks (DESIGN.md §5,
 * "Test endpoint"; §6 anchors its ceiling).
 *
 * - `POST /v1/chat/completions`, `POST /v1/completions` (also `stream: true` as SSE), `GET /v1/models`,
 *   `GET /health`.
 * - Answers are scripted (`answer`) or derived from the prompt (`defaultAnswer`); `created` is a
 *   constant and ids count up per server (`chatcmpl-fixture-<n>`).
 * - Outages on demand (`goDown(ms)`: connections refused, open ones dropped, then back on the same port).
 * - Faults on demand (429 + Retry-After, 5xx, held sockets, malformed JSON, no content) for the first N attempts
 *   of each matching request, counted per request key, so retries are exact under concurrency.
 * - Built for speed on node:http with keep-alive: one JSON.parse per request, responses assembled as
 *   strings with a Content-Length. The canonical request key (sorted-keys JSON + sha256, a few µs)
 *   is computed only for records, for requests that match a fault, and in `answeredCounts()`
 *   (answered requests are tallied by raw body until then).
 *
 * Standalone (benchmarks): `node dist/common/fixture-endpoint.js --port 0 [--latency-ms 50]
 * [--host 127.0.0.1] [--record] [--answers table.json]` prints `listening <url>` on stdout and
 * stops on SIGINT/SIGTERM.
 */
import { hash } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { canonicalJson } from './canonical-json.js';

export { canonicalJson };

export interface FixtureRequestRecord {
  path: string;
  /** sha256 (hex) of the canonical (sorted-keys) JSON body; of the raw body when it is not JSON. */
  key: string;
  /** Last user message content (chat) or the prompt (completions; a batch joined with '\n'). */
  prompt: string;
  /** Status written, 0 while held or not yet answered. */
  status: number;
  /** The full response was written to a live socket (false while held, or if the client left first). */
  answered: boolean;
  /** The Authorization header as received (to check that API keys are sent, and only where they should be). */
  authorization?: string;
}

export type FaultSpec =
  | { kind: 'status'; status: number; retryAfterS?: number; times: number }
  | { kind: 'timeout'; times: number }
  | { kind: 'garbage'; times: number }
  /** A well-formed 200 whose choice carries no text (`message.content` / `text` null; a stream of role-only chunks). */
  | { kind: 'no-content'; times: number }
  | { kind: 'hang' };

export interface FixtureServerOptions {
  /** Maps a prompt to the answer text. Default: `defaultAnswer(prompt)`. */
  answer?: (prompt: string, body: Record<string, unknown>) => string;
  /** Delay before every response (errors included), in ms. */
  latencyMs?: number;
  /** Matched against the prompt (string: substring; RegExp: search) in order; see `addFault`. */
  faults?: Array<{ match: string | RegExp; fault: FaultSpec }>;
  host?: string;
  port?: number;
  /** Keep `requests` (default true; false for benchmarks). Counters are kept either way. */
  record?: boolean;
  /** An endpoint with limited capacity: a completion request arriving while this many are in service gets a 429. */
  capacity?: number;
}

export interface FixtureServer {
  /** `http://host:port`; endpoints live under `/v1`. */
  url: string;
  requests: FixtureRequestRecord[];
  /** How many times each request key was fully answered with a 200 completion (garbage excluded). */
  answeredCounts(): Map<string, number>;
  /** Completion requests received (chat + completions, bad bodies included). */
  totalRequests(): number;
  /** TCP connections accepted so far (a keep-alive client opens at most one per concurrent request). */
  totalConnections(): number;
  /** With `capacity`: the 429s sent for it, and the most requests in service at once. */
  capacityStats(): { overloads: number; peakInService: number };
  setLatency(ms: number): void;
  /**
   * Adds a fault after the existing ones. Each fault counts the attempts of every request key that
   * matches it and applies to the first `times` of them; later attempts fall through to the next
   * matching fault, then to a normal answer. So `[429×2, 500×1]` on one prompt gives 429, 429,
   * 500, 200.
   */
  addFault(match: string | RegExp, fault: FaultSpec): void;
  clearFaults(): void;
  /** Resolves when `n` completion requests have been received in total. */
  waitForRequests(n: number): Promise<void>;
  /**
   * An outage: stops listening (new connections are refused) and drops every open connection, so requests in
   * flight are never answered; after `ms` it listens on the same port again. Resolves when it is back.
   */
  goDown(ms: number): Promise<void>;
  /** Whether the server is down (goDown) right now. */
  isDown(): boolean;
  /** Stops listening and destroys every socket, held ones included. */
  close(): Promise<void>;
}

export const FIXTURE_MODEL = 'fixture-model';
/** `created` of every response: fixed, so responses are byte-for-byte reproducible. */
export const FIXTURE_CREATED = 1_700_000_000;

const CHAT_PATH = '/v1/chat/completions';
const COMPLETIONS_PATH = '/v1/completions';
const JSON_TYPE = 'application/json';
const MODELS_BODY = JSON.stringify({ object: 'list', data: [{ id: FIXTURE_MODEL, object: 'model', created: FIXTURE_CREATED, owned_by: 'evalflow' }] });
const HEALTH_BODY = '{"status":"ok"}';
const GARBAGE_BODY = '{"id":"chatcmpl-garbage","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"tru';
const GARBAGE_STREAM = 'data: {"id":"chatcmpl-garbage","choices":[{"delta":{"content":"tru\n\ndata: [DONE]\n\n';
const SSE_HEADERS = ['Content-Type', 'text/event-stream', 'Cache-Control', 'no-cache'];
/**
 * Headers of a 200 JSON completion, reused: index 3 is the Content-Length of the response being
 * written. Safe because writeHead() serialises a header array synchronously.
 */
const OK_HEADERS = ['Content-Type', JSON_TYPE, 'Content-Length', '0'];
const DONE_EVENT = 'data: [DONE]\n\n';

/** The request key the server records: sha256 (hex) of `canonicalJson(body)`. */
export function requestKey(body: unknown): string {
  return hash('sha256', canonicalJson(body), 'hex');
}

/** The default answer: `Let me think step by step. The answer is N.` with N = FNV-1a(prompt) mod 1000. */
export function defaultAnswer(prompt: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < prompt.length; i++) {
    h ^= prompt.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return `Let me think step by step. The answer is ${(h >>> 0) % 1000}.`;
}

/**
 * An answerer for scripted datasets: the value of the first key (in insertion order) that is a
 * substring of the prompt, else `fallback`. Results are memoised per prompt.
 */
export function answerFromTable(table: Record<string, string>, fallback = "I don't know"): (prompt: string) => string {
  const entries = Object.entries(table);
  const memo = new Map<string, string>();
  return (prompt: string): string => {
    const hit = memo.get(prompt);
    if (hit !== undefined) return hit;
    let answer = fallback;
    for (const [k, v] of entries) {
      if (prompt.includes(k)) {
        answer = v;
        break;
      }
    }
    if (memo.size >= 100_000) memo.clear();
    memo.set(prompt, answer);
    return answer;
  };
}

/** Whitespace-separated word count, the fixture's stand-in for a token count. */
export function countWords(text: string): number {
  let words = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 32 && c < 0x7f) {
      if (!inWord) {
        inWord = true;
        words++;
      }
      continue;
    }
    const space = c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0x3000 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x1680 || c === 0x202f || c === 0x205f || c === 0x85 || c === 0xfeff;
    if (space) inWord = false;
    else if (!inWord) {
      inWord = true;
      words++;
    }
  }
  return words;
}

/**
 * Splits text into three non-empty pieces whose concatenation is the text, cutting after a space
 * near each third where it can ('' and texts under 3 characters stay whole).
 */
function splitInThree(text: string): string[] {
  const n = text.length;
  if (n < 3) return [text];
  let a = Math.ceil(n / 3);
  let b = Math.ceil((2 * n) / 3);
  const wa = text.indexOf(' ', a) + 1;
  const wb = text.indexOf(' ', b) + 1;
  if (wa > 0 && wb > wa && wb < n) {
    a = wa;
    b = wb;
  }
  return [text.slice(0, a), text.slice(a, b), text.slice(b)];
}

/** Text of a chat message `content`: a string, or the `text` of its parts joined with '\n'. */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let out = '';
  let first = true;
  for (const part of content) {
    const text = typeof part === 'string' ? part : part !== null && typeof part === 'object' ? (part as Record<string, unknown>).text : undefined;
    if (typeof text !== 'string') continue;
    if (!first) out += '\n';
    first = false;
    out += text;
  }
  return out;
}

interface FaultEntry {
  match: string | RegExp;
  fault: FaultSpec;
  /** Attempts of each matching request key seen by this fault. */
  attempts: Map<string, number>;
}

/** The key of a raw body that parsed as JSON. */
function rawKey(raw: string): string {
  return requestKey(JSON.parse(raw));
}

/** One parsed completion request, kept while its response waits for latency. */
interface Exchange {
  res: http.ServerResponse;
  chat: boolean;
  /** The raw body; answered counts are kept by it and keyed only when asked for (hot path). */
  raw: string;
  body: Record<string, unknown>;
  /** The single prompt, or the batch of completions prompts. */
  prompts: string | string[];
  prompt: string;
  fault: FaultSpec | undefined;
  rec: FixtureRequestRecord | undefined;
}

function errorBody(status: number, message: string): string {
  const type = status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
  const code = status === 429 ? '"rate_limit_exceeded"' : 'null';
  return `{"error":{"message":${JSON.stringify(message)},"type":"${type}","param":null,"code":${code}}}`;
}

function sendPlain(res: http.ServerResponse, status: number, payload: string, extra?: string[]): void {
  const headers = ['Content-Type', JSON_TYPE, 'Content-Length', String(Buffer.byteLength(payload))];
  if (extra !== undefined) headers.push(...extra);
  res.writeHead(status, headers);
  res.end(payload);
}

function latencyOf(ms: number | undefined): number {
  if (ms === undefined) return 0;
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`fixture server: bad latency ${ms}`);
  return ms;
}

export async function startFixtureServer(opts: FixtureServerOptions = {}): Promise<FixtureServer> {
  const answerer = opts.answer;
  const recordOn = opts.record ?? true;
  let latencyMs = latencyOf(opts.latencyMs);
  const capacity = opts.capacity;
  let inService = 0;
  let peakInService = 0;
  let overloads = 0;
  const faults: FaultEntry[] = (opts.faults ?? []).map((f) => ({ match: f.match, fault: f.fault, attempts: new Map() }));
  const requests: FixtureRequestRecord[] = [];
  /** Answered 200 completions per raw body; `answeredCounts()` folds them into request keys. */
  const answeredRaw = new Map<string, number>();
  let total = 0;
  let waiters: Array<{ n: number; resolve: () => void }> = [];
  let closing: Promise<void> | undefined;
  let seq = 0;

  function findFault(prompt: string, raw: string, known: string | undefined): FaultSpec | undefined {
    let key = known;
    for (const entry of faults) {
      const m = entry.match;
      if (typeof m === 'string' ? !prompt.includes(m) : prompt.search(m) === -1) continue;
      key ??= rawKey(raw);
      const seen = (entry.attempts.get(key) ?? 0) + 1;
      entry.attempts.set(key, seen);
      if (entry.fault.kind === 'hang' || seen <= entry.fault.times) return entry.fault;
    }
    return undefined;
  }

  function received(): void {
    total++;
    if (waiters.length === 0) return;
    const still: typeof waiters = [];
    for (const w of waiters) {
      if (w.n <= total) w.resolve();
      else still.push(w);
    }
    waiters = still;
  }

  /**
   * Ends the response. It counts as answered once it is handed to a live socket: respond() has
   * already skipped clients that went away, and a 'finish' listener per response would cost more
   * than it tells (the kernel takes the bytes even from a client killed a moment later).
   */
  function finish(ex: Exchange, status: number, payload: string, success: boolean): void {
    const { res, rec } = ex;
    res.end(payload);
    if (rec !== undefined) {
      rec.status = status;
      rec.answered = true;
    }
    if (success) answeredRaw.set(ex.raw, (answeredRaw.get(ex.raw) ?? 0) + 1);
  }

  function respond(ex: Exchange): void {
    const res = ex.res;
    const socket = res.socket;
    if (closing !== undefined || socket === null || socket.destroyed) return;
    const fault = ex.fault;
    const stream = ex.body.stream === true;
    if (fault !== undefined) {
      if (fault.kind === 'status') {
        const payload = errorBody(fault.status, `fixture fault: status ${fault.status}`);
        const headers = ['Content-Type', JSON_TYPE, 'Content-Length', String(Buffer.byteLength(payload))];
        if (fault.retryAfterS !== undefined) headers.push('Retry-After', String(fault.retryAfterS));
        res.writeHead(fault.status, headers);
        finish(ex, fault.status, payload, false);
        return;
      }
      if (fault.kind === 'garbage') {
        const payload = stream ? GARBAGE_STREAM : GARBAGE_BODY;
        res.writeHead(200, ['Content-Type', stream ? 'text/event-stream' : JSON_TYPE, 'Content-Length', String(Buffer.byteLength(payload))]);
        finish(ex, 200, payload, false);
        return;
      }
      if (fault.kind === 'no-content') {
        const payload = stream
          ? `data: {"id":"chatcmpl-empty","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":"stop"}]}\n\n${DONE_EVENT}`
          : ex.chat
            ? `{"id":"chatcmpl-empty","object":"chat.completion","created":${FIXTURE_CREATED},"choices":[{"index":0,"message":{"role":"assistant","content":null},"finish_reason":"stop"}]}`
            : `{"id":"cmpl-empty","object":"text_completion","created":${FIXTURE_CREATED},"choices":[{"index":0,"text":null,"finish_reason":"stop"}]}`;
        res.writeHead(200, ['Content-Type', stream ? 'text/event-stream' : JSON_TYPE, 'Content-Length', String(Buffer.byteLength(payload))]);
        finish(ex, 200, payload, false);
        return;
      }
      return; // timeout / hang: hold the socket until the client or close() ends it
    }

    let answers: string[];
    try {
      const body = ex.body;
      if (typeof ex.prompts === 'string') {
        answers = [answerer === undefined ? defaultAnswer(ex.prompts) : answerer(ex.prompts, body)];
      } else {
        answers = ex.prompts.map((p) => (answerer === undefined ? defaultAnswer(p) : answerer(p, body)));
      }
      for (const a of answers) if (typeof a !== 'string') throw new Error(`answer must be a string, got ${typeof a}`);
    } catch (err) {
      const payload = errorBody(500, `fixture answerer failed: ${err instanceof Error ? err.message : String(err)}`);
      res.writeHead(500, ['Content-Type', JSON_TYPE, 'Content-Length', String(Buffer.byteLength(payload))]);
      finish(ex, 500, payload, false);
      return;
    }

    const rawModel = ex.body.model;
    const model = JSON.stringify(typeof rawModel === 'string' ? rawModel : FIXTURE_MODEL);
    const promptTokens = ex.chat ? chatWords(ex.body.messages) : completionWords(ex.prompts);
    let completionTokens = 0;
    for (const a of answers) completionTokens += countWords(a);
    const usage = `{"prompt_tokens":${promptTokens},"completion_tokens":${completionTokens},"total_tokens":${promptTokens + completionTokens}}`;
    const id = (ex.chat ? 'chatcmpl-fixture-' : 'cmpl-fixture-') + ++seq;

    if (stream) {
      res.writeHead(200, SSE_HEADERS);
      const head = `data: {"id":"${id}","object":"${ex.chat ? 'chat.completion.chunk' : 'text_completion'}","created":${FIXTURE_CREATED},"model":${model},"choices":[`;
      for (let i = 0; i < answers.length; i++) {
        const pieces = splitInThree(answers[i] ?? '');
        for (let j = 0; j < pieces.length; j++) {
          const text = JSON.stringify(pieces[j]);
          res.write(ex.chat
            ? `${head}{"index":${i},"delta":{${j === 0 ? '"role":"assistant",' : ''}"content":${text}},"logprobs":null,"finish_reason":null}]}\n\n`
            : `${head}{"text":${text},"index":${i},"logprobs":null,"finish_reason":null}]}\n\n`);
        }
        res.write(ex.chat
          ? `${head}{"index":${i},"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\n`
          : `${head}{"text":"","index":${i},"logprobs":null,"finish_reason":"stop"}]}\n\n`);
      }
      const so = ex.body.stream_options;
      if (so !== null && typeof so === 'object' && (so as Record<string, unknown>).include_usage === true) {
        res.write(`${head}],"usage":${usage}}\n\n`);
      }
      finish(ex, 200, DONE_EVENT, true);
      return;
    }

    let payload: string;
    if (ex.chat) {
      payload = `{"id":"${id}","object":"chat.completion","created":${FIXTURE_CREATED},"model":${model},"choices":[{"index":0,"message":{"role":"assistant","content":${JSON.stringify(answers[0])}},"logprobs":null,"finish_reason":"stop"}],"usage":${usage}}`;
    } else {
      let choices = '';
      for (let i = 0; i < answers.length; i++) {
        if (i > 0) choices += ',';
        choices += `{"text":${JSON.stringify(answers[i])},"index":${i},"logprobs":null,"finish_reason":"stop"}`;
      }
      payload = `{"id":"${id}","object":"text_completion","created":${FIXTURE_CREATED},"model":${model},"choices":[${choices}],"usage":${usage}}`;
    }
    OK_HEADERS[3] = String(Buffer.byteLength(payload));
    res.writeHead(200, OK_HEADERS);
    finish(ex, 200, payload, true);
  }

  function badRequest(res: http.ServerResponse, path: string, key: string, message: string): void {
    if (recordOn) requests.push({ path, key, prompt: '', status: 400, answered: true });
    received();
    sendPlain(res, 400, errorBody(400, message));
  }

  function onCompletion(res: http.ServerResponse, path: string, raw: string, authorization: string | undefined): void {
    const chat = path === CHAT_PATH;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      badRequest(res, path, hash('sha256', raw, 'hex'), 'We could not parse the JSON body of your request.');
      return;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      badRequest(res, path, requestKey(parsed), 'The request body must be a JSON object.');
      return;
    }
    const body = parsed as Record<string, unknown>;

    let prompts: string | string[];
    let prompt: string;
    if (chat) {
      const messages = body.messages;
      if (!Array.isArray(messages) || messages.length === 0) {
        badRequest(res, path, requestKey(body), "'messages' must be a non-empty array.");
        return;
      }
      let last: unknown;
      for (let i = messages.length - 1; i >= 0; i--) {
        const m: unknown = messages[i];
        if (m !== null && typeof m === 'object' && (m as Record<string, unknown>).role === 'user') {
          last = m;
          break;
        }
      }
      last ??= messages[messages.length - 1];
      prompt = prompts = last !== null && typeof last === 'object' ? contentText((last as Record<string, unknown>).content) : '';
    } else {
      const p = body.prompt;
      if (typeof p === 'string') prompt = prompts = p;
      else if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === 'string')) {
        prompts = p as string[];
        prompt = prompts.join('\n');
      } else {
        badRequest(res, path, requestKey(body), "'prompt' must be a string or a non-empty array of strings.");
        return;
      }
    }

    // The canonical key costs a few µs (a tenth of the request): only compute it when a record or
    // a matching fault needs it (answered counts are folded into keys on demand).
    let rec: FixtureRequestRecord | undefined;
    if (recordOn) {
      rec = { path, key: requestKey(body), prompt, status: 0, answered: false, ...(authorization === undefined ? {} : { authorization }) };
      requests.push(rec);
    }
    received();
    if (capacity !== undefined) {
      if (inService >= capacity) {
        overloads++;
        if (rec) Object.assign(rec, { status: 429, answered: true });
        sendPlain(res, 429, errorBody(429, `fixture: over capacity (${capacity} requests at once)`));
        return;
      }
      inService++;
      peakInService = Math.max(peakInService, inService);
      res.once('close', () => inService--);
    }
    const fault = faults.length === 0 ? undefined : findFault(prompt, raw, rec?.key);
    const ex: Exchange = { res, chat, raw, body, prompts, prompt, fault, rec };
    if (fault !== undefined && (fault.kind === 'timeout' || fault.kind === 'hang')) return;
    if (latencyMs > 0) setTimeout(respond, latencyMs, ex);
    else respond(ex);
  }

  const server = http.createServer({ keepAliveTimeout: 65_000, headersTimeout: 70_000, requestTimeout: 0 }, (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path === CHAT_PATH || path === COMPLETIONS_PATH) {
      if (req.method !== 'POST') {
        sendPlain(res, 405, errorBody(405, `Use POST for ${path}.`), ['Allow', 'POST']);
        return;
      }
      let first: Buffer | undefined;
      let more: Buffer[] | undefined;
      req.on('data', (chunk: Buffer) => {
        if (first === undefined) first = chunk;
        else if (more === undefined) more = [first, chunk];
        else more.push(chunk);
      });
      req.on('end', () => {
        const raw = more !== undefined ? Buffer.concat(more).toString('utf8') : first !== undefined ? first.toString('utf8') : '';
        onCompletion(res, path, raw, req.headers.authorization);
      });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const status = path === '/v1/models' || path === '/health' ? 405 : 404;
      sendPlain(res, status, errorBody(status, `No route ${req.method ?? ''} ${path}.`));
      return;
    }
    if (path === '/v1/models') sendPlain(res, 200, MODELS_BODY);
    else if (path === '/health' || path === '/v1/health') sendPlain(res, 200, HEALTH_BODY);
    else sendPlain(res, 404, errorBody(404, `No route GET ${path}.`));
  });

  let connections = 0;
  server.on('connection', () => connections++);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  interface Outage {
    timer: NodeJS.Timeout | undefined;
    back: Promise<void>;
  }
  let down: Outage | undefined;

  return {
    url: `http://${host}:${address.port}`,
    requests,
    answeredCounts(): Map<string, number> {
      const out = new Map<string, number>();
      for (const [raw, n] of answeredRaw) {
        const key = rawKey(raw);
        out.set(key, (out.get(key) ?? 0) + n);
      }
      return out;
    },
    totalRequests: () => total,
    capacityStats: () => ({ overloads, peakInService }),
    totalConnections: () => connections,
    setLatency(ms: number): void {
      latencyMs = latencyOf(ms);
    },
    addFault(match: string | RegExp, fault: FaultSpec): void {
      faults.push({ match, fault, attempts: new Map() });
    },
    clearFaults(): void {
      faults.length = 0;
    },
    waitForRequests(n: number): Promise<void> {
      if (total >= n) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push({ n, resolve }));
    },
    goDown(ms: number): Promise<void> {
      if (down !== undefined) throw new Error('fixture server: already down');
      if (closing !== undefined) throw new Error('fixture server: closed');
      const state: Outage = { timer: undefined, back: Promise.resolve() };
      state.back = new Promise<void>((resolve, reject) => {
        server.close(() => {
          state.timer = setTimeout(() => {
            state.timer = undefined;
            if (closing !== undefined) return resolve();
            server.once('error', reject);
            server.listen(address.port, address.address, () => {
              server.off('error', reject);
              down = undefined;
              resolve();
            });
          }, ms);
        });
        server.closeAllConnections();
      });
      down = state;
      return state.back;
    },
    isDown: () => down !== undefined,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        if (down?.timer !== undefined) clearTimeout(down.timer);
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function chatWords(messages: unknown): number {
  if (!Array.isArray(messages)) return 0;
  let n = 0;
  for (const m of messages) {
    if (m !== null && typeof m === 'object') n += countWords(contentText((m as Record<string, unknown>).content));
  }
  return n;
}

function completionWords(prompts: string | string[]): number {
  if (typeof prompts === 'string') return countWords(prompts);
  let n = 0;
  for (const p of prompts) n += countWords(p);
  return n;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      'latency-ms': { type: 'string', default: '0' },
      record: { type: 'boolean', default: false },
      answers: { type: 'string' },
    },
    strict: true,
  });
  const port = Number(values.port);
  const latencyMs = Number(values['latency-ms']);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad --port ${values.port}`);
  if (!Number.isFinite(latencyMs) || latencyMs < 0) throw new Error(`bad --latency-ms ${values['latency-ms']}`);
  const opts: FixtureServerOptions = { port, host: values.host, latencyMs, record: values.record };
  if (values.answers !== undefined) {
    opts.answer = answerFromTable(JSON.parse(readFileSync(values.answers, 'utf8')) as Record<string, string>);
  }
  const server = await startFixtureServer(opts);
  process.stdout.write(`listening ${server.url}\n`);
  const stop = (): void => {
    server.close().then(
      () => {
        process.stderr.write(`fixture-server: ${server.totalRequests()} requests\n`);
        process.exit(0);
      },
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`fixture-server: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
