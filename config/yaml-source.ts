/** Reading YAML config files: syntax errors point at file:line:col, the root must be a mapping. */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { ConfigError } from './errors.js';
import { isTree, type Tree } from './tree.js';

export function parseYamlMapping(text: string, source: string): Tree {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const [error] = doc.errors;
  if (error) {
    const pos = error.linePos?.[0];
    const where = pos ? `${source}:${pos.line}:${pos.col}` : source;
    const reason = (error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(`${where}: YAML syntax error: ${reason}`, where);
  }
  const value: unknown = doc.toJS({ maxAliasCount: 1000 });
  if (!isTree(value)) {
    const got = value === null || value === undefined ? 'an empty document' : Array.isArray(value) ? 'a list' : `a ${typeof value}`;
    throw new ConfigError(`${source}: expected a mapping of config keys at the top level, got ${got}`, source);
  }
  return value;
}

export function readYamlMapping(file: string): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new ConfigError(`${file}: cannot read config: ${reason}`, file);
  }
  return parseYamlMapping(text, file);
}
