/**
 * Host key verification for the SSH layer (DESIGN §3.9), pure: OpenSSH known_hosts lines (plain and
 * hashed host patterns, `[host]:port`, wildcards, negations, `@revoked`) or keys pinned in the config.
 * A key that matches is accepted; an unknown one or a changed one is refused, with the fingerprint
 * and the fix in the message, unless trust on first use was asked for (unknown keys only, never changed ones).
 */
import { createHash, createHmac } from 'node:crypto';

/** A public key as `<type> <base64 blob>` (the first two fields of a .pub file or a known_hosts entry). */
export interface PublicKey {
  type: string;
  blob: Buffer;
}

export interface KnownHostEntry {
  marker?: '@revoked' | '@cert-authority';
  patterns: string;
  key: PublicKey;
}

export type HostKeyVerdict =
  | { ok: true; how: 'known' | 'pinned' | 'trusted-on-first-use' }
  | { ok: false; reason: 'unknown' | 'changed' | 'revoked'; message: string };

/** Parses `ssh-ed25519 AAAA… [comment]`; undefined when it is not a key. */
export function parsePublicKey(text: string): PublicKey | undefined {
  const [type, b64] = text.trim().split(/\s+/);
  if (!type || !b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  const blob = Buffer.from(b64, 'base64');
  return keyTypeOfBlob(blob) === type ? { type, blob } : undefined;
}

/** The key type named inside an SSH public key blob (its first length-prefixed string). */
export function keyTypeOfBlob(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const len = blob.readUInt32BE(0);
  return len > 0 && len < 64 && blob.length >= 4 + len ? blob.subarray(4, 4 + len).toString('latin1') : undefined;
}

/** OpenSSH's fingerprint form: `SHA256:<unpadded base64>`. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority') marker = fields.shift() as KnownHostEntry['marker'];
    const [patterns, type, b64] = fields;
    if (!patterns || !type || !b64) continue;
    const key = parsePublicKey(`${type} ${b64}`);
    if (key) entries.push(marker ? { marker, patterns, key } : { patterns, key });
  }
  return entries;
}

/** The host name as known_hosts writes it: bare for port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Does a comma-separated pattern list (plain, hashed `|1|salt|hash`, `*`/`?` globs, `!` negations) match? */
export function hostMatches(patterns: string, host: string, port: number): boolean {
  const name = knownHostsName(host, port);
  if (patterns.startsWith('|1|')) return hashedMatches(patterns, name);
  let matched = false;
  for (const pattern of patterns.split(',')) {
    const negated = pattern.startsWith('!');
    const body = negated ? pattern.slice(1) : pattern;
    if (globMatches(body, name) || (port === 22 && globMatches(body, `[${host}]:22`))) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function hashedMatches(entry: string, name: string): boolean {
  const [, , salt, hash] = entry.split('|');
  if (!salt || !hash) return false;
  const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
  return digest === hash;
}

function globMatches(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.')}$`, 'i');
  return re.test(name);
}

/** The key types the server should offer (as ssh2 algorithm names) so it presents a key we can check. */
export function hostKeyAlgorithmsFor(types: readonly string[]): string[] {
  const algorithms = new Set<string>();
  for (const type of types) {
    if (type === 'ssh-rsa') ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'].forEach((a) => algorithms.add(a));
    else algorithms.add(type);
  }
  return [...algorithms];
}

export interface HostKeyPolicy {
  host: string;
  port: number;
  /** Keys pinned in the config; when given, known_hosts is not consulted. */
  pinned?: readonly PublicKey[];
  /** known_hosts content (empty when the file does not exist). */
  knownHosts?: readonly KnownHostEntry[];
  knownHostsPath?: string;
  /** Explicit opt-in: accept (and record) a key for a host that has none yet. Never accepts a changed key. */
  trustOnFirstUse?: boolean;
}

/** The key types a policy expects from the server (empty: anything, e.g. a first connection). */
export function expectedKeyTypes(policy: HostKeyPolicy): string[] {
  const keys = policy.pinned?.length ? policy.pinned : relevantEntries(policy).filter((e) => !e.marker).map((e) => e.key);
  return [...new Set(keys.map((k) => k.type))];
}

function relevantEntries(policy: HostKeyPolicy): KnownHostEntry[] {
  return (policy.knownHosts ?? []).filter((e) => hostMatches(e.patterns, policy.host, policy.port));
}

export function verifyHostKey(policy: HostKeyPolicy, presented: Buffer): HostKeyVerdict {
  const name = knownHostsName(policy.host, policy.port);
  const type = keyTypeOfBlob(presented) ?? 'unknown-type';
  const print = `${type} ${fingerprint(presented)}`;
  if (policy.pinned?.length) {
    if (policy.pinned.some((k) => k.blob.equals(presented))) return { ok: true, how: 'pinned' };
    return {
      ok: false,
      reason: 'changed',
      message:
        `host key of ${name} does not match the pinned key (execution.ssh.host_key): the server presented ${print}, ` +
        `expected ${policy.pinned.map((k) => `${k.type} ${fingerprint(k.blob)}`).join(' or ')}. ` +
        'Someone may be intercepting the connection, or the host was reinstalled: check the key with the cluster admins before changing the pin.',
    };
  }
  const entries = relevantEntries(policy);
  if (entries.some((e) => e.marker === '@revoked' && e.key.blob.equals(presented))) {
    return { ok: false, reason: 'revoked', message: `host key of ${name} (${print}) is marked @revoked in ${policy.knownHostsPath ?? 'known_hosts'}` };
  }
  const plain = entries.filter((e) => !e.marker);
  if (plain.some((e) => e.key.blob.equals(presented))) return { ok: true, how: 'known' };
  const where = policy.knownHostsPath ?? 'known_hosts';
  if (plain.length > 0) {
    return {
      ok: false,
      reason: 'changed',
      message:
        `host key of ${name} has CHANGED: the server presented ${print}, but ${where} has ` +
        `${plain.map((e) => `${e.key.type} ${fingerprint(e.key.blob)}`).join(', ')}. ` +
        `Someone may be intercepting the connection, or the host was reinstalled: verify the new key, then remove the old entry (ssh-keygen -R '${name}' -f ${where}).`,
    };
  }
  if (policy.trustOnFirstUse) return { ok: true, how: 'trusted-on-first-use' };
  return {
    ok: false,
    reason: 'unknown',
    message:
      `host key of ${name} is unknown (${print}; not in ${where}). Verify it, then add it to ${where} ` +
      `(ssh-keyscan -p ${policy.port} ${policy.host} >> ${where}), pin it with execution.ssh.host_key, ` +
      'or opt in to trust on first use with execution.ssh.trust_on_first_use: true.',
  };
}

/** The known_hosts line recorded after a trust-on-first-use acceptance. */
export function knownHostsLine(host: string, port: number, blob: Buffer): string {
  return `${knownHostsName(host, port)} ${keyTypeOfBlob(blob) ?? 'unknown'} ${blob.toString('base64')}\n`;
}
