/**
 * On-disk response cache keyed by the canonical request, so a relaunched harness only sends what is
 * missing. Append-only JSONL: each response is written with one write(2) the moment it arrives, which
 * survives a SIGKILL of the process (the page cache keeps it) at ~µs cost; a torn last line from a
 * crash mid-write is ignored on load.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { canonicalJson } from '../common/canonical-json.js';

export interface CachedResponse {
  text: string;
  finishReason: string | null;
  promptTokens: number;
  completionTokens: number;
}

/** Cache key of one request: the route kind plus the canonical body (no headers, so never a secret). */
export function requestKey(route: string, body: unknown): string {
  return createHash('sha256').update(route).update('\n').update(canonicalJson(body)).digest('hex');
}

export class ResponseCache {
  private readonly entries = new Map<string, CachedResponse>();
  private fd: number | null = null;

  private constructor(readonly file: string) {}

  static open(file: string): ResponseCache {
    const cache = new ResponseCache(file);
    mkdirSync(dirname(file), { recursive: true });
    const content = existsSync(file) ? readFileSync(file, 'utf8') : '';
    cache.load(content);
    cache.fd = openSync(file, 'a');
    // Terminate a torn last line so the next entry starts on a line of its own.
    if (content.length > 0 && !content.endsWith('\n')) writeSync(cache.fd, '\n');
    return cache;
  }

  private load(content: string): void {
    let start = 0;
    while (start < content.length) {
      let end = content.indexOf('\n', start);
      if (end === -1) end = content.length;
      const line = content.slice(start, end);
      start = end + 1;
      if (!line) continue;
      try {
        const { k, r } = JSON.parse(line) as { k: string; r: CachedResponse };
        if (typeof k === 'string' && r && typeof r.text === 'string') this.entries.set(k, r);
      } catch {
        // A torn final line from a killed writer: that response is simply requested again.
      }
    }
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): CachedResponse | undefined {
    return this.entries.get(key);
  }

  put(key: string, response: CachedResponse): void {
    this.entries.set(key, response);
    if (this.fd === null) throw new Error('response cache is closed');
    writeSync(this.fd, `${JSON.stringify({ k: key, r: response })}\n`);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
