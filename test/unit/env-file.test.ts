import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { formatEnvFile, parseEnvFile, readEnvFile, writeEnvFile } from '../../common/env-file.js';
import { shellQuote, shellUnquote } from '../../common/shell.js';

const NASTY = ["plain", "with space", "it's", "$HOME `id` $(id)", 'new\nline', '', "'", "a'b'c", 'back\\slash', 'ünïcødé ✓', '--flag=x'];

describe('shellUnquote', () => {
  it('reverses shellQuote', () => {
    for (const value of NASTY) expect(shellUnquote(shellQuote(value))).toBe(value);
  });
  it('refuses what shellQuote never produces, without echoing it', () => {
    expect(() => shellUnquote('a b')).toThrow(/^unquoted special character$/);
    expect(() => shellUnquote("'open")).toThrow(/unterminated/);
  });
});

describe('env file', () => {
  it('round-trips values and is what a shell sources', () => {
    const env = Object.fromEntries(NASTY.map((v, i) => [`V${i}`, v]));
    const text = formatEnvFile(env);
    expect(parseEnvFile(text)).toEqual(env);
    const dumped = execFileSync('sh', ['-c', `${text}\nfor i in $(seq 0 ${NASTY.length - 1}); do eval "printf '%s\\0' \\"\\$V$i\\""; done`], { encoding: 'utf8' });
    expect(dumped.split('\0').slice(0, -1)).toEqual(NASTY);
  });
  it('is written 0600', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'envfile-')), '.secrets.env');
    writeEnvFile(file, { API_KEY: 'sk-1' });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readEnvFile(file)).toEqual({ API_KEY: 'sk-1' });
  });
  it('names the bad line, never its value', () => {
    expect(() => parseEnvFile('export OK=1\nexport BAD=un quoted-secret\n')).toThrow(/^line 2 \(BAD\)/);
    expect(() => parseEnvFile('export OK=1\nexport BAD=un quoted-secret\n')).not.toThrow(/secret/);
    expect(() => parseEnvFile('NOEXPORT=1')).toThrow(/line 1: expected export NAME=VALUE/);
    expect(() => formatEnvFile({ 'BAD-NAME': 'x' })).toThrow(/invalid environment variable name/);
  });
});
