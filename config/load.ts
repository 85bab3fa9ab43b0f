/**
 * Loads the launcher config the way upstream's Hydra setup does: compose defaults groups, apply `-o`
 * overrides, require every `???`, resolve `${...}` interpolation, make paths absolute, validate strictly,
 * then apply the `-t` task filter. Every failure is a ConfigError naming the key path.
 */
import { isAbsolute, resolve } from 'node:path';
import type { Params } from '../harness/run-config.js';
import { baseDefaults, chooseOption, compose, isGroup, parseDefaultsList } from './compose.js';
import { envValueProblem } from './env.js';
import { ConfigError, ConfigProblems } from './errors.js';
import { resolveInterpolationsCollecting } from './interpolate.js';
import { applyOverride, bareTaskName, parseOverride, taskIndicesByName, type Override } from './overrides.js';
import { checkRunConfig, KNOWN_EVALUATOR_CONFIG_KEYS, type NemoEvaluatorConfig, type RunConfig } from './schema.js';
import { child, deepMerge, formatKeyPath, isTree, MISSING, missingPaths, type Tree } from './tree.js';
import { readYamlMapping } from './yaml-source.js';

export interface LoadOptions {
  /** The user's config file (relative to `cwd`); without it, only the bundled defaults and overrides. */
  configPath?: string;
  /** `-o` overrides, applied in order. */
  overrides?: string[];
  /** `-t` task filters: `name`, bare `name`, or `name.<index>` for one task. */
  taskFilter?: string[];
  /** For `${oc.env:...}` (default: process.env). */
  env?: Record<string, string | undefined>;
  /** Base of relative paths (default: process.cwd()). */
  cwd?: string;
  /** `raw`: the file is used as written (a saved resolved config): no defaults, interpolation or overrides. */
  configMode?: 'hydra' | 'raw';
}

export function loadRunConfig(opts: LoadOptions = {}): RunConfig {
  const cwd = opts.cwd ?? process.cwd();
  const file = opts.configPath === undefined ? undefined : resolve(cwd, opts.configPath);
  const own = file === undefined ? {} : readYamlMapping(file);
  const problems = new ConfigProblems();
  let tree: Tree;
  if (opts.configMode === 'raw') {
    if (file === undefined) throw new ConfigError('--config-mode raw needs a config file', 'config');
    if (opts.overrides?.length) throw new ConfigError('overrides (-o) cannot be combined with --config-mode raw: a raw config is used as written', 'overrides');
    tree = own;
  } else {
    const overrides = (opts.overrides ?? []).flatMap((text) => problems.check(() => [parseOverride(text)]) ?? []);
    tree = composeWithOverrides(own, overrides, problems);
  }
  // Sections of a kind evalflow does not run yet are validated against nothing: report only that.
  checkSupported(tree);
  deploymentFillsTarget(tree);
  // Every other problem is collected, so one run of the command lists them all. Values already reported
  // (a `???`, a failed interpolation) are left out of the schema check rather than reported twice.
  for (const path of missingPaths(tree)) {
    problems.add(new ConfigError(`${path}: missing required value (???); set it in the config or with -o ${path}=...`, path));
  }
  for (const error of envInterpolationProblems(tree)) problems.add(error);
  if (opts.configMode !== 'raw') {
    const resolved = resolveInterpolationsCollecting(tree, opts.env ?? process.env);
    for (const error of resolved.problems) if (!problems.covers(error.keyPath ?? '')) problems.add(error);
    tree = resolved.tree;
  }
  const checked = checkRunConfig(absolutePaths(tree, cwd), (keyPath) => problems.covers(keyPath));
  for (const error of checked.problems) problems.add(error);
  const valid = checked.cfg;
  const cfg = valid && opts.taskFilter?.length ? problems.check(() => selectTasks(valid, opts.taskFilter ?? [])) : valid;
  if (cfg === undefined || problems.any) throw problems.toError();
  return cfg;
}

function composeWithOverrides(own: Tree, overrides: Override[], problems: ConfigProblems): Tree {
  const { defaults, ...self } = own;
  let entries = defaults === undefined ? baseDefaults() : parseDefaultsList(defaults);
  // `-o execution=local` picks a group option, as in Hydra; every other override edits the composed tree.
  const edits: Override[] = [];
  for (const ov of overrides) {
    const [group, ...rest] = ov.path;
    if (group !== undefined && isGroup(group) && rest.length === 0 && ov.op !== 'delete' && typeof ov.value === 'string') {
      entries = chooseOption(entries, group, ov.value);
    } else edits.push(ov);
  }
  const tree = compose(self, entries);
  for (const ov of edits) problems.check(() => applyOverride(tree, ov));
  return tree;
}

/** Sections that upstream supports and evalflow does not implement yet are named as such (all at once). */
function checkSupported(tree: Tree): void {
  const execution = child(tree, 'execution').value;
  const aux = child(tree, 'auxiliary_deployments').value;
  const type = (node: unknown) => (isTree(node) && typeof node.type === 'string' ? node.type : undefined);
  const problems = new ConfigProblems();
  const execType = type(execution);
  if (execType !== undefined && execType !== 'local' && execType !== 'slurm') {
    problems.add(new ConfigError(`execution.type: execution '${execType}' is not supported yet (evalflow supports: local, slurm)`, 'execution.type'));
  }
  if (isTree(aux) && Object.keys(aux).length > 0) {
    problems.add(new ConfigError(`auxiliary_deployments: auxiliary deployments are not supported yet (found: ${Object.keys(aux).join(', ')})`, 'auxiliary_deployments'));
  }
  problems.throwIfAny();
}

/**
 * With a deployment, upstream derives the model's URL and id from it, so the base config's required
 * `target.api_endpoint.url`/`model_id` are not asked for (a URL the user sets still wins, as upstream).
 */
function deploymentFillsTarget(tree: Tree): void {
  const deployment = child(tree, 'deployment').value;
  if (!isTree(deployment) || deployment.type === 'none' || deployment.type === undefined) return;
  const endpoint = child(child(tree, 'target').value, 'api_endpoint').value;
  if (!isTree(endpoint)) return;
  for (const key of ['url', 'model_id']) if (endpoint[key] === MISSING) delete endpoint[key];
}

/** Upstream rule: env values name their source explicitly; `${oc.env:...}` would copy a secret into the config. */
function envInterpolationProblems(node: unknown, path: (string | number)[] = []): ConfigError[] {
  if (Array.isArray(node)) return node.flatMap((v, i) => envInterpolationProblems(v, [...path, i]));
  if (!isTree(node)) return [];
  return Object.entries(node).flatMap(([key, value]) => {
    if (key !== 'env_vars' || !isTree(value)) return envInterpolationProblems(value, [...path, key]);
    return Object.entries(value).flatMap(([name, v]) => {
      if (typeof v !== 'string' || !v.includes('${oc.env:')) return [];
      const keyPath = formatKeyPath([...path, key, name]);
      return [new ConfigError(`${keyPath}: ${envValueProblem(v)}`, keyPath)];
    });
  });
}

/** Relative output, export, dataset and model dirs, and `./`-style mount sources, are taken relative to `cwd`. */
function absolutePaths(tree: Tree, cwd: string): Tree {
  const out = structuredClone(tree);
  const abs = (p: unknown) => (typeof p === 'string' && p !== '' && !isAbsolute(p) ? resolve(cwd, p) : p);
  const execution = out.execution;
  // Slurm's output_dir is a path on the cluster (absolute, checked by the schema); its local side is local_output_dir.
  if (isTree(execution) && execution.type === 'slurm') execution.local_output_dir = abs(execution.local_output_dir ?? 'evalflow-results');
  else if (isTree(execution)) {
    execution.output_dir = abs(execution.output_dir);
    const mounts = execution.mounts;
    if (isTree(mounts)) {
      for (const [kind, map] of Object.entries(mounts)) {
        if (kind === 'deployment' || kind === 'evaluation') mounts[kind] = absoluteMountSources(map, cwd);
        if (kind === 'auxiliary' && isTree(map)) for (const [name, m] of Object.entries(map)) map[name] = absoluteMountSources(m, cwd);
      }
    }
  }
  const localExport = child(out.export, 'local').value;
  if (isTree(localExport) && localExport.output_dir !== undefined) localExport.output_dir = abs(localExport.output_dir);
  const deployment = out.deployment;
  if (isTree(deployment)) for (const key of ['checkpoint_path', 'cache_path', 'model_path']) if (key in deployment) deployment[key] = abs(deployment[key]);
  const tasks = child(out.evaluation, 'tasks').value;
  if (Array.isArray(tasks)) {
    for (const task of tasks) if (isTree(task) && task.dataset_dir !== undefined) task.dataset_dir = abs(task.dataset_dir);
  }
  return out;
}

function absoluteMountSources(map: unknown, cwd: string): unknown {
  if (!isTree(map)) return map;
  return Object.fromEntries(Object.entries(map).map(([src, dst]) => [/^\.\.?\//.test(src) ? resolve(cwd, src) : src, dst]));
}

/** `-t` filters select among the tasks (all, or a raw config's earlier selection); positions do not move. */
function selectTasks(cfg: RunConfig, filters: readonly string[]): RunConfig {
  const names = cfg.evaluation.tasks.map((t) => t.name);
  const pool = cfg.selected_tasks ?? names.map((_, i) => i);
  const chosen = new Set<number>();
  for (const filter of filters) {
    let hits = taskIndicesByName(names, filter);
    const indexed = /^(.+)\.(\d+)$/.exec(filter);
    if (hits.length === 0 && indexed) hits = taskIndicesByName(names, indexed[1] ?? '').filter((i) => i === Number(indexed[2]));
    hits = hits.filter((i) => pool.includes(i));
    if (hits.length === 0) {
      const listing = pool.map((i) => `${bareTaskName(names[i] ?? '')}.${i} (${names[i]})`).join(', ');
      throw new ConfigError(`task filter '${filter}' matches no task in evaluation.tasks (tasks: ${listing})`, 'evaluation.tasks');
    }
    for (const i of hits) chosen.add(i);
  }
  return { ...cfg, selected_tasks: [...chosen].sort((a, b) => a - b) };
}

export interface TaskEvaluatorConfig {
  /** The task's `nemo_evaluator_config` deep-merged over the global one (the task wins), whole. */
  merged: NemoEvaluatorConfig;
  params: Params;
  /** Keys of the merged nemo_evaluator_config that nemo-evaluator does not know (e.g. `config.extra`). */
  unknownKeys: string[];
}

/** The task's `nemo_evaluator_config` deep-merged over the global one (the task wins, lists replaced). */
export function taskEvaluatorConfig(cfg: RunConfig, taskIndex: number): TaskEvaluatorConfig {
  const task = cfg.evaluation.tasks[taskIndex];
  if (!task) throw new ConfigError(`evaluation.tasks[${taskIndex}]: no such task`, `evaluation.tasks[${taskIndex}]`);
  const merged = deepMerge(cfg.evaluation.nemo_evaluator_config ?? {}, task.nemo_evaluator_config ?? {}) as NemoEvaluatorConfig;
  const unknown = (obj: object | undefined, known: readonly string[], prefix: string) =>
    Object.keys(obj ?? {})
      .filter((k) => !known.includes(k))
      .map((k) => `${prefix}${k}`);
  return {
    merged,
    params: merged.config?.params ?? {},
    unknownKeys: [
      ...unknown(merged, KNOWN_EVALUATOR_CONFIG_KEYS.root, ''),
      ...unknown(merged.config, KNOWN_EVALUATOR_CONFIG_KEYS.config, 'config.'),
      ...unknown(merged.target, KNOWN_EVALUATOR_CONFIG_KEYS.target, 'target.'),
    ],
  };
}
