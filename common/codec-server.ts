/**
 * `evalflow codec-server`: Temporal's remote codec protocol over HTTP, so the Web UI and
 * `temporal workflow show --codec-endpoint` can show encrypted runs to those who may hold the key.
 *
 * Protocol (Temporal's codec server protocol): `POST …/encode` and `POST …/decode`, only the last path
 * segment counts (so `/{namespace}/decode` works too); body and answer are a Payloads message in proto3
 * JSON, `{"payloads":[{"metadata":{"<key>":"<base64>"},"data":"<base64>"}]}`; bad JSON or a payload that
 * cannot be decoded is 400. The Web UI calls from the browser, so CORS answers the UI's origin (preflight
 * included; `X-Namespace`, `Content-Type` and `Authorization` allowed, credentials allowed).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { z } from 'zod';

/** The origins of the Temporal Web UI that `evalflow server start-dev` and docker-compose.temporal.yml serve. */
export const DEFAULT_UI_ORIGINS = ['http://127.0.0.1:8233', 'http://localhost:8233', 'http://127.0.0.1:8080', 'http://localhost:8080'];

/** A whole workflow history can be decoded in one call: allow large bodies, but not unbounded ones. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

const PayloadsJsonSchema = z.object({
  payloads: z.array(
    z.object({
      metadata: z.record(z.string(), z.string()).nullish(),
      data: z.string().nullish(),
    }),
  ),
});

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Browser origins allowed to call (the Web UI's). */
  corsOrigins: string[];
  /** When set, every encode/decode call must send `Authorization: Bearer <token>`. */
  token?: string;
  /** Told about refused or failed calls (never the payloads). */
  log?: (line: string) => void;
}

export function createCodecServer(opts: CodecServerOptions): Server {
  const origins = new Set(opts.corsOrigins.map((o) => o.replace(/\/+$/, '')));
  const tokenDigest = opts.token === undefined ? undefined : sha256(opts.token);
  const log = opts.log ?? (() => undefined);

  return createServer((req, res) => {
    const origin = req.headers.origin;
    if (origin && origins.has(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
    }
    res.setHeader('Vary', 'Origin');
    const operation = /\/(encode|decode)\/?$/.exec(new URL(req.url ?? '/', 'http://codec').pathname)?.[1] as 'encode' | 'decode' | undefined;
    if (!operation) return void send(res, 404, { error: 'not found: POST …/encode or …/decode' });
    if (req.method === 'OPTIONS') {
      // CORS preflight: browsers send no credentials here, so it is answered without auth.
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
      res.setHeader('Access-Control-Max-Age', '600');
      res.writeHead(204).end();
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST, OPTIONS');
      return void send(res, 405, { error: `${req.method} not allowed: use POST` });
    }
    if (tokenDigest && !authorized(req, tokenDigest)) {
      log(`refused ${operation} from ${req.socket.remoteAddress ?? '?'}: missing or wrong bearer token`);
      res.setHeader('WWW-Authenticate', 'Bearer');
      return void send(res, 401, { error: 'unauthorized: send Authorization: Bearer <token>' });
    }
    void handle(opts.codec, operation, req, res, log);
  });
}

async function handle(
  codec: PayloadCodec,
  operation: 'encode' | 'decode',
  req: IncomingMessage,
  res: ServerResponse,
  log: (line: string) => void,
): Promise<void> {
  let body: z.infer<typeof PayloadsJsonSchema>;
  try {
    const parsed = PayloadsJsonSchema.safeParse(JSON.parse(await readBody(req)));
    if (!parsed.success) return send(res, 400, { error: `expected {"payloads":[{"metadata":{…},"data":"<base64>"}]}: ${parsed.error.issues[0]?.message}` });
    body = parsed.data;
  } catch (err) {
    const tooLarge = err instanceof BodyTooLargeError;
    return send(res, tooLarge ? 413 : 400, { error: tooLarge ? err.message : `invalid JSON: ${(err as Error).message}` });
  }
  try {
    const payloads = body.payloads.map(fromProtoJson);
    const result = operation === 'encode' ? await codec.encode(payloads) : await codec.decode(payloads);
    send(res, 200, { payloads: result.map(toProtoJson) });
  } catch (err) {
    log(`${operation} failed (namespace ${String(req.headers['x-namespace'] ?? '?')}): ${(err as Error).message}`);
    send(res, 400, { error: (err as Error).message });
  }
}

/** proto3 JSON of a Payload: every bytes field (data, each metadata value) is base64 (base64url accepted). */
function fromProtoJson(p: { metadata?: Record<string, string> | null; data?: string | null }): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))])),
    data: new Uint8Array(Buffer.from(p.data ?? '', 'base64')),
  };
}

function toProtoJson(p: Payload): { metadata: Record<string, string>; data: string } {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')])),
    data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
  };
}

function authorized(req: IncomingMessage, tokenDigest: Buffer): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
  return match?.[1] !== undefined && timingSafeEqual(sha256(match[1].trim()), tokenDigest);
}

const sha256 = (text: string) => createHash('sha256').update(text).digest();

class BodyTooLargeError extends Error {}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // Past the limit the rest is drained unread, so the 413 answer still reaches the caller.
      if (size > MAX_BODY_BYTES) reject(new BodyTooLargeError(`request body over ${MAX_BODY_BYTES} bytes`));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}
