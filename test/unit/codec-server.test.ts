import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defaultPayloadConverter } from '@temporalio/common';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { AesGcmCodec } from '../../common/codec.js';
import { createCodecServer } from '../../common/codec-server.js';

const keyring = (byte: number) => ({ file: '/keys', current: 'k1', keys: new Map([['k1', Buffer.alloc(32, byte)]]) });
const UI = 'http://127.0.0.1:8233';
const servers: Server[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function start(opts: { token?: string } = {}): Promise<string> {
  const server = createCodecServer({ codec: new AesGcmCodec(keyring(1)), corsOrigins: [UI], ...opts });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await request(url, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
  return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as { payloads?: Array<{ metadata: Record<string, string>; data: string }>; error?: string } };
}

/** A json/plain payload in proto3 JSON, as the Temporal CLI and Web UI send it. */
function jsonPayload(value: unknown) {
  const p = defaultPayloadConverter.toPayload(value);
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')])),
    data: Buffer.from(p.data ?? []).toString('base64'),
  };
}

describe('codec server', () => {
  it('encodes and decodes Payloads in proto3 JSON; only the last path segment counts', async () => {
    const url = await start();
    const enc = await post(`${url}/encode`, { payloads: [jsonPayload({ model: 'm-1' }), jsonPayload('two')] });
    expect(enc.status).toBe(200);
    expect(enc.headers['content-type']).toBe('application/json');
    const encrypted = enc.body.payloads ?? [];
    expect(encrypted).toHaveLength(2);
    expect(Buffer.from(encrypted[0]?.metadata.encoding ?? '', 'base64').toString()).toBe('binary/encrypted');
    expect(Buffer.from(encrypted[0]?.data ?? '', 'base64').toString('latin1')).not.toContain('m-1');

    const dec = await post(`${url}/default/decode`, { payloads: encrypted }, { 'x-namespace': 'default' });
    expect(dec.status).toBe(200);
    expect(dec.body.payloads).toEqual([jsonPayload({ model: 'm-1' }), jsonPayload('two')]);
  });

  it('answers 400 for bad JSON, a bad shape or an undecodable payload; 404 and 405 elsewhere', async () => {
    const url = await start();
    expect((await post(`${url}/decode`, '{not json')).status).toBe(400);
    const shape = await post(`${url}/decode`, { payload: [] });
    expect(shape.status).toBe(400);
    expect(shape.body.error).toMatch(/expected \{"payloads"/);
    // Encrypted with another key under the same id: the decode error is reported, with the key id.
    const other = await new AesGcmCodec(keyring(2)).encode([defaultPayloadConverter.toPayload('x')]);
    const foreign = other.map((p) => ({
      metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')])),
      data: Buffer.from(p.data ?? []).toString('base64'),
    }));
    const wrong = await post(`${url}/decode`, { payloads: foreign });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error).toMatch(/cannot decrypt a payload with key 'k1'/);
    expect((await post(`${url}/other`, { payloads: [] })).status).toBe(404);
    const get = await request(`${url}/decode`);
    expect(get.statusCode).toBe(405);
    await get.body.dump();
  });

  it('answers CORS preflights for the Web UI origin only', async () => {
    const url = await start({ token: 'tok-123' });
    const preflight = await request(`${url}/decode`, {
      method: 'OPTIONS',
      headers: { origin: UI, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace,authorization' },
    });
    await preflight.body.dump();
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe(UI);
    expect(preflight.headers['access-control-allow-credentials']).toBe('true');
    expect(String(preflight.headers['access-control-allow-headers'])).toMatch(/X-Namespace/);
    expect(String(preflight.headers['access-control-allow-methods'])).toMatch(/POST/);
    const stranger = await request(`${url}/decode`, { method: 'OPTIONS', headers: { origin: 'http://evil.example' } });
    await stranger.body.dump();
    expect(stranger.headers['access-control-allow-origin']).toBeUndefined();
    const real = await post(`${url}/decode`, { payloads: [] }, { origin: UI, authorization: 'Bearer tok-123' });
    expect(real.status).toBe(200);
    expect(real.headers['access-control-allow-origin']).toBe(UI);
  });

  it('requires the bearer token when one is set', async () => {
    const url = await start({ token: 'tok-123' });
    const none = await post(`${url}/decode`, { payloads: [] });
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect((await post(`${url}/decode`, { payloads: [] }, { authorization: 'Bearer tok-12' })).status).toBe(401);
    expect((await post(`${url}/encode`, { payloads: [] }, { authorization: 'Basic tok-123' })).status).toBe(401);
    expect((await post(`${url}/decode`, { payloads: [] }, { authorization: 'Bearer tok-123' })).body).toEqual({ payloads: [] });
  });
});
