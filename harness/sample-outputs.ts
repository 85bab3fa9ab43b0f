/**
 * Per-sample outputs (`nemo-evaluator-per-sample-outputs/<task>.jsonl`), streamed to disk as samples finish, in
 * sample order. A record that finishes ahead of an earlier one waits in memory; `window` caps how far ahead the
 * engine may start samples (`waitForRoom`), so memory is bounded by the window (a few times the parallelism), not by
 * the number of samples, even when one sample is stuck in retries. The file is written as `<file>.partial` and
 * renamed when complete, so a reader never mistakes a cut-off run's records for the full set.
 */
import { mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { BatchedAppender, describeIoError } from './lines.js';

export class OrderedJsonlWriter {
  /** Index of the next record to write. */
  private next = 0;
  /** Records (or `null` for a sample without one) that finished ahead of `next`. */
  private readonly ahead = new Map<number, Buffer | null>();
  private roomWaiters: Array<{ index: number; resolve: () => void }> = [];
  private readonly appender: BatchedAppender;
  readonly partialFile: string;

  constructor(
    readonly file: string,
    private readonly window: number,
    onError: (err: Error) => void,
  ) {
    this.partialFile = `${file}.partial`;
    let fd: number;
    try {
      mkdirSync(dirname(file), { recursive: true });
      fd = openSync(this.partialFile, 'w');
    } catch (err) {
      throw describeIoError(err, `creating ${this.partialFile}`);
    }
    this.appender = new BatchedAppender(fd, this.partialFile, onError);
  }

  /** Whether sample `index` may start now without the records waiting in memory exceeding the window. */
  hasRoom(index: number): boolean {
    return index - this.next < this.window;
  }

  /** Resolves once sample `index` has room; rejects with the signal's reason when the run is aborted meanwhile. */
  waitForRoom(index: number, signal: AbortSignal): Promise<void> {
    if (this.hasRoom(index)) return Promise.resolve();
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      this.roomWaiters.push({
        index,
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      });
    });
  }

  /** The record of sample `index` (`null`: the sample has none, e.g. it was never sent). */
  put(index: number, record: object | null): void {
    this.ahead.set(index, record === null ? null : Buffer.from(`${JSON.stringify(record)}\n`));
    if (index !== this.next) return;
    for (let data = this.ahead.get(this.next); data !== undefined; data = this.ahead.get(this.next)) {
      this.ahead.delete(this.next);
      if (data !== null) this.appender.append(data);
      this.next++;
    }
    if (this.roomWaiters.length > 0) {
      const still: typeof this.roomWaiters = [];
      for (const w of this.roomWaiters) {
        if (this.hasRoom(w.index)) w.resolve();
        else still.push(w);
      }
      this.roomWaiters = still;
    }
  }

  /** Writes what is left in sample order (samples that never ran have no record) and publishes the file. */
  finish(): void {
    for (const index of [...this.ahead.keys()].sort((a, b) => a - b)) {
      const data = this.ahead.get(index);
      if (data) this.appender.append(data);
    }
    this.ahead.clear();
    this.appender.close();
    try {
      renameSync(this.partialFile, this.file);
    } catch (err) {
      throw describeIoError(err, `renaming ${this.partialFile}`);
    }
  }

  /** A run that ends without results: close and remove the partial file (best effort: the disk may be the problem). */
  abandon(): void {
    this.ahead.clear();
    try {
      this.appender.close();
      rmSync(this.partialFile, { force: true });
    } catch {
      // the run is already failing; its own error is the one reported
    }
  }
}
