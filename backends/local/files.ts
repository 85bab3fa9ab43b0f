/** File reads shared by the local executors. */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { LogChunk } from '../types.js';

const MAX_CHUNK = 1 << 20;

/** Up to 1 MiB of `file` from byte `offset`, ending at a line boundary when the chunk holds one. */
export function readLogFrom(file: string, offset: number): LogChunk {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return { data: '', offset };
  }
  if (size <= offset) return { data: '', offset: Math.min(offset, size) };
  const buf = Buffer.alloc(Math.min(MAX_CHUNK, size - offset));
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buf, 0, buf.length, offset);
  } finally {
    closeSync(fd);
  }
  const lastNewline = buf.lastIndexOf(0x0a);
  const end = lastNewline >= 0 ? lastNewline + 1 : buf.length === MAX_CHUNK ? buf.length : 0;
  return { data: buf.subarray(0, end).toString('utf8'), offset: offset + end };
}
