import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  expectedKeyTypes,
  fingerprint,
  hostKeyAlgorithmsFor,
  hostMatches,
  knownHostsLine,
  parseKnownHosts,
  parsePublicKey,
  verifyHostKey,
} from '../../backends/slurm/host-keys.js';

/** An ssh-ed25519 public key blob: string "ssh-ed25519" + string <32-byte key>. */
function ed25519Blob(): Buffer {
  const raw = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]);
}
const line = (blob: Buffer) => `ssh-ed25519 ${blob.toString('base64')}`;

describe('host keys', () => {
  const a = ed25519Blob();
  const b = ed25519Blob();

  it('parses public keys and refuses text whose blob names another type', () => {
    expect(parsePublicKey(`${line(a)} comment here`)?.blob.equals(a)).toBe(true);
    expect(parsePublicKey(`ssh-rsa ${a.toString('base64')}`)).toBeUndefined();
    expect(parsePublicKey('not a key')).toBeUndefined();
    expect(fingerprint(a)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('matches plain, bracketed, wildcard, negated and hashed host patterns', () => {
    expect(hostMatches('login.example.org', 'login.example.org', 22)).toBe(true);
    expect(hostMatches('[login.example.org]:22', 'login.example.org', 22)).toBe(true);
    expect(hostMatches('login.example.org', 'login.example.org', 2222)).toBe(false);
    expect(hostMatches('[127.0.0.1]:2222', '127.0.0.1', 2222)).toBe(true);
    expect(hostMatches('*.example.org,!bad.example.org', 'login.example.org', 22)).toBe(true);
    expect(hostMatches('*.example.org,!bad.example.org', 'bad.example.org', 22)).toBe(false);
    expect(hostMatches('log?n.example.org', 'login.example.org', 22)).toBe(true);
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update('[h]:2200').digest('base64');
    expect(hostMatches(`|1|${salt.toString('base64')}|${hash}`, 'h', 2200)).toBe(true);
    expect(hostMatches(`|1|${salt.toString('base64')}|${hash}`, 'h', 22)).toBe(false);
  });

  it('accepts a known key, refuses a changed, unknown or revoked one with the fingerprint and the fix', () => {
    const knownHosts = parseKnownHosts(`# comment\n[h]:2222 ${line(a)}\nother ${line(b)}\n`);
    const policy = { host: 'h', port: 2222, knownHosts, knownHostsPath: '/k' };
    expect(verifyHostKey(policy, a)).toEqual({ ok: true, how: 'known' });
    const changed = verifyHostKey(policy, b);
    expect(changed).toMatchObject({ ok: false, reason: 'changed' });
    expect(!changed.ok && changed.message).toContain(fingerprint(b));
    expect(!changed.ok && changed.message).toContain("ssh-keygen -R '[h]:2222' -f /k");
    // trust on first use never accepts a changed key
    expect(verifyHostKey({ ...policy, trustOnFirstUse: true }, b)).toMatchObject({ ok: false, reason: 'changed' });
    const unknown = verifyHostKey({ host: 'new', port: 22, knownHosts, knownHostsPath: '/k' }, a);
    expect(unknown).toMatchObject({ ok: false, reason: 'unknown' });
    expect(!unknown.ok && unknown.message).toMatch(/trust_on_first_use/);
    expect(verifyHostKey({ host: 'new', port: 22, knownHosts, trustOnFirstUse: true }, a)).toEqual({ ok: true, how: 'trusted-on-first-use' });
    const revoked = parseKnownHosts(`@revoked * ${line(a)}\n[h]:2222 ${line(a)}\n`);
    expect(verifyHostKey({ host: 'h', port: 2222, knownHosts: revoked }, a)).toMatchObject({ ok: false, reason: 'revoked' });
  });

  it('checks pinned keys only, and asks the server for the expected key types', () => {
    const pinned = [parsePublicKey(line(a))!];
    expect(verifyHostKey({ host: 'h', port: 22, pinned }, a)).toEqual({ ok: true, how: 'pinned' });
    expect(verifyHostKey({ host: 'h', port: 22, pinned, trustOnFirstUse: true }, b)).toMatchObject({ ok: false, reason: 'changed' });
    expect(expectedKeyTypes({ host: 'h', port: 22, pinned })).toEqual(['ssh-ed25519']);
    expect(hostKeyAlgorithmsFor(['ssh-rsa', 'ssh-ed25519'])).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519']);
    expect(knownHostsLine('h', 2222, a)).toBe(`[h]:2222 ${line(a)}\n`);
  });
});
