/**
 * Line-oriented file I/O for the harness's JSON Lines files (datasets, the response cache, per-sample outputs):
 * reading in fixed-size chunks so that no string ever holds a whole file (V8 caps strings at ~512 MiB, and memory
 * must not grow with the file), and appending with every byte accounted for.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';

const CHUNK_BYTES = 1 << 20;
/** Queued appends are written at the end of the turn, or as soon as they reach this size. */
const MAX_QUEUED_BYTES = 1 << 20;
const NEWLINE = 0x0a;

export interface LineInfo {
  /** 1-based line number. */
  line: number;
  /** Byte offset of the line's first byte in the file. */
  offset: number;
  /** Length of the line in bytes, without its newline. */
  length: number;
}

/**
 * Calls `onLine` for every line of a file, in order, with the line's text (UTF-8, newline removed) and position.
 * Reads only the bytes the file held when it was opened (so a character device such as /dev/full reads as empty,
 * and appends made meanwhile are not chased). A last line without a newline is delivered too; the caller decides
 * whether a torn line is usable. Throws the fs error (ENOENT, EACCES, EISDIR …) unchanged.
 */
export function forEachLine(path: string, onLine: (text: string, info: LineInfo) => void): void {
  const fd = openSync(path, 'r');
  try {
    forEachLineOfFd(fd, onLine);
  } finally {
    closeSync(fd);
  }
}

export function forEachLineOfFd(fd: number, onLine: (text: string, info: LineInfo) => void): void {
  const size = fstatSync(fd).size;
  const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(size, 1)));
  /** Bytes of a line that started in an earlier chunk. */
  let carry: Buffer[] = [];
  let carryBytes = 0;
  let position = 0;
  let lineStart = 0;
  let line = 0;
  const emit = (tail: Buffer) => {
    const bytes = carryBytes === 0 ? tail : Buffer.concat([...carry, tail], carryBytes + tail.length);
    carry = [];
    carryBytes = 0;
    line += 1;
    onLine(bytes.toString('utf8'), { line, offset: lineStart, length: bytes.length });
    lineStart += bytes.length + 1;
  };
  while (position < size) {
    const read = readSync(fd, chunk, 0, Math.min(chunk.length, size - position), position);
    if (read === 0) break; // truncated meanwhile
    position += read;
    let from = 0;
    for (let nl = chunk.indexOf(NEWLINE, 0); nl !== -1 && nl < read; nl = chunk.indexOf(NEWLINE, from)) {
      emit(chunk.subarray(from, nl));
      from = nl + 1;
    }
    if (from < read) {
      // Copied: the chunk buffer is reused by the next read.
      carry.push(Buffer.from(chunk.subarray(from, read)));
      carryBytes += read - from;
    }
  }
  if (carryBytes > 0) emit(Buffer.alloc(0));
}

/** Writes all of `data` at the file's current position (append mode: its end), completing short writes. */
export function writeFully(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) {
    const n = writeSync(fd, data, off, data.length - off);
    // write(2) returning 0 for a non-empty buffer makes no progress: report it rather than spin.
    if (n <= 0) throw new IoError(`short write: ${off} of ${data.length} bytes written`, 'EIO', undefined);
    off += n;
  }
}

/**
 * An append-only file written in batches: what is appended during one turn of the event loop goes out in one
 * write at the end of that turn (a SIGKILL loses at most that turn; the page cache keeps the rest), at a fraction
 * of the cost of a write per append. A failed scheduled write (ENOSPC, EIO …) cannot be thrown from the timer, so
 * it goes to `onError`, and the file refuses further appends; `flush()` and `close()` called directly throw.
 */
export class BatchedAppender {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private scheduled = false;
  private failure: Error | undefined;
  /** Bytes in the file once everything appended so far is written: the offset of the next append. */
  private end: number;

  constructor(
    private fd: number | null,
    readonly file: string,
    private readonly onError: (err: Error) => void,
    /** Called after each write that emptied the queue. */
    private readonly onWritten?: () => void,
  ) {
    this.end = fd === null ? 0 : fstatSync(fd).size;
  }

  /** Queues `data`; returns the byte offset it will have in the file. */
  append(data: Buffer): number {
    if (this.fd === null) throw new Error(`${this.file} is closed`);
    if (this.failure) throw this.failure;
    const offset = this.end;
    this.pending.push(data);
    this.pendingBytes += data.length;
    this.end += data.length;
    // A turn can be long (a resumed run answers every sample from the cache without yielding): bound the queue.
    if (this.pendingBytes >= MAX_QUEUED_BYTES) {
      try {
        this.flush();
      } catch (err) {
        this.onError(err as Error);
        throw err;
      }
      return offset;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        try {
          this.flush();
        } catch (err) {
          this.onError(err as Error);
        }
      });
    }
    return offset;
  }

  /** Writes what is queued; throws the write error (also kept, so later appends fail fast). */
  flush(): void {
    this.scheduled = false;
    if (this.failure) throw this.failure;
    if (this.fd === null || this.pendingBytes === 0) return;
    const data = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    try {
      writeFully(this.fd, data);
    } catch (err) {
      this.failure = describeIoError(err, `writing ${this.file}`);
      throw this.failure;
    }
    this.onWritten?.();
  }

  /** Flushes and closes; the descriptor is closed even when the flush fails (whose error is thrown). */
  close(): void {
    if (this.fd === null) return;
    try {
      this.flush();
    } finally {
      closeSync(this.fd);
      this.fd = null;
    }
  }
}

/** A failed file operation, described: what was being done, the file and the system error. */
export class IoError extends Error {
  override name = 'IoError';
  constructor(
    message: string,
    readonly code: string | undefined,
    cause: unknown,
  ) {
    super(message, { cause });
  }
}

/**
 * An fs error with what was being done and the file: `writing /x/cache.jsonl: ENOSPC: no space left on device`.
 * An error that is already an IoError is returned as is.
 */
export function describeIoError(err: unknown, doing: string): IoError {
  if (err instanceof IoError) return err;
  const e = err as NodeJS.ErrnoException;
  const code = e.code ? `${e.code}: ` : '';
  // Node's own text repeats the code and ends with the syscall and path: "ENOSPC: no space left on device, write".
  const reason = (e.message ?? String(err)).replace(/^[A-Z]+: /, '').replace(/, [a-z]+( '[^']*')?( -> '[^']*')?$/, '');
  return new IoError(`${doing}: ${code}${reason}`, e.code, err);
}

/** An error from a file operation (Node's fs errors carry the failed syscall). */
export function isIoError(err: unknown): boolean {
  return err instanceof IoError || (err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string');
}
