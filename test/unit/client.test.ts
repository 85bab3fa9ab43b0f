import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { buildRequestBody, EndpointClient, parseRetryAfter, RequestFailedError, type EndpointClientOptions } from '../../harness/client.js';
import type { Prompt } from '../../harness/tasks/types.js';

// ---------------------------------------------------------------------------------------------------
// A tiny scripted HTTP server: each test decides per attempt (0, 1, 2, …) what to answer.
// ---------------------------------------------------------------------------------------------------

interface Seen {
  at: number;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

type Handler = (attempt: number, req: IncomingMessage, res: ServerResponse, body: string) => void;

interface TestServer {
  url: string;
  seen: Seen[];
  connections: () => number;
  close: () => Promise<void>;
}

const servers: TestServer[] = [];
const clients: EndpointClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(handler: Handler): Promise<TestServer> {
  const seen: Seen[] = [];
  let connections = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const attempt = seen.length;
      seen.push({ at: performance.now(), method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(attempt, req, res, body);
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const s: TestServer = {
    url: `http://127.0.0.1:${port}`,
    seen,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(s);
  return s;
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

const chatOk = (content: string | null, extra: Record<string, unknown> = {}) => ({
  id: 'x',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
  ...extra,
});

function client(server: TestServer, opts: Partial<EndpointClientOptions> = {}): EndpointClient {
  const c = new EndpointClient({
    url: `${server.url}/v1/chat/completions`,
    modelId: 'm',
    type: 'chat',
    parallelism: 2,
    requestTimeoutMs: 5000,
    maxRetries: 3,
    retryBaseDelayMs: 1,
    retryMaxDelayMs: 5,
    ...opts,
  });
  clients.push(c);
  return c;
}

const CHAT_BODY = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };

async function failure(p: Promise<unknown>): Promise<RequestFailedError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RequestFailedError);
    return err as RequestFailedError;
  }
  throw new Error('expected a RequestFailedError');
}

// ---------------------------------------------------------------------------------------------------

describe('buildRequestBody', () => {
  const chat: Prompt = { kind: 'chat', messages: [{ role: 'user', content: 'Q?' }] };
  const completions: Prompt = { kind: 'completions', prompt: 'Q: 1+1\nA:' };

  it('builds a chat body with only model and messages when no params are set', () => {
    expect(buildRequestBody(chat, 'llama', {}, false)).toEqual({ model: 'llama', messages: [{ role: 'user', content: 'Q?' }] });
  });

  it('builds a completions body with model and prompt', () => {
    expect(buildRequestBody(completions, 'llama', {}, false)).toEqual({ model: 'llama', prompt: 'Q: 1+1\nA:' });
  });

  it('maps max_new_tokens to max_tokens and copies temperature/top_p, stop and stream', () => {
    const body = buildRequestBody({ ...chat, stop: ['\n\n', 'Q:'] }, 'llama', { max_new_tokens: 64, temperature: 0.7, top_p: 0.9 }, true);
    expect(body).toEqual({
      model: 'llama',
      messages: [{ role: 'user', content: 'Q?' }],
      max_tokens: 64,
      temperature: 0.7,
      top_p: 0.9,
      stop: ['\n\n', 'Q:'],
      stream: true,
    });
    expect(buildRequestBody({ ...completions, stop: ['Q:'] }, 'm', { max_new_tokens: 8 }, false)).toEqual({
      model: 'm',
      prompt: 'Q: 1+1\nA:',
      max_tokens: 8,
      stop: ['Q:'],
    });
  });

  it('keeps a temperature of 0 and drops null/undefined params and an empty stop list', () => {
    const body = buildRequestBody({ ...completions, stop: [] }, 'm', { max_new_tokens: null, temperature: 0, top_p: undefined }, false);
    expect(body).toEqual({ model: 'm', prompt: 'Q: 1+1\nA:', temperature: 0 });
    expect('stream' in body).toBe(false);
    expect('stop' in body).toBe(false);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds (integer, fractional, zero; negative clamps to 0)', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter('1.5')).toBe(1500);
    expect(parseRetryAfter('0')).toBe(0);
    expect(parseRetryAfter('-4')).toBe(0);
  });

  it('reads an HTTP date relative to now, clamping past dates to 0', () => {
    const date = 'Wed, 21 Oct 2015 07:28:00 GMT';
    const t = Date.parse(date);
    expect(parseRetryAfter(date, t - 10_000)).toBe(10_000);
    expect(parseRetryAfter(date, t + 5_000)).toBe(0);
  });

  it('returns null for garbage, empty or missing values', () => {
    expect(parseRetryAfter('soon')).toBeNull();
    expect(parseRetryAfter('')).toBeNull();
    expect(parseRetryAfter(undefined)).toBeNull();
    expect(parseRetryAfter([])).toBeNull();
  });

  it('uses the first value of a repeated header', () => {
    expect(parseRetryAfter(['2', '9'])).toBe(2000);
    expect(parseRetryAfter(['nope', '9'])).toBeNull();
  });
});

describe('EndpointClient.send', () => {
  it('parses a 200 chat response and posts the JSON body to the route path', async () => {
    const server = await serve((_n, _req, res) => json(res, 200, chatOk('four')));
    const c = client(server);
    const out = await c.send(CHAT_BODY);
    expect(out).toEqual({ text: 'four', finishReason: 'stop', promptTokens: 11, completionTokens: 7, retries: 0 });
    expect(server.seen).toHaveLength(1);
    expect(server.seen[0]?.method).toBe('POST');
    expect(server.seen[0]?.url).toBe('/v1/chat/completions');
    expect(server.seen[0]?.headers['content-type']).toBe('application/json');
    expect(JSON.parse(server.seen[0]?.body ?? '')).toEqual(CHAT_BODY);
  });

  it('keeps the query string of the URL', async () => {
    const server = await serve((_n, _req, res) => json(res, 200, chatOk('ok')));
    const c = new EndpointClient({ url: `${server.url}/v1/chat/completions?api-version=2024`, modelId: 'm', type: 'chat', parallelism: 1, requestTimeoutMs: 5000, maxRetries: 0 });
    clients.push(c);
    await c.send(CHAT_BODY);
    expect(server.seen[0]?.url).toBe('/v1/chat/completions?api-version=2024');
  });

  it('keeps an empty answer; reads missing usage and finish_reason as 0/null', async () => {
    const server = await serve((_n, _req, res) => json(res, 200, { choices: [{ message: { role: 'assistant', content: '' } }] }));
    const out = await client(server).send(CHAT_BODY);
    expect(out).toEqual({ text: '', finishReason: null, promptTokens: 0, completionTokens: 0, retries: 0 });
  });

  it('retries a chat response without message.content (null or missing): malformed, never an empty answer', async () => {
    const server = await serve((n, _req, res) => {
      if (n === 0) json(res, 200, chatOk(null));
      else if (n === 1) json(res, 200, { choices: [{ message: { role: 'assistant' }, finish_reason: 'stop' }] });
      else json(res, 200, chatOk('42'));
    });
    const out = await client(server).send(CHAT_BODY);
    expect(out.text).toBe('42');
    expect(out.retries).toBe(2);
    const s2 = await serve((_n, _req, res) => json(res, 200, chatOk(null)));
    const err = await failure(client(s2, { maxRetries: 1 }).send(CHAT_BODY));
    expect(err.message).toMatch(/malformed response: no choices\[0\]\.message\.content \(null\)/);
    expect(s2.seen).toHaveLength(2);
  });

  it('parses a 200 completions response from choices[0].text; a null text is malformed and retried', async () => {
    const server = await serve((n, _req, res) =>
      json(res, 200, { choices: [{ text: n === 1 ? null : ' 42', finish_reason: 'length' }], usage: { prompt_tokens: 5, completion_tokens: 1 } }),
    );
    const c = client(server, { url: `${server.url}/v1/completions`, type: 'completions' });
    expect(await c.send({ model: 'm', prompt: 'x' })).toEqual({ text: ' 42', finishReason: 'length', promptTokens: 5, completionTokens: 1, retries: 0 });
    expect(await c.send({ model: 'm', prompt: 'y' })).toMatchObject({ text: ' 42', retries: 1 });
    expect(server.seen[0]?.url).toBe('/v1/completions');
  });

  it('honours Retry-After on a 429 (waits ~1 s, then succeeds with retries=1)', async () => {
    const server = await serve((n, _req, res) => (n === 0 ? json(res, 429, { error: 'slow down' }, { 'retry-after': '1' }) : json(res, 200, chatOk('ok'))));
    const out = await client(server).send(CHAT_BODY);
    expect(out.text).toBe('ok');
    expect(out.retries).toBe(1);
    expect(server.seen).toHaveLength(2);
    const gap = (server.seen[1]?.at ?? 0) - (server.seen[0]?.at ?? 0);
    expect(gap).toBeGreaterThanOrEqual(950);
    expect(gap).toBeLessThan(2500);
  });

  it('without Retry-After backs off by the (short) exponential delay only', async () => {
    const server = await serve((n, _req, res) => (n < 2 ? json(res, 503, 'busy') : json(res, 200, chatOk('ok'))));
    const t0 = performance.now();
    const out = await client(server).send(CHAT_BODY);
    expect(out.retries).toBe(2);
    expect(performance.now() - t0).toBeLessThan(900);
  });

  it('does not retry a 400: one attempt, status 400, retries 0, body in the message', async () => {
    const server = await serve((_n, _req, res) => json(res, 400, { error: { message: 'max_tokens too large' } }));
    const err = await failure(client(server).send(CHAT_BODY));
    expect(server.seen).toHaveLength(1);
    expect(err.status).toBe(400);
    expect(err.retries).toBe(0);
    expect(err.message).toContain('HTTP 400');
    expect(err.message).toContain('max_tokens too large');
  });

  it('does not retry 401/404 either', async () => {
    for (const status of [401, 404]) {
      const server = await serve((_n, _req, res) => json(res, status, 'no'));
      const err = await failure(client(server).send(CHAT_BODY));
      expect([err.status, err.retries, server.seen.length]).toEqual([status, 0, 1]);
    }
  });

  it('retries a 500 up to maxRetries, then fails with the status and the retry count', async () => {
    const server = await serve((_n, _req, res) => json(res, 500, 'boom'));
    const err = await failure(client(server, { maxRetries: 2 }).send(CHAT_BODY));
    expect(server.seen).toHaveLength(3);
    expect(err.status).toBe(500);
    expect(err.retries).toBe(2);
    expect(err.message).toBe('HTTP 500: boom (gave up after 3 attempts)');
  });

  it('with maxRetries 0 makes exactly one attempt', async () => {
    const server = await serve((_n, _req, res) => json(res, 502, 'bad gateway'));
    const err = await failure(client(server, { maxRetries: 0 }).send(CHAT_BODY));
    expect([server.seen.length, err.status, err.retries]).toEqual([1, 502, 0]);
  });

  it('reports the retries spent before a non-retryable status', async () => {
    const server = await serve((n, _req, res) => (n === 0 ? json(res, 503, 'busy') : json(res, 422, 'unprocessable')));
    const err = await failure(client(server).send(CHAT_BODY));
    expect([server.seen.length, err.status, err.retries]).toEqual([2, 422, 1]);
  });

  it('retries a malformed JSON body and a body without choices', async () => {
    const server = await serve((n, _req, res) => {
      if (n === 0) json(res, 200, '{"choices": [ {"message": ');
      else if (n === 1) json(res, 200, { choices: [] });
      else if (n === 2) json(res, 200, { choices: [{ message: { content: 42 } }] });
      else json(res, 200, chatOk('finally'));
    });
    const out = await client(server).send(CHAT_BODY);
    expect(out.text).toBe('finally');
    expect(out.retries).toBe(3);
    expect(server.seen).toHaveLength(4);
  });

  it('gives up on a persistently malformed body with status 200', async () => {
    const server = await serve((_n, _req, res) => json(res, 200, 'not json'));
    const err = await failure(client(server, { maxRetries: 1 }).send(CHAT_BODY));
    expect(err.status).toBe(200);
    expect(err.retries).toBe(1);
    expect(err.message).toContain('malformed response body: not json');
  });

  it('times out a hanging attempt (requestTimeoutMs) and retries it', async () => {
    const server = await serve((n, _req, res) => {
      if (n === 0) return; // never answer the first attempt
      json(res, 200, chatOk('late but fine'));
    });
    const t0 = performance.now();
    const out = await client(server, { requestTimeoutMs: 300 }).send(CHAT_BODY);
    const elapsed = performance.now() - t0;
    expect(out.text).toBe('late but fine');
    expect(out.retries).toBe(1);
    expect(server.seen).toHaveLength(2);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(3000);
  });

  it('fails with "request timed out" once every attempt timed out', async () => {
    const server = await serve(() => undefined);
    const err = await failure(client(server, { requestTimeoutMs: 150, maxRetries: 1 }).send(CHAT_BODY));
    expect(err.status).toBeNull();
    expect(err.retries).toBe(1);
    expect(err.message).toContain('request timed out');
    expect(server.seen).toHaveLength(2);
  });

  it('retries connection errors (nothing listening) and fails with status null', async () => {
    const server = await serve(() => undefined);
    const url = server.url;
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    const c = new EndpointClient({ url: `${url}/v1/chat/completions`, modelId: 'm', type: 'chat', parallelism: 1, requestTimeoutMs: 1000, maxRetries: 2, retryBaseDelayMs: 1 });
    clients.push(c);
    const err = await failure(c.send(CHAT_BODY));
    expect(err.status).toBeNull();
    expect(err.retries).toBe(2);
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it('parses an SSE stream for chat (deltas concatenated, last finish_reason and usage kept)', async () => {
    const server = await serve((_n, _req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (o: unknown) => res.write(`data: ${JSON.stringify(o)}\n\n`);
      chunk({ choices: [{ delta: { role: 'assistant' }, finish_reason: null }] });
      chunk({ choices: [{ delta: { content: 'The answer' }, finish_reason: null }] });
      res.write(': keep-alive comment\n\n');
      chunk({ choices: [{ delta: { content: ' is 4.' }, finish_reason: null }] });
      chunk({ choices: [{ delta: {}, finish_reason: 'stop' }] });
      chunk({ choices: [], usage: { prompt_tokens: 9, completion_tokens: 4 } });
      res.end('data: [DONE]\n\n');
    });
    const out = await client(server, { stream: true }).send({ ...CHAT_BODY, stream: true });
    expect(out).toEqual({ text: 'The answer is 4.', finishReason: 'stop', promptTokens: 9, completionTokens: 4, retries: 0 });
    expect(JSON.parse(server.seen[0]?.body ?? '').stream).toBe(true);
  });

  it('parses an SSE stream for completions (choices[].text), CRLF line endings included', async () => {
    const server = await serve((_n, _req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ choices: [{ text: ' 4', finish_reason: null }] })}\r\n\r\n`);
      res.write(`data: ${JSON.stringify({ choices: [{ text: '2', finish_reason: 'length' }] })}\r\n\r\n`);
      res.end('data: [DONE]\r\n\r\n');
    });
    const out = await client(server, { stream: true, type: 'completions', url: `${server.url}/v1/completions` }).send({ model: 'm', prompt: 'x', stream: true });
    expect(out.text).toBe(' 42');
    expect(out.finishReason).toBe('length');
  });

  it('retries an SSE stream with a broken chunk, no chunks at all, or chunks without any text', async () => {
    const server = await serve((n, _req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (n === 0) res.end('data: {"choices": [\n\n');
      else if (n === 1) res.end('data: [DONE]\n\n');
      else if (n === 2) res.end(`data: ${JSON.stringify({ choices: [{ delta: { role: 'assistant' }, finish_reason: 'stop' }] })}\n\ndata: [DONE]\n\n`);
      else res.end(`data: ${JSON.stringify({ choices: [{ delta: { content: 'ok' } }] })}\n\ndata: [DONE]\n\n`);
    });
    const out = await client(server, { stream: true }).send({ ...CHAT_BODY, stream: true });
    expect(out.text).toBe('ok');
    expect(out.retries).toBe(3);
  });

  it('sends Authorization only when an API key is set', async () => {
    const server = await serve((_n, _req, res) => json(res, 200, chatOk('ok')));
    await client(server, { apiKey: 'sk-secret-123' }).send(CHAT_BODY);
    await client(server).send(CHAT_BODY);
    await client(server, { apiKey: '' }).send(CHAT_BODY);
    expect(server.seen.map((s) => s.headers.authorization)).toEqual(['Bearer sk-secret-123', undefined, undefined]);
  });

  it('keeps connections alive: 50 requests use at most `parallelism` TCP connections', async () => {
    const server = await serve((_n, _req, res) => setTimeout(() => json(res, 200, chatOk('ok')), 2));
    const c = client(server, { parallelism: 4 });
    // 50 requests, in waves of up to 8 concurrent (more than the pool allows at once).
    for (let wave = 0; wave < 50; wave += 8) {
      const n = Math.min(8, 50 - wave);
      const outs = await Promise.all(Array.from({ length: n }, (_, i) => c.send({ ...CHAT_BODY, n: wave + i })));
      expect(outs.every((o) => o.text === 'ok')).toBe(true);
    }
    expect(server.seen).toHaveLength(50);
    expect(server.connections()).toBeGreaterThanOrEqual(1);
    expect(server.connections()).toBeLessThanOrEqual(4);
  });

  it('reuses connections for strictly sequential requests (no new connection per request)', async () => {
    const server = await serve((_n, _req, res) => json(res, 200, chatOk('ok')));
    const c = client(server, { parallelism: 8 });
    for (let i = 0; i < 20; i++) await c.send({ ...CHAT_BODY, i });
    expect(server.seen).toHaveLength(20);
    // undici may dispatch the next request before the previous connection is marked idle, so the pool
    // settles on at most two connections; never one per request, never the full pool of 8.
    expect(server.connections()).toBeLessThanOrEqual(2);
  });

  it('stops waiting when aborted during a Retry-After pause', async () => {
    const server = await serve((_n, _req, res) => json(res, 503, 'busy', { 'retry-after': '30' }));
    const controller = new AbortController();
    const c = client(server, { signal: controller.signal });
    const t0 = performance.now();
    setTimeout(() => controller.abort(new Error('stop now')), 100);
    await expect(c.send(CHAT_BODY)).rejects.toThrow('stop now');
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(server.seen).toHaveLength(1);
  });
});

describe('EndpointClient abort while requests are in flight', () => {
  it('fails every in-flight request at once when the run is aborted', async () => {
    const server = await serve(() => undefined); // never answers
    const controller = new AbortController();
    const c = client(server, { signal: controller.signal, requestTimeoutMs: 60_000 });
    const t0 = performance.now();
    const pending = Promise.allSettled([c.send(CHAT_BODY), c.send({ ...CHAT_BODY, n: 2 })]);
    setTimeout(() => controller.abort(new Error('stop now')), 100);
    const results = await pending;
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});
