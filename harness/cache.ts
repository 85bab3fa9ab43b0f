/**
 * On-disk response cache keyed by the canonical request, so a relaunched harness only sends what is missing.
 * Append-only JSONL (`{"k": key, "r": response}` per line), written in batches per event-loop turn. Memory holds
 * only an index (key → where its line is), never the responses: a cached response is read back from the file when
 * it is asked for, so a 100,000-sample run with long reasoning outputs costs a few MB of index, not the outputs'
 * size (and no single string ever holds the file). A torn last line from a crash mid-write is ignored on load.
 */
import { hash } from 'node:crypto';
import { fstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { dirname } from 'node:path';
import { canonicalJson } from '../common/canonical-json.js';
import { BatchedAppender, forEachLineOfFd } from './lines.js';

export interface CachedResponse {
  text: string;
  finishReason: string | null;
  promptTokens: number;
  completionTokens: number;
  /** The message's separate reasoning (`reasoning_content`), when the server returns one. */
  reasoningContent?: string;
}

/** One request in canonical form: the JSON to send and its cache key (route + body; never headers, so never a secret). */
export function canonicalRequest(route: string, body: unknown): { json: string; key: string } {
  const json = canonicalJson(body);
  return { json, key: hash('sha256', `${route}\n${json}`, 'hex') };
}

export function requestKey(route: string, body: unknown): string {
  return canonicalRequest(route, body).key;
}

/**
 * The cache key of generation `generation` of a request: several generations of one prompt (`n_samples`) send the
 * same body, so each gets its own entry (a resumed run requests only the generations it lacks). Generation 0 keeps
 * the request's own key, so the single-generation cache is unchanged.
 */
export function generationKey(key: string, generation: number): string {
  return generation === 0 ? key : hash('sha256', `${key}\n#${generation}`, 'hex');
}

function parseEntry(line: string): { k: string; r: CachedResponse } | undefined {
  try {
    const entry = JSON.parse(line) as { k?: unknown; r?: Partial<CachedResponse> } | null;
    if (typeof entry?.k === 'string' && entry.r && typeof entry.r.text === 'string') return entry as { k: string; r: CachedResponse };
  } catch {
    // A torn final line from a killed writer: that response is simply requested again.
  }
  return undefined;
}

export class ResponseCache {
  /** key → slot in `offsets`/`lengths` (numbers in arrays: no object per entry). */
  private readonly index = new Map<string, number>();
  private readonly offsets: number[] = [];
  private readonly lengths: number[] = [];
  /** Entries of this turn, not yet written: served from memory until the batch is written (a turn's worth at most). */
  private unwritten = new Map<string, CachedResponse>();

  private readonly appender: BatchedAppender;

  private constructor(
    readonly file: string,
    private readonly fd: number,
    onError: (err: Error) => void,
  ) {
    this.appender = new BatchedAppender(fd, file, onError, () => this.unwritten.clear());
  }

  /**
   * Opens (creating) the cache file and indexes its entries. `onError` receives a failed background write
   * (ENOSPC on a flush): the caller ends the run, since a response that cannot be cached would be lost.
   */
  static open(file: string, onError: (err: Error) => void = (err) => { throw err; }): ResponseCache {
    mkdirSync(dirname(file), { recursive: true });
    const fd = openSync(file, 'a+');
    const cache = new ResponseCache(file, fd, onError);
    forEachLineOfFd(fd, (line, { offset, length }) => {
      const entry = parseEntry(line);
      if (entry) cache.remember(entry.k, offset, length);
    });
    // Terminate a torn last line so the next entry starts on a line of its own.
    if (endsWithoutNewline(fd)) cache.appender.append(Buffer.from('\n'));
    return cache;
  }

  private remember(key: string, offset: number, length: number): void {
    const slot = this.index.get(key);
    if (slot === undefined) {
      this.index.set(key, this.offsets.length);
      this.offsets.push(offset);
      this.lengths.push(length);
    } else {
      this.offsets[slot] = offset;
      this.lengths[slot] = length;
    }
  }

  get size(): number {
    return this.index.size;
  }

  /** The cached response, read back from the file. */
  get(key: string): CachedResponse | undefined {
    const fresh = this.unwritten.get(key);
    if (fresh) return fresh;
    const slot = this.index.get(key);
    if (slot === undefined) return undefined;
    const length = this.lengths[slot] as number;
    const buf = Buffer.allocUnsafe(length);
    const read = readSync(this.fd, buf, 0, length, this.offsets[slot] as number);
    return read === length ? parseEntry(buf.toString('utf8'))?.r : undefined;
  }

  put(key: string, response: CachedResponse): void {
    const line = Buffer.from(`${JSON.stringify({ k: key, r: response })}\n`);
    const offset = this.appender.append(line);
    this.unwritten.set(key, response);
    this.remember(key, offset, line.length - 1);
  }

  flush(): void {
    this.appender.flush();
  }

  close(): void {
    this.appender.close();
  }
}

function endsWithoutNewline(fd: number): boolean {
  const size = fstatSync(fd).size;
  const last = Buffer.alloc(1);
  return size > 0 && readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a;
}
