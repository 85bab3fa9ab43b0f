/**
 * OmegaConf-style interpolation: `${a.b.c}` (absolute key path, also inside strings and nested as in
 * `${a.${b}}`) and `${oc.env:VAR}` / `${oc.env:VAR,default}`. A string that is exactly one interpolation
 * takes the referenced value's type; otherwise the parts are joined as text. `\${` is a literal `${`.
 */
import { ConfigError } from './errors.js';
import { child, formatKeyPath, isTree, parseKeyPath, typedSegments, type Tree } from './tree.js';

type Part = string | { expr: string };

const NOT_FOUND = Symbol('not found');

export function resolveInterpolations(root: Tree, env: Record<string, string | undefined>): Tree {
  const { tree, problems } = resolveInterpolationsCollecting(root, env);
  if (problems.length > 0) throw ConfigError.combine(problems);
  return tree;
}

/** Resolves what it can: a value whose interpolation fails is reported and kept as written. */
export function resolveInterpolationsCollecting(root: Tree, env: Record<string, string | undefined>): { tree: Tree; problems: ConfigError[] } {
  const resolver = new Resolver(root, env);
  return { tree: resolver.node([]) as Tree, problems: resolver.problems };
}

class Resolver {
  private readonly resolved = new Map<string, unknown>();
  private readonly active: string[][] = [];
  readonly problems: ConfigError[] = [];

  constructor(
    private readonly root: Tree,
    private readonly env: Record<string, string | undefined>,
  ) {}

  /** The fully resolved value at a key path (NOT_FOUND when there is no such key). */
  node(segments: string[]): unknown {
    const id = JSON.stringify(segments);
    if (this.resolved.has(id)) return this.resolved.get(id);
    const cycleStart = this.active.findIndex((s) => JSON.stringify(s) === id);
    if (cycleStart >= 0) {
      const cycle = [...this.active.slice(cycleStart), segments].map((s) => this.display(s));
      throw new ConfigError(`${cycle[0]}: interpolation cycle: ${cycle.join(' -> ')}`, cycle[0]);
    }
    this.active.push(segments);
    try {
      const raw = this.lookup(segments);
      const where = this.display(segments);
      let value: unknown = raw;
      if (typeof raw === 'string') value = this.leaf(raw, where);
      else if (Array.isArray(raw)) value = raw.map((_, i) => this.node([...segments, String(i)]));
      else if (isTree(raw)) value = Object.fromEntries(Object.keys(raw).map((k) => [k, this.node([...segments, k])]));
      this.resolved.set(id, value);
      return value;
    } finally {
      this.active.pop();
    }
  }

  /** Walks the raw tree; an interpolated string on the way is resolved first (`${a}` where a is `${b}`). */
  private lookup(segments: readonly string[]): unknown {
    let node: unknown = this.root;
    for (const [i, seg] of segments.entries()) {
      if (typeof node === 'string' && node.includes('${')) node = this.node(segments.slice(0, i));
      const next = child(node, seg);
      if (!next.found) return NOT_FOUND;
      node = next.value;
    }
    return node;
  }

  private display(segments: readonly string[]): string {
    return formatKeyPath(typedSegments(this.root, segments)) || '<root>';
  }

  /** A string value of the tree: resolved, or (on a problem, which is recorded) kept as written. */
  private leaf(raw: string, where: string): unknown {
    try {
      return this.text(raw, where);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.problems.push(err);
      return raw;
    }
  }

  /** Resolves the interpolations of one string value found at `where`. */
  private text(raw: string, where: string): unknown {
    if (!raw.includes('${')) return raw;
    const parts = splitInterpolations(raw, where);
    const values = parts.map((part) => (typeof part === 'string' ? part : this.expr(part.expr, where)));
    if (parts.length === 1 && typeof parts[0] !== 'string') return values[0];
    return values
      .map((value) => {
        if (typeof value === 'object' && value !== null) throw new ConfigError(`${where}: cannot insert a ${Array.isArray(value) ? 'list' : 'mapping'} into the string '${raw}'`, where);
        return String(value);
      })
      .join('');
  }

  private expr(expr: string, where: string): unknown {
    const resolver = /^\s*([A-Za-z_][\w.]*):(.*)$/s.exec(expr);
    if (resolver) return this.callResolver(resolver[1] ?? '', resolver[2] ?? '', where);
    const key = this.text(expr.trim(), where);
    if (typeof key !== 'string') throw new ConfigError(`${where}: interpolation '\${${expr}}' does not name a key`, where);
    if (key.startsWith('.')) throw new ConfigError(`${where}: relative interpolation '\${${key}}' is not supported; use the absolute key path`, where);
    const segments = parseKeyPath(key);
    const value = segments ? this.node(segments) : NOT_FOUND;
    if (value === NOT_FOUND) {
      const hint = /^[A-Z_][A-Z0-9_]*$/.test(key) ? ` (for an environment variable use \${oc.env:${key}}; for a literal '\${' write '\\\${')` : '';
      throw new ConfigError(`${where}: interpolation '\${${key}}' refers to missing key '${key}'${hint}`, where);
    }
    return value;
  }

  private callResolver(name: string, argText: string, where: string): unknown {
    if (name === 'select_not_null') return this.selectNotNull(argText, where);
    if (name !== 'oc.env') throw new ConfigError(`${where}: unknown resolver '${name}' (evalflow supports oc.env, select_not_null)`, where);
    const [varArg, ...rest] = splitArgs(argText).map((arg) => this.text(arg.trim(), where));
    if (typeof varArg !== 'string' || !varArg || rest.length > 1) {
      throw new ConfigError(`${where}: expected \${oc.env:VAR} or \${oc.env:VAR,default}`, where);
    }
    const value = this.env[unquote(varArg)];
    if (value !== undefined) return value;
    if (rest.length === 0) {
      throw new ConfigError(`${where}: environment variable '${unquote(varArg)}' is not set (give a default with \${oc.env:${unquote(varArg)},default})`, where);
    }
    // As in OmegaConf: a default of `null` is null, any other default is a string.
    const fallback = rest[0];
    return fallback === 'null' ? null : typeof fallback === 'string' ? unquote(fallback) : String(fallback);
  }

  /** Upstream's `${select_not_null:key.path,default}`: the key's value unless it is absent or null, else the default (as text). */
  private selectNotNull(argText: string, where: string): unknown {
    const args = splitArgs(argText).map((arg) => this.text(arg.trim(), where));
    const [key, fallback] = args;
    const segments = typeof key === 'string' ? parseKeyPath(key) : undefined;
    if (args.length !== 2 || !segments) throw new ConfigError(`${where}: expected \${select_not_null:key.path,default}`, where);
    const value = this.node(segments);
    return value === NOT_FOUND || value === null ? (typeof fallback === 'string' ? unquote(fallback) : fallback) : value;
  }
}

/** Splits a string into literal text and `${...}` expressions (balanced, so nested ones stay whole). */
function splitInterpolations(raw: string, where: string): Part[] {
  const parts: Part[] = [];
  let literal = '';
  let i = 0;
  while (i < raw.length) {
    if (raw.startsWith('\\${', i)) {
      literal += '${';
      i += 3;
    } else if (raw.startsWith('${', i)) {
      const end = closingBrace(raw, i + 2);
      if (end < 0) throw new ConfigError(`${where}: unterminated interpolation in '${raw}'`, where);
      if (literal) parts.push(literal);
      literal = '';
      parts.push({ expr: raw.slice(i + 2, end) });
      i = end + 1;
    } else {
      literal += raw[i];
      i += 1;
    }
  }
  if (literal) parts.push(literal);
  return parts;
}

function closingBrace(raw: string, from: number): number {
  let depth = 0;
  for (let i = from; i < raw.length; i++) {
    if (raw.startsWith('${', i)) {
      depth += 1;
      i += 1;
    } else if (raw[i] === '}') {
      if (depth === 0) return i;
      depth -= 1;
    }
  }
  return -1;
}

/** Splits resolver arguments at top-level commas (not inside nested interpolations or quotes). */
function splitArgs(text: string): string[] {
  const args: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? '';
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (text.startsWith('${', i)) depth += 1;
    else if (c === '}') depth -= 1;
    else if (c === ',' && depth === 0) {
      args.push(current);
      current = '';
      continue;
    }
    current += c;
  }
  args.push(current);
  return args;
}

function unquote(text: string): string {
  const match = /^(['"])(.*)\1$/s.exec(text);
  return match ? (match[2] ?? '') : text;
}
