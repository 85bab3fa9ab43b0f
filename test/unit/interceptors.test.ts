import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { CachedResponse } from '../../harness/cache.js';
import { AdapterConfigError, ClientErrorRaised, InterceptorChain, modifyPayload, planInterceptors, withSystemMessage } from '../../harness/interceptors.js';

const names = (cfg: Record<string, unknown> | undefined) => planInterceptors(cfg).links.map((l) => l.name);
const response = (text: string, extra: Partial<CachedResponse> = {}): CachedResponse => ({ text, finishReason: 'stop', promptTokens: 10, completionTokens: 4, ...extra });
const chainOf = (interceptors: unknown[], log: (l: string) => void = () => undefined) => new InterceptorChain(planInterceptors({ interceptors }).links, { outputDir: '/tmp/out', log });

describe('planInterceptors', () => {
  it('defaults to caching, endpoint, response_stats (upstream without adapter_config)', () => {
    expect(names(undefined)).toEqual(['caching', 'endpoint', 'response_stats']);
  });

  it('takes names and {name, enabled, config} in order, drops disabled ones, fills defaults', () => {
    const plan = planInterceptors({
      interceptors: [{ name: 'system_message', config: { system_message: 'Be brief.' } }, 'caching', 'endpoint', { name: 'reasoning', enabled: false }, 'response_stats'],
    });
    expect(plan.links.map((l) => l.name)).toEqual(['system_message', 'caching', 'endpoint', 'response_stats']);
    expect(plan.links[0]).toEqual({ name: 'system_message', config: { system_message: 'Be brief.', strategy: 'prepend' } });
    expect(plan.links[1]).toEqual({ name: 'caching', config: { reuse_cached_responses: true, save_responses: true } });
  });

  it("enforces upstream's order and requires the endpoint, naming the entry", () => {
    const fails = (cfg: Record<string, unknown>, message: RegExp) => expect(() => planInterceptors(cfg)).toThrow(message);
    fails({ interceptors: ['endpoint', 'payload_modifier'] }, /interceptors\[1\]: payload_modifier is a request interceptor and must come before the request-to-response ones/);
    fails({ interceptors: ['caching', 'reasoning'] }, /interceptors: the endpoint interceptor is required/);
    fails({ interceptors: ['endpoint', 'caching'] }, /interceptors\[1\]: caching must come before endpoint/);
    expect(names({ interceptors: ['endpoint', 'reasoning', 'response_logging'] })).toEqual(['endpoint', 'reasoning', 'response_logging']);
    fails({ interceptors: ['nvcf', 'endpoint'] }, /interceptors\[0\]\.name: unknown interceptor "nvcf"/);
    fails({ interceptors: [{ name: 'reasoning', config: { end_token: 'x' } }, 'endpoint'] }, /interceptors\[0\]\.config: unknown key\(s\) end_token/);
    fails({ interceptors: ['endpoint'], use_reasoning: true }, /cannot be mixed/);
    fails({ bogus: 1 }, /adapter_config\.bogus: unknown key/);
    expect(() => planInterceptors({ interceptors: ['endpoint', 'endpoint'] })).toThrow(AdapterConfigError);
  });

  it('converts the legacy flags in upstream order', () => {
    const plan = planInterceptors({
      use_system_prompt: true,
      custom_system_prompt: 'Think.',
      params_to_remove: ['top_p'],
      use_request_logging: true,
      max_logged_requests: 5,
      use_reasoning: true,
      end_reasoning_token: '</reason>',
      include_if_reasoning_not_finished: false,
      use_progress_tracking: true,
      progress_tracking_url: 'http://127.0.0.1:9/progress',
      use_raise_client_errors: true,
      generate_html_report: true,
    });
    expect(plan.links.map((l) => l.name)).toEqual([
      'system_message', 'payload_modifier', 'request_logging', 'caching', 'endpoint', 'reasoning', 'response_stats', 'progress_tracking', 'raise_client_errors',
    ]);
    expect(plan.links.find((l) => l.name === 'reasoning')?.config).toMatchObject({ end_reasoning_token: '</reason>', include_if_not_finished: false });
    expect(plan.links.find((l) => l.name === 'request_logging')?.config).toMatchObject({ max_requests: 5 });
    expect(plan.ignored).toEqual(['target.api_endpoint.adapter_config.generate_html_report: ignored: no HTML report is written (per-sample outputs hold every request and response)']);
    expect(names({ use_caching: false, tracking_requests_stats: false })).toEqual(['endpoint']);
  });

  it('reports accepted keys that change nothing', () => {
    const plan = planInterceptors({ interceptors: [{ name: 'caching', config: { save_requests: true } }, 'endpoint'] });
    expect(plan.ignored).toEqual(['target.api_endpoint.adapter_config.interceptors[0].config.save_requests: ignored: requests are not stored (the key is their hash)']);
    expect(planInterceptors({ save_requests: true }).ignored).toEqual(['target.api_endpoint.adapter_config.save_requests: ignored: requests are not stored (the key is their hash)']);
  });
});

describe('request interceptors', () => {
  const body = { model: 'm', messages: [{ role: 'user', content: 'Hi' }], temperature: 0, top_p: 0.9 };

  it('system_message inserts a system message, or prepends / appends to / replaces the existing one', () => {
    expect(withSystemMessage(body, 'Be brief.', 'prepend').messages).toEqual([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }]);
    const withSystem = { ...body, messages: [{ role: 'system', content: 'Old.' }, ...body.messages] };
    expect((withSystemMessage(withSystem, 'New.', 'prepend').messages as Array<{ content: string }>)[0]?.content).toBe('New.\nOld.');
    expect((withSystemMessage(withSystem, 'New.', 'append').messages as Array<{ content: string }>)[0]?.content).toBe('Old.\nNew.');
    expect(withSystemMessage(withSystem, 'New.', 'replace').messages).toEqual([{ role: 'system', content: 'New.' }, { role: 'user', content: 'Hi' }]);
    expect(withSystemMessage({ model: 'm', prompt: 'x' }, 'New.', 'prepend')).toEqual({ model: 'm', prompt: 'x' }); // completions: unchanged
  });

  it('payload_modifier removes, renames, then adds (deep; extra_body into the body)', () => {
    const out = modifyPayload(
      { ...body, chat_template_kwargs: { a: 1 } },
      { params_to_remove: ['top_p'], params_to_rename: { temperature: 'temp' }, params_to_add: { max_tokens: 7, extra_body: { chat_template_kwargs: { enable_thinking: false } } } },
    );
    expect(out).toEqual({ model: 'm', messages: body.messages, temp: 0, max_tokens: 7, chat_template_kwargs: { a: 1, enable_thinking: false } });
  });

  it('request_logging logs up to max_requests bodies, the key masked', () => {
    const lines: string[] = [];
    const chain = chainOf([{ name: 'request_logging', config: { max_requests: 1 } }, 'endpoint'], (l) => lines.push(l));
    chain.prepareRequest(body);
    chain.prepareRequest(body);
    expect(lines).toEqual([`request_logging: ${JSON.stringify({ headers: { 'content-type': 'application/json', authorization: '***' }, body })}`]);
  });
});

describe('response interceptors', () => {
  it('reasoning strips up to the end token, keeps the reasoning, and counts it', () => {
    const chain = chainOf(['endpoint', 'reasoning']);
    const out = chain.processResponse(response('<think>2+2 is 4, or 5?</think>\n\nThe answer is 4.\n'), false);
    expect(out.text).toBe('The answer is 4.');
    expect(out.reasoning).toBe('<think>2+2 is 4, or 5?');
    // Unfinished reasoning is kept by default (include_if_not_finished) …
    expect(chain.processResponse(response('<think>still thinking'), false).text).toBe('<think>still thinking');
    // … and a plain answer passes unchanged.
    expect(chain.processResponse(response('The answer is 4.'), true)).toMatchObject({ text: 'The answer is 4.', reasoning: null });
    expect(chain.metrics().reasoning).toEqual({
      responses: 3, responses_with_reasoning: 2, reasoning_finished: 1, reasoning_unfinished: 1, reasoning_words: 5 + 2, answer_words: 4 + 2 + 4,
      avg_reasoning_words: 3.5, avg_answer_words: 10 / 3,
    });
  });

  it('reasoning: reasoning_content is the reasoning; unfinished reasoning scores empty without include_if_not_finished', () => {
    const chain = chainOf(['endpoint', { name: 'reasoning', config: { include_if_not_finished: false } }]);
    expect(chain.processResponse(response('4', { reasoningContent: 'add them' }), false)).toMatchObject({ text: '4', reasoning: 'add them' });
    expect(chain.processResponse(response('<think>hmm'), false).text).toBe('');
  });

  it('response_stats counts fresh responses only: tokens and finish reasons', () => {
    const chain = chainOf(['endpoint', 'response_stats']);
    chain.processResponse(response('a'), false);
    chain.processResponse(response('b', { finishReason: 'length', completionTokens: 8 }), false);
    chain.processResponse(response('c'), true);
    expect(chain.metrics().response_stats).toEqual({ responses_counted: 2, avg_prompt_tokens: 10, avg_completion_tokens: 6, finish_reason: { stop: 1, length: 1 } });
  });

  it('raise_client_errors ends the run on 4xx other than 408/429 (or the listed codes)', () => {
    const chain = chainOf(['endpoint', 'raise_client_errors']);
    expect(() => chain.checkFailure(400, 'HTTP 400: bad')).toThrow(ClientErrorRaised);
    expect(() => chain.checkFailure(429, 'HTTP 429')).not.toThrow();
    expect(() => chain.checkFailure(500, 'HTTP 500')).not.toThrow();
    expect(() => chain.checkFailure(null, 'ECONNREFUSED')).not.toThrow();
    const listed = chainOf(['endpoint', { name: 'raise_client_errors', config: { status_codes: [404] } }]);
    expect(() => listed.checkFailure(400, 'x')).not.toThrow();
    expect(() => listed.checkFailure(404, 'x')).toThrow(/raise_client_errors/);
    expect(() => chainOf(['endpoint']).checkFailure(400, 'x')).not.toThrow();
  });

  it('progress_tracking reports every `interval` fresh responses to its URL', async () => {
    const received: Array<{ method: string | undefined; body: string }> = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ method: req.method, body });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/progress`;
    const chain = chainOf(['endpoint', { name: 'progress_tracking', config: { progress_tracking_url: url, progress_tracking_interval: 2 } }]);
    for (let i = 0; i < 5; i++) chain.processResponse(response('x'), i === 4);
    await chain.drain();
    server.close();
    expect(received).toEqual([
      { method: 'PATCH', body: '{"samples_processed":2}' },
      { method: 'PATCH', body: '{"samples_processed":4}' },
    ]);
  });
});
