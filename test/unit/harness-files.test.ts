/** The harness's streamed files: line reading with byte offsets, complete writes, batched appends that report errors, ordered per-sample outputs. */
import type * as NodeFs from 'node:fs';
import { existsSync, mkdtempSync, openSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ResponseCache } from '../../harness/cache.js';
import { BatchedAppender, forEachLine, type LineInfo } from '../../harness/lines.js';
import { OrderedJsonlWriter } from '../../harness/sample-outputs.js';

const dir = mkdtempSync(join(tmpdir(), 'evalflow-files-'));
let n = 0;
const fresh = (name = 'f') => join(dir, `${name}-${n++}`);
const nextTurn = () => new Promise((r) => setImmediate(r));

afterEach(() => {
  vi.restoreAllMocks();
  vi.doUnmock('node:fs');
});

describe('forEachLine', () => {
  it('gives each line with its 1-based number, byte offset and byte length', () => {
    const file = fresh();
    writeFileSync(file, 'ab\n\nçé\nlast');
    const lines: Array<[string, LineInfo]> = [];
    forEachLine(file, (text, info) => lines.push([text, info]));
    expect(lines).toEqual([
      ['ab', { line: 1, offset: 0, length: 2 }],
      ['', { line: 2, offset: 3, length: 0 }],
      ['çé', { line: 3, offset: 4, length: 4 }],
      ['last', { line: 4, offset: 9, length: 4 }],
    ]);
  });

  it('reads a character device as empty (only the size the file had at open is read)', () => {
    const link = fresh('full');
    symlinkSync('/dev/full', link);
    const seen: string[] = [];
    forEachLine(link, (t) => seen.push(t));
    expect(seen).toEqual([]);
  });
});

describe('writeFully', () => {
  it('completes short writes, and reports a write that makes no progress', async () => {
    const fs = await vi.importActual<typeof NodeFs>('node:fs');
    let calls = 0;
    let stall = false;
    vi.doMock('node:fs', () => ({
      ...fs,
      // At most 3 bytes per call, as a kernel may do under pressure; 0 bytes once `stall` is set.
      writeSync: (fd: number, buf: Buffer, off: number, len: number) => {
        calls++;
        return stall ? 0 : fs.writeSync(fd, buf, off, Math.min(3, len));
      },
    }));
    vi.resetModules();
    const { writeFully } = await import('../../harness/lines.js');
    const file = fresh();
    const fd = openSync(file, 'w');
    writeFully(fd, Buffer.from('0123456789'));
    expect(readFileSync(file, 'utf8')).toBe('0123456789');
    expect(calls).toBe(4);
    stall = true;
    expect(() => writeFully(fd, Buffer.from('xy'))).toThrow('short write: 0 of 2 bytes written');
  });
});

describe('BatchedAppender', () => {
  it('writes what one turn appended in one write and returns each append\'s offset', async () => {
    const file = fresh();
    writeFileSync(file, 'abc');
    const appender = new BatchedAppender(openSync(file, 'a'), file, () => undefined);
    expect(appender.append(Buffer.from('12'))).toBe(3);
    expect(appender.append(Buffer.from('345'))).toBe(5);
    expect(readFileSync(file, 'utf8')).toBe('abc');
    await nextTurn();
    expect(readFileSync(file, 'utf8')).toBe('abc12345');
    appender.close();
  });

  it('reports a failed background write (ENOSPC from /dev/full) to onError instead of throwing from the timer', async () => {
    const link = fresh('full');
    symlinkSync('/dev/full', link);
    const errors: Error[] = [];
    const appender = new BatchedAppender(openSync(link, 'a'), link, (err) => errors.push(err));
    appender.append(Buffer.from('x\n'));
    await nextTurn();
    expect(errors.map((e) => e.message)).toEqual([`writing ${link}: ENOSPC: no space left on device`]);
    expect(() => appender.append(Buffer.from('y'))).toThrow('ENOSPC');
    expect(() => appender.close()).toThrow('ENOSPC');
  });
});

describe('ResponseCache on a bad disk', () => {
  it('a cache whose flush fails reports it through onError', async () => {
    const link = fresh('full');
    symlinkSync('/dev/full', link);
    const errors: Error[] = [];
    const cache = ResponseCache.open(link, (err) => errors.push(err));
    cache.put('k', { text: 'x', finishReason: null, promptTokens: 0, completionTokens: 0 });
    await nextTurn();
    expect(errors[0]?.message).toBe(`writing ${link}: ENOSPC: no space left on device`);
  });

  it('reads cached responses back from the file, not from memory', async () => {
    const file = fresh();
    const cache = ResponseCache.open(file);
    cache.put('a', { text: 'alpha', finishReason: 'stop', promptTokens: 1, completionTokens: 2 });
    await nextTurn();
    // Rewrite the line in place (same length): the cache must see the file's content.
    writeFileSync(file, readFileSync(file, 'utf8').replace('alpha', 'omega'));
    expect(cache.get('a')?.text).toBe('omega');
    cache.close();
  });
});

describe('OrderedJsonlWriter', () => {
  it('writes records in sample order as they become contiguous, skipping samples without a record', async () => {
    const file = fresh('samples.jsonl');
    const writer = new OrderedJsonlWriter(file, 4, () => undefined);
    writer.put(1, { i: 1 });
    writer.put(2, null);
    await nextTurn();
    expect(readFileSync(writer.partialFile, 'utf8')).toBe('');
    writer.put(0, { i: 0 });
    writer.put(3, { i: 3 });
    await nextTurn();
    expect(readFileSync(writer.partialFile, 'utf8')).toBe('{"i":0}\n{"i":1}\n{"i":3}\n');
    writer.put(6, { i: 6 }); // 4 and 5 never ran
    writer.finish();
    expect(readFileSync(file, 'utf8')).toBe('{"i":0}\n{"i":1}\n{"i":3}\n{"i":6}\n');
    expect(existsSync(writer.partialFile)).toBe(false);
  });

  it('holds samples that would run more than `window` ahead of the oldest unfinished one', async () => {
    const writer = new OrderedJsonlWriter(fresh('samples.jsonl'), 2, () => undefined);
    const signal = new AbortController().signal;
    expect(writer.hasRoom(1)).toBe(true);
    expect(writer.hasRoom(2)).toBe(false);
    let started = false;
    const waiting = writer.waitForRoom(2, signal).then(() => (started = true));
    writer.put(1, { i: 1 });
    await nextTurn();
    expect(started).toBe(false); // 0 is still running
    writer.put(0, { i: 0 });
    await waiting;
    expect(started).toBe(true);
    const aborted = new AbortController();
    const blocked = writer.waitForRoom(10, aborted.signal);
    aborted.abort(new Error('stop'));
    await expect(blocked).rejects.toThrow('stop');
    writer.abandon();
    expect(existsSync(writer.partialFile)).toBe(false);
  });
});
