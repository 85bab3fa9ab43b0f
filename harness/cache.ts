/**
 * On-disk response cache keyed by the canonical request, so a relaunched harness only sends what is
 * missing. Append-only JSONL. Responses that arrive in the same turn of the event loop are written
 * together with one write(2) at the end of that turn: a SIGKILL loses at most that turn's responses
 * (the page cache keeps what was written), at a fraction of the cost of a write per response. A torn
 * last line from a crash mid-write is ignored on load.
 */
import { hash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { canonicalJson } from '../common/canonical-json.js';

export interface CachedResponse {
  text: string;
  finishReason: string | null;
  promptTokens: number;
  completionTokens: number;
}

/** One request in canonical form: the JSON to send and its cache key (route + body; never headers, so never a secret). */
export function canonicalRequest(route: string, body: unknown): { json: string; key: string } {
  const json = canonicalJson(body);
  return { json, key: hash('sha256', `${route}\n${json}`, 'hex') };
}

export function requestKey(route: string, body: unknown): string {
  return canonicalRequest(route, body).key;
}

export class ResponseCache {
  private readonly entries = new Map<string, CachedResponse>();
  private fd: number | null = null;
  private pending: string[] = [];
  private flushScheduled = false;

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
    if (this.fd === null) throw new Error('response cache is closed');
    this.entries.set(key, response);
    this.pending.push(`${JSON.stringify({ k: key, r: response })}\n`);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.flushScheduled = false;
    if (this.fd === null || this.pending.length === 0) return;
    const chunk = this.pending.join('');
    this.pending = [];
    writeSync(this.fd, chunk);
  }

  close(): void {
    this.flush();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
