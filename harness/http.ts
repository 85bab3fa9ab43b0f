/**
 * The parts of undici the harness uses (Pool, Client, request(), its error classes), loaded without the rest of the
 * package: `import 'undici'` also loads fetch, cookies, WebSocket, HTTP/2, mocks and cache stores, and node's own
 * copy of undici, about a third of the harness's start-up. What undici's index.js does for them is done here:
 * `request()` is put on the dispatchers' prototype.
 */
import type * as Undici from 'undici';
import ClientImpl from 'undici/lib/dispatcher/client.js';
import DispatcherImpl from 'undici/lib/dispatcher/dispatcher.js';
import PoolImpl from 'undici/lib/dispatcher/pool.js';
import requestImpl from 'undici/lib/api/api-request.js';
import errorsImpl from 'undici/lib/core/errors.js';

(DispatcherImpl as unknown as { prototype: { request: unknown } }).prototype.request = requestImpl;

export const Pool: typeof Undici.Pool = PoolImpl as typeof Undici.Pool;
export const Client: typeof Undici.Client = ClientImpl as typeof Undici.Client;
export const errors: typeof Undici.errors = errorsImpl as typeof Undici.errors;
export type Pool = Undici.Pool;

export interface OnceOptions {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH';
  headers: Record<string, string>;
  body?: string;
  timeoutMs?: number;
  signal?: AbortSignal | undefined;
}

/** One request on a connection of its own, closed once the answer is read (undici's request() without its global Agent). */
export async function requestOnce(url: string, options: OnceOptions): Promise<{ statusCode: number; text: string }> {
  const target = new URL(url);
  const client = new Client(target.origin, options.timeoutMs === undefined ? {} : { headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs });
  try {
    const res = await client.request({
      method: options.method,
      path: target.pathname + target.search,
      headers: options.headers,
      body: options.body ?? null,
      signal: options.signal ?? null,
    });
    return { statusCode: res.statusCode, text: await res.body.text() };
  } finally {
    await client.destroy();
  }
}
