/**
 * `-o` overrides with Hydra's rules: `key=value` changes an existing key (a typo must not create a new
 * one), `+key=value` adds a new key, `++key=value` adds or changes, `~key` / `~key=value` deletes. Values are
 * YAML (`5`, `true`, `null`, `[a,b]`, `{a: 1}`, quoted strings stay strings). List items are addressed by
 * index (`evaluation.tasks.0.name`) or, as upstream's sugar, by task name
 * (`evaluation.tasks.<name>.<path>`: every task of that name, full or bare).
 */
import { parse as parseYaml } from 'yaml';
import { ConfigError } from './errors.js';
import { arrayIndex, child, formatKeyPath, isTree, parseKeyPath, typedSegments, type Tree } from './tree.js';

export type OverrideOp = 'set' | 'add' | 'upsert' | 'delete';

export interface Override {
  text: string;
  op: OverrideOp;
  path: string[];
  /** Absent for a `~key` without value. */
  value?: unknown;
  hasValue: boolean;
}

const SYNTAX = /^(~|\+\+|\+)?([A-Za-z0-9_\-.@/[\]]+)(?:=([\s\S]*))?$/;

export function parseOverride(text: string): Override {
  const match = SYNTAX.exec(text);
  const prefix = match?.[1];
  const path = match ? parseKeyPath(match[2] ?? '') : undefined;
  const rawValue = match?.[3];
  if (!path || (rawValue === undefined && prefix !== '~')) {
    throw new ConfigError(`invalid override '${text}': expected key=value, +key=value, ++key=value, ~key or ~key=value`, 'overrides');
  }
  const op: OverrideOp = prefix === '~' ? 'delete' : prefix === '++' ? 'upsert' : prefix === '+' ? 'add' : 'set';
  return { text, op, path, hasValue: rawValue !== undefined, value: rawValue === undefined ? undefined : parseValue(rawValue, text) };
}

/** Hydra's value grammar, approximated with YAML: flow collections and quoted strings parse, other text stays text. */
function parseValue(raw: string, text: string): unknown {
  if (raw === '') return '';
  if (/^[[{'"]/.test(raw)) {
    try {
      return parseYaml(raw) as unknown;
    } catch (err) {
      throw new ConfigError(`invalid override '${text}': cannot parse value: ${(err as Error).message.split('\n')[0]}`, 'overrides');
    }
  }
  if (raw.includes('#')) return raw; // YAML would read the rest as a comment
  try {
    const value: unknown = parseYaml(raw);
    return typeof value === 'object' && value !== null ? raw : value;
  } catch {
    return raw;
  }
}

/** Applies one override to `tree` in place. */
export function applyOverride(tree: Tree, ov: Override): void {
  const [first, second, third] = ov.path;
  if (first === 'evaluation' && second === 'tasks' && third !== undefined && !/^\d+$/.test(third)) {
    applyTaskNameOverride(tree, ov);
    return;
  }
  applyAt(tree, ov, ov.path);
}

function applyAt(tree: Tree, ov: Override, path: readonly string[], createOnSet = false): void {
  const display = (segments: readonly string[]) => formatKeyPath(typedSegments(tree, segments));
  const parentPath = path.slice(0, -1);
  const key = path[path.length - 1] ?? '';
  const create = ov.op === 'add' || ov.op === 'upsert' || (ov.op === 'set' && createOnSet);
  const checkContainer = (container: unknown, upTo: number) => {
    const at = display(path.slice(0, upTo));
    if (!isTree(container) && !Array.isArray(container)) {
      throw new ConfigError(`override '${ov.text}': '${display(path.slice(0, upTo - 1))}' is not a mapping or list`, at);
    }
    if (Array.isArray(container) && arrayIndex(container, path[upTo - 1] ?? '') === undefined) {
      throw new ConfigError(`override '${ov.text}': '${at}' is not an item of the list (length ${container.length})`, at);
    }
  };
  let parent: unknown = tree;
  for (const [i, seg] of parentPath.entries()) {
    if (isTree(parent) && !child(parent, seg).found) {
      if (!create) throw missingKey(ov, display(path.slice(0, i + 1)));
      parent[seg] = {};
    }
    checkContainer(parent, i + 1);
    parent = child(parent, seg).value;
  }
  checkContainer(parent, path.length);
  const current = child(parent, key);
  const at = display(path);
  if (ov.op === 'delete') {
    if (!current.found) throw missingKey(ov, at);
    if (ov.hasValue && JSON.stringify(current.value) !== JSON.stringify(ov.value)) {
      throw new ConfigError(`override '${ov.text}': '${at}' is ${JSON.stringify(current.value)}, not ${JSON.stringify(ov.value)}`, at);
    }
    if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else delete (parent as Tree)[key];
    return;
  }
  if (ov.op === 'add' && current.found) {
    throw new ConfigError(`override '${ov.text}': '${at}' already exists; use '${ov.text.slice(1)}' to change it (or '+${ov.text}' to add or change)`, at);
  }
  if (ov.op === 'set' && !current.found && !createOnSet) throw missingKey(ov, at);
  if (Array.isArray(parent)) parent[Number(key)] = ov.value;
  else (parent as Tree)[key] = ov.value;
}

function missingKey(ov: Override, keyPath: string): ConfigError {
  const hint = ov.op === 'set' ? `; use '+${ov.text}' to add it (or '++${ov.text}' to add or change)` : '';
  return new ConfigError(`override '${ov.text}': key '${keyPath}' does not exist${hint}`, keyPath);
}

/**
 * `evaluation.tasks.<name>.<path>`: the longest leading segments that name a task (task names contain
 * dots) select every task with that name, as written or as its bare part after the harness prefix. As in
 * upstream, a plain `=` may create the path inside the task (tasks rarely spell out nemo_evaluator_config).
 */
function applyTaskNameOverride(tree: Tree, ov: Override): void {
  const tasks = child(child(tree, 'evaluation').value, 'tasks').value;
  const names = Array.isArray(tasks) ? tasks.map((t) => (isTree(t) && typeof t.name === 'string' ? t.name : '')) : [];
  const rest = ov.path.slice(2);
  for (let n = rest.length; n >= 1; n--) {
    const indices = taskIndicesByName(names, rest.slice(0, n).join('.'));
    if (indices.length === 0) continue;
    // Deleting whole tasks: from the back, so earlier indices stay valid.
    for (const index of [...indices].reverse()) applyAt(tree, ov, ['evaluation', 'tasks', String(index), ...rest.slice(n)], true);
    return;
  }
  throw new ConfigError(`override '${ov.text}': no task named '${rest[0]}' in evaluation.tasks (tasks: ${names.join(', ') || 'none'})`, 'evaluation.tasks');
}

/** Positions of the tasks called `name`, matched as written or as the bare part after `harness.`. */
export function taskIndicesByName(names: readonly string[], name: string): number[] {
  return names.flatMap((n, i) => (n === name || bareTaskName(n) === name ? [i] : []));
}

export function bareTaskName(name: string): string {
  const dot = name.indexOf('.');
  return dot < 0 ? name : name.slice(dot + 1);
}
