/**
 * Optional payload encryption for everything evalflow puts into Temporal: workflow and activity inputs
 * and results, memos, signals, heartbeats and (with the failure converter below) failure messages. The
 * CLI, the client script, the demo and the worker all build their data converter here, from the key file
 * named by EVALFLOW_CODEC_KEY_FILE; without that variable nothing is encrypted, as before.
 *
 * AES-256-GCM with a fresh 96-bit nonce per payload. The whole Payload (its metadata included) is
 * encrypted; the envelope keeps only `encoding: binary/encrypted` and the key id in clear, so keys can be
 * rotated: new payloads use the file's first key, old ones decode with any key the file still holds.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { Client } from '@temporalio/client';
import type { DataConverter, LoadedDataConverter, Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import { ConfigError } from '../config/errors.js';
import { distPath } from './paths.js';

export const CODEC_KEY_FILE_ENV = 'EVALFLOW_CODEC_KEY_FILE';
export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

const PayloadProto = proto.temporal.api.common.v1.Payload;
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A bad key file: bad input, so the CLI exits 2 before starting anything. Never quotes key material. */
export class CodecKeyError extends ConfigError {
  override name = 'CodecKeyError';
}

/** A payload this process cannot decrypt (unknown key id, wrong key, altered data). */
export class PayloadDecryptionError extends Error {
  override name = 'PayloadDecryptionError';
}

export interface Keyring {
  /** The key file, named in every error so an operator knows which file to fix. */
  file: string;
  /** The key id new payloads are encrypted with: the file's first key. */
  current: string;
  keys: ReadonlyMap<string, Buffer>;
}

/**
 * Reads a key file: one key per line, `<key-id> <base64 of 32 random bytes>`; blank lines and `#` comments
 * are ignored. The first key encrypts; every key decrypts. The file must be accessible by its owner only.
 */
export function readKeyring(file: string): Keyring {
  const text = readSecretFile(file, `${CODEC_KEY_FILE_ENV}: the key file`);
  const keys = new Map<string, Buffer>();
  let current: string | undefined;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${file}:${index + 1}`;
    const [id, encoded, ...rest] = line.split(/\s+/);
    if (!id || !encoded || rest.length > 0) throw new CodecKeyError(`${where}: expected '<key-id> <base64 key>'`);
    if (!KEY_ID_RE.test(id)) throw new CodecKeyError(`${where}: key id must be 1-64 characters of A-Z a-z 0-9 . _ - (starting with a letter or digit)`);
    if (keys.has(id)) throw new CodecKeyError(`${where}: key id '${id}' appears twice`);
    const key = Buffer.from(encoded, 'base64');
    if (key.length !== KEY_BYTES || !/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
      throw new CodecKeyError(`${where}: key '${id}' must be ${KEY_BYTES} bytes in base64 (e.g. \`openssl rand -base64 32\`)`);
    }
    keys.set(id, key);
    current ??= id;
  });
  if (current === undefined) throw new CodecKeyError(`${CODEC_KEY_FILE_ENV}: the key file ${file} holds no key ('<key-id> <base64 key>' lines)`);
  return { file, current, keys };
}

/** Reads a file holding secrets, refusing one that group or others may access (as ssh does). */
export function readSecretFile(file: string, what: string): string {
  let mode: number;
  let text: string;
  try {
    mode = statSync(file).mode;
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CodecKeyError(`${what} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if ((mode & 0o077) !== 0) {
    throw new CodecKeyError(`${what} ${file} is accessible by group or others (mode ${(mode & 0o777).toString(8)}); run \`chmod 600 ${file}\``);
  }
  return text;
}

/** The PayloadCodec: AES-256-GCM, the key id in clear metadata and bound to the ciphertext as associated data. */
export class AesGcmCodec implements PayloadCodec {
  constructor(readonly keyring: Keyring) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const id = this.keyring.current;
    const key = this.keyring.keys.get(id) as Buffer;
    return payloads.map((payload) => {
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, nonce).setAAD(Buffer.from(id));
      const plain = PayloadProto.encode(payload).finish();
      const sealed = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return { metadata: { encoding: Buffer.from(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: Buffer.from(id) }, data: sealed };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const metadata = payload.metadata ?? {};
      // Payloads written without the codec (e.g. runs started before it was turned on) pass through.
      if (metadataText(metadata.encoding) !== ENCRYPTED_ENCODING) return payload;
      const id = metadataText(metadata[KEY_ID_METADATA]);
      if (!id) throw new PayloadDecryptionError(`an encrypted payload has no '${KEY_ID_METADATA}' metadata, so no key can be chosen to decrypt it`);
      const key = this.keyring.keys.get(id);
      if (!key) {
        throw new PayloadDecryptionError(
          `a payload is encrypted with key '${id}', which the key file ${this.keyring.file} (${CODEC_KEY_FILE_ENV}) does not hold; it holds ${[...this.keyring.keys.keys()].join(', ')}`,
        );
      }
      const sealed = Buffer.from(payload.data ?? new Uint8Array());
      if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new PayloadDecryptionError(`a payload encrypted with key '${id}' is truncated (${sealed.length} bytes)`);
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE_BYTES)).setAAD(Buffer.from(id));
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      let plain: Buffer;
      try {
        plain = Buffer.concat([decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
      } catch {
        throw new PayloadDecryptionError(
          `cannot decrypt a payload with key '${id}' from ${this.keyring.file} (${CODEC_KEY_FILE_ENV}): this key is not the one it was encrypted with, or the payload was altered`,
        );
      }
      return PayloadProto.decode(plain);
    });
  }
}

function metadataText(value: Uint8Array | null | undefined): string | undefined {
  return value ? Buffer.from(value).toString('utf8') : undefined;
}

/** The codec named by EVALFLOW_CODEC_KEY_FILE, or undefined when the variable is unset or empty. */
export function codecFromEnv(env: Record<string, string | undefined> = process.env): AesGcmCodec | undefined {
  const file = env[CODEC_KEY_FILE_ENV];
  return file ? new AesGcmCodec(readKeyring(file)) : undefined;
}

/**
 * Failure messages and stack traces are not payloads: without this converter they stay in clear even with
 * the codec on. It moves them into an encoded payload (Temporal's `encodeCommonAttributes`). A CommonJS
 * module because the SDK `require`s it, and it is also bundled into the workflow code of encrypting workers.
 */
export const ENCRYPTED_FAILURE_CONVERTER_PATH = distPath('common', 'encrypted-failure-converter.cjs');

/** The one data converter of evalflow's clients and workers: default, or encrypting when a key file is set. */
export function dataConverterFromEnv(env: Record<string, string | undefined> = process.env): DataConverter | undefined {
  const codec = codecFromEnv(env);
  return codec ? { payloadCodecs: [codec], failureConverterPath: ENCRYPTED_FAILURE_CONVERTER_PATH } : undefined;
}

/** Whether payloads written through this data converter are encrypted by evalflow's codec. */
export function encrypts(dataConverter: Pick<DataConverter, 'payloadCodecs'> | undefined): boolean {
  return (dataConverter?.payloadCodecs ?? []).some((codec) => codec instanceof AesGcmCodec);
}

/** What a listing shows for a memo field this process cannot decrypt (no key file, or not the right key). */
export const ENCRYPTED_PLACEHOLDER = '(encrypted)';

/**
 * The codec of listings (`ls runs`, id prefixes): one run this process cannot decrypt (started with another
 * key, or with the codec while this process has none) must not fail the whole list, so its memo fields
 * read as '(encrypted)'. Everything it can decrypt is decoded as usual.
 */
class ListingCodec implements PayloadCodec {
  constructor(private readonly inner: AesGcmCodec | undefined) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return this.inner ? this.inner.encode(payloads) : payloads;
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.all(
      payloads.map(async (payload) => {
        if (metadataText(payload.metadata?.encoding) !== ENCRYPTED_ENCODING) return payload;
        try {
          const [decoded] = this.inner ? await this.inner.decode([payload]) : [];
          if (decoded) return decoded;
        } catch (err) {
          if (!(err instanceof PayloadDecryptionError)) throw err;
        }
        return { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify(ENCRYPTED_PLACEHOLDER)) };
      }),
    );
  }
}

/** A client on the same connection for listing runs, see ListingCodec. */
export function listingClient(client: Client): Client {
  const codec = client.options.loadedDataConverter.payloadCodecs.find((c): c is AesGcmCodec => c instanceof AesGcmCodec);
  return new Client({ connection: client.connection, namespace: client.options.namespace, dataConverter: { payloadCodecs: [new ListingCodec(codec)] } });
}

/** A raw payload (e.g. heartbeat details from `describe().raw`, which the SDK leaves encoded) as a value. */
export async function decodePayload<T>(dataConverter: LoadedDataConverter, payload: Payload): Promise<T> {
  let decoded = payload;
  for (const codec of [...dataConverter.payloadCodecs].reverse()) [decoded = decoded] = await codec.decode([decoded]);
  return dataConverter.payloadConverter.fromPayload<T>(decoded);
}
