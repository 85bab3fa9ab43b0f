import net from 'node:net';
import { Pool, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import {
  answerFromTable,
  canonicalJson,
  countWords,
  defaultAnswer,
  FIXTURE_MODEL,
  type FixtureServer,
  type FixtureServerOptions,
  requestKey,
  startFixtureServer,
} from '../../common/fixture-endpoint.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

const started: FixtureServer[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close()));
});

async function serve(opts?: FixtureServerOptions): Promise<FixtureServer> {
  const server = await startFixtureServer(opts);
  started.push(server);
  return server;
}

async function call(server: FixtureServer, path: string, body?: unknown, extra: { method?: 'GET' | 'POST'; raw?: string; headersTimeout?: number; signal?: AbortSignal } = {}): Promise<Reply> {
  const method = extra.method ?? (body === undefined && extra.raw === undefined ? 'GET' : 'POST');
  const res = await request(server.url + path, {
    method,
    headers: method === 'POST' ? { 'content-type': 'application/json' } : {},
    body: method === 'POST' ? (extra.raw ?? JSON.stringify(body)) : undefined,
    headersTimeout: extra.headersTimeout,
    signal: extra.signal,
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

function chatBody(content: string, more: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: 'test-model', messages: [{ role: 'user', content }], temperature: 0, ...more };
}

async function chat(server: FixtureServer, content: string, more: Record<string, unknown> = {}): Promise<Reply> {
  return call(server, '/v1/chat/completions', chatBody(content, more));
}

function contentOf(reply: Reply): string {
  const json = JSON.parse(reply.text) as { choices: Array<{ message: { content: string } }> };
  return json.choices[0]?.message.content ?? '';
}

/** `data:` payloads of an SSE body, in order. */
function sseData(text: string): string[] {
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice('data: '.length));
}

describe('fixture server: endpoints and shapes', () => {
  it('answers chat completions in the OpenAI shape, echoing the model', async () => {
    const server = await serve();
    const body = {
      model: 'my-model',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'What is two plus two?' },
        { role: 'assistant', content: 'Four.' },
        { role: 'user', content: [{ type: 'text', text: 'And three plus three?' }] },
      ],
    };
    const reply = await call(server, '/v1/chat/completions', body);
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json');
    const json = JSON.parse(reply.text) as Record<string, unknown>;
    const answer = defaultAnswer('And three plus three?');
    expect(json).toEqual({
      id: expect.stringMatching(/^chatcmpl-/) as unknown,
      object: 'chat.completion',
      created: expect.any(Number) as unknown,
      model: 'my-model',
      choices: [{ index: 0, message: { role: 'assistant', content: answer }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: 3 + 5 + 1 + 4, completion_tokens: countWords(answer), total_tokens: 13 + countWords(answer) },
    });
    expect(answer).toMatch(/^Let me think step by step\. The answer is \d+\.$/);
    expect(server.requests).toEqual([
      { path: '/v1/chat/completions', key: requestKey(body), prompt: 'And three plus three?', status: 200, answered: true },
    ]);
  });

  it('answers text completions, one choice per prompt of a batch', async () => {
    const server = await serve();
    const one = JSON.parse((await call(server, '/v1/completions', { prompt: 'Once upon a time' })).text) as Record<string, unknown>;
    expect(one).toEqual({
      id: expect.stringMatching(/^cmpl-/) as unknown,
      object: 'text_completion',
      created: expect.any(Number) as unknown,
      model: FIXTURE_MODEL,
      choices: [{ text: defaultAnswer('Once upon a time'), index: 0, logprobs: null, finish_reason: 'stop' }],
      usage: {
        prompt_tokens: 4,
        completion_tokens: countWords(defaultAnswer('Once upon a time')),
        total_tokens: 4 + countWords(defaultAnswer('Once upon a time')),
      },
    });
    const batch = JSON.parse((await call(server, '/v1/completions', { model: 'm', prompt: ['a b', 'c'] })).text) as {
      choices: Array<{ text: string; index: number }>;
    };
    expect(batch.choices.map((c) => [c.index, c.text])).toEqual([
      [0, defaultAnswer('a b')],
      [1, defaultAnswer('c')],
    ]);
    expect(server.requests.map((r) => r.prompt)).toEqual(['Once upon a time', 'a b\nc']);
  });

  it('serves /v1/models and /health, and rejects unknown routes and methods', async () => {
    const server = await serve();
    const models = await call(server, '/v1/models');
    expect(models.status).toBe(200);
    expect(JSON.parse(models.text)).toMatchObject({ data: [{ id: 'fixture-model', object: 'model' }] });
    expect((await call(server, '/health')).status).toBe(200);
    const missing = await call(server, '/v1/nothing');
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.text)).toMatchObject({ error: { type: 'invalid_request_error' } });
    expect((await call(server, '/v1/chat/completions', undefined, { method: 'GET' })).status).toBe(405);
    expect(server.totalRequests()).toBe(0);
  });

  it('rejects a malformed body with a 400 OpenAI-style error and counts it', async () => {
    const server = await serve();
    const bad = await call(server, '/v1/chat/completions', undefined, { raw: '{"model": "m", "messages": [' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.text)).toEqual({
      error: { message: expect.any(String) as unknown, type: 'invalid_request_error', param: null, code: null },
    });
    expect((await call(server, '/v1/chat/completions', { model: 'm' })).status).toBe(400);
    expect((await call(server, '/v1/completions', { prompt: 42 })).status).toBe(400);
    expect((await call(server, '/v1/chat/completions', undefined, { raw: '[1,2]' })).status).toBe(400);
    expect(server.totalRequests()).toBe(4);
    expect(server.requests.map((r) => [r.status, r.answered])).toEqual([
      [400, true],
      [400, true],
      [400, true],
      [400, true],
    ]);
    expect(server.answeredCounts().size).toBe(0);
    expect((await chat(server, 'still fine')).status).toBe(200);
  });

  it('streams chat completions as SSE chunks ending in [DONE]', async () => {
    const server = await serve({ answer: () => 'The answer is 72.' });
    const reply = await chat(server, 'stream me', { stream: true, stream_options: { include_usage: true } });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('text/event-stream');
    const data = sseData(reply.text);
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as {
      object: string;
      model: string;
      choices: Array<{ delta: { role?: string; content?: string }; finish_reason: string | null }>;
      usage?: { completion_tokens: number };
    });
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'test-model')).toBe(true);
    const pieces = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content).filter((x): x is string => x !== undefined));
    expect(pieces).toEqual(['The answer ', 'is ', '72.']);
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    expect(chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason))).toEqual([null, null, null, 'stop']);
    expect(chunks.at(-1)?.usage?.completion_tokens).toBe(4);
    expect(server.answeredCounts().get(requestKey(chatBody('stream me', { stream: true, stream_options: { include_usage: true } })))).toBe(1);
  });

  it('streams text completions', async () => {
    const server = await serve();
    const reply = await call(server, '/v1/completions', { prompt: 'p', stream: true });
    const data = sseData(reply.text);
    expect(data.at(-1)).toBe('[DONE]');
    const texts = data.slice(0, -1).map((d) => (JSON.parse(d) as { choices: Array<{ text: string }> }).choices[0]?.text ?? '');
    expect(texts.join('')).toBe(defaultAnswer('p'));
    expect(texts.filter((t) => t !== '').length).toBe(3);
  });
});

describe('fixture server: scripted answers', () => {
  it('answerFromTable returns the first key contained in the prompt, else the fallback', () => {
    const answer = answerFromTable({ 'Natalia sold clips': '#### 72', 'clips': 'too broad', 'Weng earns': '#### 10' });
    expect(answer('Question: Natalia sold clips to 48 of her friends in April...\nAnswer:')).toBe('#### 72');
    expect(answer('Weng earns $12 an hour for babysitting.')).toBe('#### 10');
    expect(answer('How many clips?')).toBe('too broad');
    expect(answer('Something else')).toBe("I don't know");
    expect(answerFromTable({}, 'pass')('x')).toBe('pass');
  });

  it('uses the answer option with the last user message and the body', async () => {
    const seen: Array<[string, unknown]> = [];
    const table = answerFromTable({ 'Natalia sold clips': 'Natalia sold 72 clips. #### 72' });
    const server = await serve({
      answer: (prompt, body) => {
        seen.push([prompt, body.model]);
        return table(prompt);
      },
    });
    const reply = await call(server, '/v1/chat/completions', {
      model: 'scripted',
      messages: [
        { role: 'system', content: 'Solve it.' },
        { role: 'user', content: 'Natalia sold clips to 48 of her friends in April, and then half as many in May.' },
      ],
    });
    expect(contentOf(reply)).toBe('Natalia sold 72 clips. #### 72');
    expect(contentOf(await chat(server, 'unknown question'))).toBe("I don't know");
    expect(seen).toEqual([
      ['Natalia sold clips to 48 of her friends in April, and then half as many in May.', 'scripted'],
      ['unknown question', 'test-model'],
    ]);
  });

  it('turns a throwing answerer into a 500', async () => {
    const server = await serve({
      answer: () => {
        throw new Error('boom');
      },
    });
    const reply = await chat(server, 'x');
    expect(reply.status).toBe(500);
    expect(JSON.parse(reply.text)).toMatchObject({ error: { type: 'server_error', message: expect.stringContaining('boom') as unknown } });
  });

  it('keys requests by canonical JSON, independent of key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 0, y: null }], c: 'x' } })).toBe('{"a":{"c":"x","d":[1,{"y":null,"z":0}]},"b":1}');
    expect(canonicalJson({ logit_bias: { '50256': -100, '9': 1 }, model: 'm' })).toBe('{"logit_bias":{"50256":-100,"9":1},"model":"m"}');
    expect(requestKey({ model: 'm', messages: [] })).toBe(requestKey({ messages: [], model: 'm' }));
    expect(requestKey({ model: 'm' })).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('fixture server: faults', () => {
  it('replies 429 with Retry-After for exactly the first N attempts of a request, then 200', async () => {
    const server = await serve({ faults: [{ match: 'busy', fault: { kind: 'status', status: 429, retryAfterS: 1, times: 2 } }] });
    const first = await chat(server, 'a busy prompt');
    expect(first.status).toBe(429);
    expect(first.headers['retry-after']).toBe('1');
    expect(JSON.parse(first.text)).toMatchObject({ error: { type: 'rate_limit_error', code: 'rate_limit_exceeded' } });
    expect((await chat(server, 'a busy prompt')).status).toBe(429);
    expect((await chat(server, 'a busy prompt')).status).toBe(200);
    expect((await chat(server, 'a busy prompt')).status).toBe(200);
    // Another request key (other parameters) has its own attempts; other prompts are not touched.
    expect((await chat(server, 'a busy prompt', { temperature: 0.5 })).status).toBe(429);
    expect((await chat(server, 'a quiet prompt')).status).toBe(200);
    expect(server.requests.map((r) => r.status)).toEqual([429, 429, 200, 200, 429, 200]);
    const key = requestKey(chatBody('a busy prompt'));
    expect(server.answeredCounts().get(key)).toBe(2);
    expect(server.requests.filter((r) => r.key === key).length).toBe(4);
  });

  it('counts attempts per key under concurrency', async () => {
    const server = await serve();
    server.addFault(/^burst \d+$/, { kind: 'status', status: 429, times: 2 });
    const replies = await Promise.all(Array.from({ length: 24 }, (_, i) => chat(server, `burst ${i % 3}`)));
    for (let k = 0; k < 3; k++) {
      const statuses = replies.filter((_, i) => i % 3 === k).map((r) => r.status);
      expect(statuses.filter((s) => s === 429).length).toBe(2);
      expect(statuses.filter((s) => s === 200).length).toBe(6);
      expect(server.answeredCounts().get(requestKey(chatBody(`burst ${k}`)))).toBe(6);
    }
    expect(replies.every((r) => r.status === 200 || r.headers['retry-after'] === undefined)).toBe(true);
  });

  it('replies 500s, and chains faults in order', async () => {
    const server = await serve();
    server.addFault('flaky', { kind: 'status', status: 429, times: 1 });
    server.addFault('flaky', { kind: 'status', status: 500, times: 1 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await chat(server, 'flaky')).status);
    expect(statuses).toEqual([429, 500, 200, 200]);
    server.addFault('down', { kind: 'status', status: 503, times: 5 });
    const down = await chat(server, 'down');
    expect(down.status).toBe(503);
    expect(JSON.parse(down.text)).toMatchObject({ error: { type: 'server_error' } });
    server.clearFaults();
    expect((await chat(server, 'down')).status).toBe(200);
  });

  it('sends malformed JSON with a 200 for garbage faults, not counted as answered', async () => {
    const server = await serve({ faults: [{ match: 'junk', fault: { kind: 'garbage', times: 1 } }] });
    const junk = await chat(server, 'junk');
    expect(junk.status).toBe(200);
    expect(() => JSON.parse(junk.text) as unknown).toThrow();
    const streamed = await chat(server, 'junk', { stream: true });
    expect(streamed.status).toBe(200);
    expect(() => sseData(streamed.text).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d) as unknown)).toThrow();
    expect(contentOf(await chat(server, 'junk'))).toBe(defaultAnswer('junk'));
    expect(server.answeredCounts().get(requestKey(chatBody('junk')))).toBe(1);
    expect(server.requests.map((r) => [r.status, r.answered])).toEqual([
      [200, true],
      [200, true],
      [200, true],
    ]);
  });

  it('holds timeout faults until the client gives up, then answers the retry', async () => {
    const server = await serve({ faults: [{ match: 'slow', fault: { kind: 'timeout', times: 1 } }] });
    const t0 = performance.now();
    await expect(call(server, '/v1/chat/completions', chatBody('slow'), { headersTimeout: 300 })).rejects.toMatchObject({
      code: 'UND_ERR_HEADERS_TIMEOUT',
    });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
    const retry = await call(server, '/v1/chat/completions', chatBody('slow'), { headersTimeout: 2_000 });
    expect(retry.status).toBe(200);
    expect(server.requests.map((r) => [r.status, r.answered])).toEqual([
      [0, false],
      [200, true],
    ]);
    expect(server.answeredCounts().get(requestKey(chatBody('slow')))).toBe(1);
  });

  it('close() returns promptly while hang faults hold sockets', async () => {
    const server = await startFixtureServer({ faults: [{ match: 'stuck', fault: { kind: 'hang' } }] });
    const pending = Array.from({ length: 5 }, (_, i) => chat(server, `stuck ${i}`).then(
      () => 'answered',
      () => 'failed',
    ));
    await server.waitForRequests(5);
    const t0 = performance.now();
    await server.close();
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(await Promise.all(pending)).toEqual(Array(5).fill('failed'));
    expect(server.requests.every((r) => r.status === 0 && !r.answered)).toBe(true);
    await server.close(); // idempotent
  });
});

describe('fixture server: counters, latency, robustness', () => {
  it('waitForRequests resolves once n completion requests arrived', async () => {
    const server = await serve({ latencyMs: 200 });
    let resolved = false;
    const waiting = server.waitForRequests(3).then(() => (resolved = true));
    const replies = [chat(server, 'one'), chat(server, 'two')];
    await server.waitForRequests(2);
    expect(resolved).toBe(false);
    replies.push(chat(server, 'three'));
    await waiting;
    expect(server.totalRequests()).toBe(3);
    // Received, not yet answered: the latency is still running.
    expect(server.answeredCounts().size).toBe(0);
    await Promise.all(replies);
    expect(server.answeredCounts().size).toBe(3);
    await server.waitForRequests(1); // already reached
  });

  it('counts TCP connections: a keep-alive pool reuses its sockets, a client without keep-alive opens one per request', async () => {
    const server = await serve();
    const pool = new Pool(server.url, { connections: 2 });
    const body = JSON.stringify(chatBody('kept alive'));
    for (let i = 0; i < 6; i++) {
      const res = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body });
      await res.body.text();
    }
    await pool.close();
    expect(server.totalRequests()).toBe(6);
    const pooled = server.totalConnections();
    expect(pooled).toBeGreaterThanOrEqual(1);
    expect(pooled).toBeLessThanOrEqual(2);
    for (let i = 0; i < 3; i++) {
      const res = await request(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, reset: true });
      await res.body.text();
    }
    expect(server.totalConnections()).toBe(pooled + 3);
  });

  it('applies and changes latency', async () => {
    const server = await serve({ latencyMs: 150 });
    let t0 = performance.now();
    await chat(server, 'x');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
    server.setLatency(0);
    t0 = performance.now();
    await chat(server, 'y');
    expect(performance.now() - t0).toBeLessThan(140);
    expect(() => server.setLatency(-1)).toThrow();
  });

  it('counts repeated identical requests and keeps no records when record is false', async () => {
    const server = await serve({ record: false });
    for (let i = 0; i < 3; i++) await chat(server, 'same');
    await chat(server, 'same', { max_tokens: 5 });
    const counts = server.answeredCounts();
    expect(counts.get(requestKey(chatBody('same')))).toBe(3);
    expect(counts.get(requestKey(chatBody('same', { max_tokens: 5 })))).toBe(1);
    expect(server.requests).toEqual([]);
    expect(server.totalRequests()).toBe(4);
  });

  it('does not count a response whose client left during the latency', async () => {
    const server = await serve({ latencyMs: 300 });
    await expect(call(server, '/v1/chat/completions', chatBody('gone'), { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 400));
    expect(server.answeredCounts().size).toBe(0);
    expect(server.requests[0]).toMatchObject({ status: 0, answered: false });
  });

  it('survives a client that disconnects in the middle of a body', async () => {
    const server = await serve();
    const { port } = new URL(server.url);
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"mod');
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 50);
      });
      socket.on('error', reject);
    });
    await new Promise((r) => setTimeout(r, 50));
    expect((await chat(server, 'after')).status).toBe(200);
    expect(server.totalRequests()).toBe(1);
  });
});
