/**
 * Container output → the job's log files (`logs/client_stdout.log`, `logs/server_stdout.log`), stdout and
 * stderr interleaved as they were written. Each sync copies what is new since the last one, from any
 * worker: a cursor file next to the log keeps, per container, the Docker timestamp of the last entry
 * copied (and how many entries carried it, since `since` is inclusive), plus the log's size after the
 * last complete copy. A worker killed between appending and saving the cursor leaves a tail that the next
 * sync cuts off before copying it again, so no line is lost or doubled.
 */
import { appendFileSync, existsSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type Docker from 'dockerode';
import { z } from 'zod';
import { writeJsonAtomic } from '../../../common/files.js';

const CursorSchema = z
  .object({
    /** Log size after the last complete append. */
    size: z.number().int().nonnegative(),
    /** Who made that append: a container name, or `evalflow` for the launcher's own lines. */
    writer: z.string(),
    containers: z.record(z.string(), z.object({ since: z.string(), seen: z.number().int().positive() }).strict()),
  })
  .strict();
type Cursor = z.infer<typeof CursorSchema>;

export const LAUNCHER_WRITER = 'evalflow';

function cursorPath(logFile: string): string {
  return join(dirname(logFile), `.${basename(logFile)}.cursor.json`);
}

function readCursor(logFile: string): Cursor {
  const file = cursorPath(logFile);
  if (!existsSync(file)) return { size: 0, writer: '', containers: {} };
  const parsed = CursorSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) throw new Error(`${file} is not a log cursor: ${parsed.error.message}`);
  return parsed.data;
}

function sizeOf(file: string): number {
  return existsSync(file) ? statSync(file).size : 0;
}

/** Appends and records the new size (so later syncs keep these bytes). */
function append(logFile: string, text: string, writer: string, cursor: Cursor): void {
  if (text) appendFileSync(logFile, text);
  writeJsonAtomic(cursorPath(logFile), { ...cursor, size: sizeOf(logFile), writer });
}

/** A line of evalflow's own (e.g. "launching container …") in a log that containers also write to. */
export function appendLauncherLine(logFile: string, line: string): void {
  append(logFile, `${line}\n`, LAUNCHER_WRITER, readCursor(logFile));
}

/** Copies the container's new output to `logFile`; returns the number of entries copied. */
export async function syncContainerLogs(container: Docker.Container, name: string, logFile: string): Promise<number> {
  const cursor = readCursor(logFile);
  const size = sizeOf(logFile);
  if (cursor.writer === name && size > cursor.size) truncateSync(logFile, cursor.size);
  const from = cursor.containers[name];
  const raw = (await container.logs({ stdout: true, stderr: true, timestamps: true, follow: false, ...(from ? { since: sinceParam(from.since) } : {}) })) as unknown as Buffer;
  const entries = demux(raw).map(splitTimestamp);
  const fromNs = from ? timestampNs(from.since) : -1n;
  let skipAtFrom = from?.seen ?? 0;
  const copied: string[] = [];
  for (const entry of entries) {
    if (entry.ns < fromNs) continue;
    if (entry.ns === fromNs && skipAtFrom > 0) {
      skipAtFrom--;
      continue;
    }
    copied.push(entry.text);
  }
  if (copied.length === 0) return 0;
  const last = entries[entries.length - 1] as TimedEntry;
  const seen = entries.filter((e) => e.ns === last.ns).length;
  append(logFile, copied.join(''), name, { ...cursor, containers: { ...cursor.containers, [name]: { since: last.timestamp, seen } } });
  return copied.length;
}

/** The last `lines` lines of the container's output (stdout and stderr), for failure messages. */
export async function containerLogTail(container: Docker.Container, lines = 20): Promise<string> {
  const raw = (await container.logs({ stdout: true, stderr: true, follow: false, tail: lines })) as unknown as Buffer;
  return demux(raw).join('');
}

/** Non-TTY container output is framed: [stream, 0, 0, 0, length (uint32 BE)] + payload. */
export function demux(buffer: Buffer): string[] {
  const frames: string[] = [];
  for (let i = 0; i + 8 <= buffer.length; ) {
    const length = buffer.readUInt32BE(i + 4);
    frames.push(buffer.subarray(i + 8, i + 8 + length).toString('utf8'));
    i += 8 + length;
  }
  return frames;
}

interface TimedEntry {
  timestamp: string;
  ns: bigint;
  text: string;
}

function splitTimestamp(frame: string): TimedEntry {
  const space = frame.indexOf(' ');
  const timestamp = space < 0 ? frame : frame.slice(0, space);
  return { timestamp, ns: timestampNs(timestamp), text: space < 0 ? '' : frame.slice(space + 1) };
}

/** RFC 3339 with up to nanoseconds (Docker trims trailing zeros) → nanoseconds since the epoch. */
export function timestampNs(timestamp: string): bigint {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(timestamp);
  if (!m) throw new Error(`unexpected Docker log timestamp ${JSON.stringify(timestamp)}`);
  const seconds = BigInt(Date.parse(`${m[1]}${m[3]}`) / 1000);
  return seconds * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/** Docker's `since`: `<seconds>.<nanoseconds>`. */
function sinceParam(timestamp: string): string {
  const ns = timestampNs(timestamp);
  return `${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`;
}
