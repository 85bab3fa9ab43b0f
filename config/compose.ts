/**
 * Hydra-like composition: a config's `defaults` list picks one option per group from evalflow's bundled
 * defaults (config/defaults/<group>/<option>.yaml) and `_self_` marks where the config's own keys go; later
 * entries win. Everything is composed on top of config/defaults/default.yaml, whose defaults list applies to
 * configs without one.
 */
import { readdirSync } from 'node:fs';
import { join, sep } from 'node:path';
import { packageRoot } from '../common/paths.js';
import { ConfigError } from './errors.js';
import { deepMerge, isTree, type Tree } from './tree.js';
import { readYamlMapping } from './yaml-source.js';

export const GROUPS = ['execution', 'deployment'] as const;
export type Group = (typeof GROUPS)[number];

/** Options upstream ships that evalflow does not implement yet: named as such instead of "unknown". */
const UPSTREAM_ONLY: Record<Group, readonly string[]> = {
  execution: ['lepton/default'],
  deployment: ['vllm_ray'],
};

export type DefaultsEntry = { kind: 'self' } | { kind: 'group'; group: Group; option: string; pkg: string[] };

const defaultsDir = (): string => join(packageRoot(), 'config', 'defaults');

export function isGroup(name: string): name is Group {
  return (GROUPS as readonly string[]).includes(name);
}

/** The base config's own defaults list (used when a config has none). */
export function baseDefaults(): DefaultsEntry[] {
  return parseDefaultsList(baseConfig().defaults);
}

export function parseDefaultsList(value: unknown): DefaultsEntry[] {
  if (!Array.isArray(value)) throw new ConfigError('defaults: expected a list like [execution: local, deployment: none, _self_]', 'defaults');
  const entries = value.map((item, i) => parseEntry(item, `defaults[${i}]`));
  const seen = new Set<string>();
  for (const entry of entries) {
    if (entry.kind !== 'group') continue;
    const target = entry.pkg.join('.');
    if (seen.has(target)) throw new ConfigError(`defaults: '${target}' is selected twice`, 'defaults');
    seen.add(target);
  }
  return entries;
}

function parseEntry(item: unknown, keyPath: string): DefaultsEntry {
  if (item === '_self_') return { kind: 'self' };
  // `group: option` (mapping) or `group/option` (string), each with an optional `@package`.
  let spec: string | undefined;
  if (typeof item === 'string') spec = item;
  else if (isTree(item) && Object.keys(item).length === 1) {
    const [key, option] = Object.entries(item)[0] ?? [];
    if (typeof option === 'string' && key) spec = key.includes('@') ? key.replace('@', `/${option}@`) : `${key}/${option}`;
  }
  const match = spec === undefined ? null : /^([^/@\s]+)\/([^@\s]+)(?:@([\w.]+))?$/.exec(spec);
  if (!match) throw new ConfigError(`${keyPath}: expected '_self_' or 'group: option' (e.g. 'execution: local')`, keyPath);
  const [, group = '', option = '', pkg] = match;
  if (!isGroup(group)) throw new ConfigError(`${keyPath}: unknown defaults group '${group}' (groups: ${GROUPS.join(', ')})`, keyPath);
  return { kind: 'group', group, option, pkg: pkg ? pkg.split('.') : [group] };
}

/** Replaces (or adds) a group's option, as `-o execution=local` does in Hydra. */
export function chooseOption(entries: DefaultsEntry[], group: Group, option: string): DefaultsEntry[] {
  const isTarget = (e: DefaultsEntry) => e.kind === 'group' && e.group === group && e.pkg.join('.') === group;
  if (!entries.some(isTarget)) return [{ kind: 'group', group, option, pkg: [group] }, ...entries];
  return entries.map((e) => (isTarget(e) ? { ...e, option } : e));
}

function checkOption(group: Group, option: string): void {
  const supported = groupOptions(group);
  if (supported.includes(option)) return;
  const choices = `evalflow supports: ${supported.join(', ')}`;
  if (UPSTREAM_ONLY[group].includes(option)) throw new ConfigError(`defaults: ${group} group '${option}' is not supported yet (${choices})`, 'defaults');
  throw new ConfigError(`defaults: unknown ${group} group '${option}' (${choices})`, 'defaults');
}

/** Options of a group: the YAML files under its folder, `slurm/default` style for nested ones. */
function groupOptions(group: Group): string[] {
  const dir = join(defaultsDir(), group);
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.split(sep).join('/').replace(/\.yaml$/, ''))
    .sort();
}

/** Composes `self` (a config without its `defaults` key) with the selected groups, in list order. Options are
 * checked here, after `-o group=option` had its say, so the command line can replace an unsupported choice. */
export function compose(self: Tree, entries: readonly DefaultsEntry[]): Tree {
  const list = entries.some((e) => e.kind === 'self') ? entries : [...entries, { kind: 'self' } as const];
  const { defaults: _ignored, ...base } = baseConfig();
  let tree: unknown = base;
  for (const entry of list) if (entry.kind === 'group') checkOption(entry.group, entry.option);
  for (const entry of list) {
    const layer = entry.kind === 'self' ? self : wrap(entry.pkg, readYamlMapping(join(defaultsDir(), entry.group, `${entry.option}.yaml`)));
    tree = deepMerge(tree, layer);
  }
  return tree as Tree;
}

function baseConfig(): Tree {
  return readYamlMapping(join(defaultsDir(), 'default.yaml'));
}

function wrap(pkg: readonly string[], value: Tree): Tree {
  return pkg.reduceRight<Tree>((inner, key) => ({ [key]: inner }), value);
}
