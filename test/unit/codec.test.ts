import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import {
  AesGcmCodec,
  CODEC_KEY_FILE_ENV,
  CodecKeyError,
  codecFromEnv,
  dataConverterFromEnv,
  encrypts,
  ENCRYPTED_FAILURE_CONVERTER_PATH,
  KEY_ID_METADATA,
  PayloadDecryptionError,
  readKeyring,
} from '../../common/codec.js';
import { tempDir } from '../support/run-helpers.js';

const KEY_A = Buffer.alloc(32, 1).toString('base64');
const KEY_B = Buffer.alloc(32, 2).toString('base64');

function keyFile(lines: string, mode = 0o600): string {
  const file = join(tempDir('evalflow-codec-'), 'keys');
  writeFileSync(file, lines);
  chmodSync(file, mode);
  return file;
}

const payload = (value: unknown): Payload => defaultPayloadConverter.toPayload(value);
const text = (p: Payload) => Buffer.concat([...Object.values(p.metadata ?? {}).map((v) => Buffer.from(v ?? [])), Buffer.from(p.data ?? [])]).toString('latin1');

describe('payload codec', () => {
  it('encrypts every payload (metadata included) and decodes it back', async () => {
    const codec = new AesGcmCodec(readKeyring(keyFile(`# rotation: newest first\nk2 ${KEY_B}\n\nk1 ${KEY_A}\n`)));
    const input = [payload({ model: 'secret-model-7b', env: { HF: { kind: 'lit', value: 'lit-value-xyz' } } }), payload(null)];
    const encoded = await codec.encode(input);
    for (const p of encoded) {
      expect(Buffer.from(p.metadata?.encoding ?? []).toString()).toBe('binary/encrypted');
      expect(Buffer.from(p.metadata?.[KEY_ID_METADATA] ?? []).toString()).toBe('k2'); // the first key is the current one
      expect(text(p)).not.toContain('secret-model-7b');
      expect(text(p)).not.toContain('json/plain');
    }
    // A fresh nonce per payload: the same plaintext never gives the same ciphertext.
    const [again] = await codec.encode([input[0] as Payload]);
    expect(Buffer.from(again?.data ?? []).equals(Buffer.from(encoded[0]?.data ?? []))).toBe(false);
    const decoded = await codec.decode(encoded);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([
      { model: 'secret-model-7b', env: { HF: { kind: 'lit', value: 'lit-value-xyz' } } },
      null,
    ]);
  });

  it('rotates keys: old payloads decode with any key still in the file, new ones use the first', async () => {
    const before = new AesGcmCodec(readKeyring(keyFile(`k1 ${KEY_A}\n`)));
    const old = await before.encode([payload('written under k1')]);
    const after = new AesGcmCodec(readKeyring(keyFile(`k2 ${KEY_B}\nk1 ${KEY_A}\n`)));
    expect(defaultPayloadConverter.fromPayload((await after.decode(old))[0] as Payload)).toBe('written under k1');
    const fresh = await after.encode([payload('written under k2')]);
    expect(Buffer.from(fresh[0]?.metadata?.[KEY_ID_METADATA] ?? []).toString()).toBe('k2');
    // Once k1 is dropped from the file, its payloads are refused with the id named.
    const dropped = new AesGcmCodec(readKeyring(keyFile(`k2 ${KEY_B}\n`)));
    await expect(dropped.decode(old)).rejects.toThrow(/encrypted with key 'k1', which the key file .* does not hold; it holds k2/);
  });

  it('fails clearly on a wrong key, a missing key id, altered data; passes unencrypted payloads through', async () => {
    const right = new AesGcmCodec(readKeyring(keyFile(`k1 ${KEY_A}\n`)));
    const wrong = new AesGcmCodec(readKeyring(keyFile(`k1 ${KEY_B}\n`)));
    const [sealed] = await right.encode([payload('x')]);
    if (!sealed) throw new Error('no payload');
    await expect(wrong.decode([sealed])).rejects.toThrow(PayloadDecryptionError);
    await expect(wrong.decode([sealed])).rejects.toThrow(/cannot decrypt a payload with key 'k1' from .*: this key is not the one it was encrypted with/);

    const noId = { ...sealed, metadata: { encoding: sealed.metadata?.encoding as Uint8Array } };
    await expect(right.decode([noId])).rejects.toThrow(/has no 'encryption-key-id' metadata/);

    const altered = Buffer.from(sealed.data ?? []);
    altered[20] = (altered[20] ?? 0) ^ 1;
    await expect(right.decode([{ ...sealed, data: altered }])).rejects.toThrow(/or the payload was altered/);
    // The key id is authenticated too: relabelling a payload does not get it decrypted by another key.
    const twoKeys = new AesGcmCodec(readKeyring(keyFile(`k2 ${KEY_A}\nk1 ${KEY_A}\n`)));
    await expect(twoKeys.decode([{ ...sealed, metadata: { ...sealed.metadata, [KEY_ID_METADATA]: Buffer.from('k2') } }])).rejects.toThrow(/key 'k2'/);

    const plain = payload({ started: 'before the codec' });
    expect(await right.decode([plain])).toEqual([plain]);
  });

  it('refuses key files that group or others may read, and malformed ones, naming the line but never the key', () => {
    expect(() => readKeyring(keyFile(`k1 ${KEY_A}\n`, 0o640))).toThrow(/accessible by group or others \(mode 640\); run `chmod 600/);
    expect(() => readKeyring(keyFile(`k1 ${KEY_A}\n`, 0o604))).toThrow(CodecKeyError);
    expect(() => readKeyring('/nonexistent/keys')).toThrow(/cannot be read \(ENOENT\)/);
    expect(() => readKeyring(keyFile('# only a comment\n'))).toThrow(/holds no key/);
    const short = Buffer.alloc(16, 3).toString('base64');
    let message = '';
    try {
      readKeyring(keyFile(`k1 ${KEY_A}\nk2 ${short}\n`));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/keys:2: key 'k2' must be 32 bytes in base64/);
    expect(message).not.toContain(short);
    expect(() => readKeyring(keyFile(`k1 ${KEY_A}\nk1 ${KEY_B}\n`))).toThrow(/:2: key id 'k1' appears twice/);
    expect(() => readKeyring(keyFile(`k/1 ${KEY_A}\n`))).toThrow(/:1: key id must be/);
    expect(() => readKeyring(keyFile(`k1\n`))).toThrow(/:1: expected '<key-id> <base64 key>'/);
    expect(new CodecKeyError('x').exitCode).toBe(2);
  });

  it('is built from EVALFLOW_CODEC_KEY_FILE, with the failure converter that encodes messages', () => {
    expect(codecFromEnv({})).toBeUndefined();
    expect(dataConverterFromEnv({ [CODEC_KEY_FILE_ENV]: '' })).toBeUndefined();
    const converter = dataConverterFromEnv({ [CODEC_KEY_FILE_ENV]: keyFile(`k1 ${KEY_A}\n`) });
    expect(converter?.failureConverterPath).toBe(ENCRYPTED_FAILURE_CONVERTER_PATH);
    expect(encrypts(converter)).toBe(true);
    expect(encrypts(undefined)).toBe(false);
  });
});
