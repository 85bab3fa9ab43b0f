/**
 * The secrets file of a job (upstream's `.secrets.env`): `export NAME=<quoted value>` lines, 0600, in the
 * job dir. A shell sources it (`set -a; . file`); the built-in harness image's entrypoint reads it with
 * parseEnvFile. Values never travel any other way into a container, so `docker inspect` shows none.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './files.js';
import { shellQuote, shellUnquote } from './shell.js';

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Where executors mount a job's secrets file in its containers (read-only). */
export const SECRETS_FILE_IN_CONTAINER = '/evalflow/secrets.env';

export function formatEnvFile(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([name, value]) => {
      if (!NAME_RE.test(name)) throw new Error(`invalid environment variable name ${JSON.stringify(name)}`);
      return `export ${name}=${shellQuote(value)}\n`;
    })
    .join('');
}

/** Parses what formatEnvFile writes (a quoted value may span lines). Errors name the line, never a value. */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  let pos = 0;
  while (pos < text.length) {
    const line = text.slice(0, pos).split('\n').length;
    if (text[pos] === '\n' || text.startsWith('#', pos)) {
      const end = text.indexOf('\n', pos);
      pos = end < 0 ? text.length : end + 1;
      continue;
    }
    const head = /^export ([A-Za-z_][A-Za-z0-9_]*)=/.exec(text.slice(pos, pos + 300));
    if (!head) throw new Error(`line ${line}: expected export NAME=VALUE`);
    const name = head[1] as string;
    // The value runs to the first newline outside single quotes.
    let end = pos + head[0].length;
    for (let quoted = false; end < text.length && (quoted || text[end] !== '\n'); end++) {
      if (text[end] === "'") quoted = !quoted;
      else if (!quoted && text[end] === '\\') end++; // shellQuote's \' outside quotes
    }
    try {
      env[name] = shellUnquote(text.slice(pos + head[0].length, end));
    } catch (err) {
      throw new Error(`line ${line} (${name}): ${(err as Error).message}`, { cause: err });
    }
    pos = end + 1;
  }
  return env;
}

export function writeEnvFile(path: string, env: Record<string, string>): void {
  writeFileAtomic(path, formatEnvFile(env), 0o600);
}

export function readEnvFile(path: string): Record<string, string> {
  return parseEnvFile(readFileSync(path, 'utf8'));
}
