/**
 * Reading YAML config files: syntax errors point at file:line:col, the root must be a mapping, and a file
 * that trips a resource limit (size, alias expansion, nesting) is bad input naming the file, not a crash.
 */
import { readFileSync, statSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { ConfigError } from './errors.js';
import { formatKeyPath, isTree, type Tree } from './tree.js';

/** Launcher configs are a few KiB; anything near this is not a config (and would cost seconds and GiBs to parse). */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Aliases expanded per document ("billion laughs" documents expand exponentially). */
export const MAX_ALIAS_COUNT = 1000;
/** Real configs nest about 10 levels; deeper structures (or self-referencing aliases) are refused. */
export const MAX_NESTING = 64;

export function parseYamlMapping(text: string, source: string): Tree {
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_CONFIG_BYTES) throw tooLarge(source, bytes);
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const [error] = doc.errors;
  if (error) {
    const pos = error.linePos?.[0];
    const where = pos ? `${source}:${pos.line}:${pos.col}` : source;
    if (error.code === 'RESOURCE_EXHAUSTION') {
      throw new ConfigError(`${where}: YAML nested too deeply for the parser (evalflow accepts up to ${MAX_NESTING} levels)`, source);
    }
    const reason = (error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(`${where}: YAML syntax error: ${reason}`, where);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // The yaml package reports an alias expansion over the limit as a ReferenceError.
    if (!(err instanceof ReferenceError)) throw err;
    throw new ConfigError(`${source}: YAML aliases expand to more than ${MAX_ALIAS_COUNT} copies (a resource exhaustion attempt?)`, source);
  }
  const deep = tooDeepPath(value);
  if (deep) {
    throw new ConfigError(`${source}: nests deeper than ${MAX_NESTING} levels (or refers to itself through an alias) at ${formatKeyPath(deep.slice(0, 8))}…`, source);
  }
  if (!isTree(value)) {
    const got = value === null || value === undefined ? 'an empty document' : Array.isArray(value) ? 'a list' : `a ${typeof value}`;
    throw new ConfigError(`${source}: expected a mapping of config keys at the top level, got ${got}`, source);
  }
  return value;
}

export function readYamlMapping(file: string): Tree {
  let text: string;
  try {
    const { size } = statSync(file);
    if (size > MAX_CONFIG_BYTES) throw tooLarge(file, size);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new ConfigError(`${file}: cannot read config: ${reason}`, file);
  }
  return parseYamlMapping(text, file);
}

function tooLarge(source: string, size: number): ConfigError {
  return new ConfigError(`${source}: ${size} bytes is larger than a config can be (${MAX_CONFIG_BYTES} bytes)`, source);
}

/** The key path where `value` nests deeper than MAX_NESTING (walked without recursion: cycles end there too). */
function tooDeepPath(value: unknown): (string | number)[] | undefined {
  const stack: { node: unknown; path: (string | number)[] }[] = [{ node: value, path: [] }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const { node, path } = next;
    if (node === null || typeof node !== 'object') continue;
    if (path.length >= MAX_NESTING) return path;
    const entries: [string | number, unknown][] = Array.isArray(node) ? node.map((v, i) => [i, v]) : Object.entries(node);
    for (const [key, child] of entries) stack.push({ node: child, path: [...path, key] });
  }
  return undefined;
}
