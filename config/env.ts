/**
 * Environment variables of a task, in upstream's explicit form: `host:VAR` (read on the submitting host at
 * the point of use), `lit:value` (a literal), `runtime:VAR` (resolved where the harness runs). Configs only
 * ever name variables; values are resolved by activities, so secrets never enter Temporal (DESIGN §3.4).
 */
import { z } from 'zod';
import { ConfigError } from './errors.js';
import type { RunConfig } from './schema.js';

export type EnvRef = { kind: 'host'; name: string } | { kind: 'lit'; value: string } | { kind: 'runtime'; name: string };

export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Why `value` is not a valid env value, or undefined when it is. Never echoes the value (it may be a secret). */
export function envValueProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `expected a string 'host:VAR', 'lit:value' or 'runtime:VAR', got ${value === null ? 'null' : typeof value}`;
  if (value.includes('${oc.env:')) {
    return "${oc.env:...} is not allowed in env_vars: use 'host:VAR' (read on the submitting host) or 'runtime:VAR' (read where the task runs)";
  }
  const match = /^(host|runtime):(.*)$/s.exec(value);
  if (match) return ENV_NAME_RE.test(match[2] ?? '') ? undefined : `'${match[1]}:' must be followed by an environment variable name`;
  if (value.startsWith('lit:')) return undefined;
  const hint = ENV_NAME_RE.test(value) ? ` (to pass the host variable ${value}, write 'host:${value}')` : '';
  return `expected 'host:VAR', 'lit:value' or 'runtime:VAR'${hint}`;
}

/** An `env_vars` mapping of the config: names to `host:`/`lit:`/`runtime:` values. */
export const EnvVarsSchema = z.record(
  z.string().regex(ENV_NAME_RE, 'must be an environment variable name'),
  z.string().superRefine((value, ctx) => {
    const problem = envValueProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
);

export function parseEnvRef(value: unknown, keyPath: string): EnvRef {
  const problem = envValueProblem(value);
  if (problem !== undefined || typeof value !== 'string') throw new ConfigError(`${keyPath}: ${problem}`, keyPath);
  const colon = value.indexOf(':');
  const kind = value.slice(0, colon);
  const rest = value.slice(colon + 1);
  return kind === 'lit' ? { kind, value: rest } : { kind: kind as 'host' | 'runtime', name: rest };
}

/**
 * The env of one task: top-level `env_vars`, then `evaluation.env_vars`, then the task's (later wins). As
 * upstream does, the variable named by `target.api_endpoint.api_key_name` is passed from the host unless the
 * config sets it explicitly, so the harness finds its key.
 */
export function resolveTaskEnv(cfg: RunConfig, taskIndex: number): Record<string, EnvRef> {
  const task = cfg.evaluation.tasks[taskIndex];
  if (!task) throw new ConfigError(`evaluation.tasks[${taskIndex}]: no such task`, `evaluation.tasks[${taskIndex}]`);
  const layers: [string, Record<string, string> | undefined][] = [
    ['env_vars', cfg.env_vars],
    ['evaluation.env_vars', cfg.evaluation.env_vars],
    [`evaluation.tasks[${taskIndex}].env_vars`, task.env_vars],
  ];
  const env: Record<string, EnvRef> = {};
  for (const [path, vars] of layers) {
    for (const [name, value] of Object.entries(vars ?? {})) env[name] = parseEnvRef(value, `${path}.${name}`);
  }
  const keyName = cfg.target.api_endpoint.api_key_name;
  if (keyName && !(keyName in env)) env[keyName] = { kind: 'host', name: keyName };
  return env;
}

/** The env of a deployment's server: top-level `env_vars`, then `deployment.env_vars` (later wins), as upstream. */
export function resolveDeploymentEnv(cfg: RunConfig): Record<string, EnvRef> {
  const own = cfg.deployment.type === 'none' ? {} : cfg.deployment.env_vars;
  const layers: [string, Record<string, string>][] = [
    ['env_vars', cfg.env_vars],
    ['deployment.env_vars', own],
  ];
  const env: Record<string, EnvRef> = {};
  for (const [path, vars] of layers) for (const [name, value] of Object.entries(vars)) env[name] = parseEnvRef(value, `${path}.${name}`);
  return env;
}

/** A literal for display: `***` plus its last 4 characters when it is long enough not to give itself away. */
function maskLiteral(value: string): string {
  return value.length > 8 ? `***${value.slice(-4)}` : '***';
}

/** Display form for dry runs: names are shown, literal values are masked (`lit:***abcd`). */
export function redactEnvRef(ref: EnvRef): string {
  return ref.kind === 'lit' ? `lit:${maskLiteral(ref.value)}` : `${ref.kind}:${ref.name}`;
}

/**
 * A copy of a config tree or workflow input fit for display (dry runs, the saved launcher config): every
 * `lit:` value of an `env_vars` mapping and every parsed literal `{kind: 'lit', value}` masked, wherever it
 * sits, so sections added later are covered too. A masked reference carries `redacted: true`, which the
 * workflow input schema rejects: a dry-run printout fed back as input fails loudly instead of sending the mask.
 */
export function redactSecrets(node: unknown): unknown {
  return redactNode(node);
}

function redactNode(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(redactNode);
  if (node === null || typeof node !== 'object') return node;
  const obj = node as Record<string, unknown>;
  if (obj.kind === 'lit' && typeof obj.value === 'string') return { ...obj, value: maskLiteral(obj.value), redacted: true };
  return Object.fromEntries(Object.entries(obj).map(([key, value]) => [key, key === 'env_vars' ? redactEnvVars(value) : redactNode(value)]));
}

function redactEnvVars(vars: unknown): unknown {
  if (vars === null || typeof vars !== 'object' || Array.isArray(vars)) return redactNode(vars);
  return Object.fromEntries(
    Object.entries(vars).map(([name, value]) => [name, typeof value === 'string' && value.startsWith('lit:') ? `lit:${maskLiteral(value.slice(4))}` : redactNode(value)]),
  );
}
