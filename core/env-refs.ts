/**
 * References to environment values, upstream's explicit form: `host:VAR` (read on the worker host at the
 * point of use), `lit:value` (a literal), `runtime:VAR` (read where the harness runs). Only names (and
 * literals) travel through Temporal; values are resolved where they are used.
 */
import { z } from 'zod';
import { PermanentError } from './errors.js';

export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const EnvRefSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('host'), name: z.string().regex(ENV_NAME_RE) }).strict(),
  z.object({ kind: z.literal('lit'), value: z.string() }).strict(),
  z.object({ kind: z.literal('runtime'), name: z.string().regex(ENV_NAME_RE) }).strict(),
]);
export type EnvRef = z.infer<typeof EnvRefSchema>;

export const EnvRefsSchema = z.record(z.string().regex(ENV_NAME_RE), EnvRefSchema);
export type EnvRefs = z.infer<typeof EnvRefsSchema>;

/** A referenced variable is not set where it is read. The message names the variable and the host, never a value. */
export class MissingEnvVarError extends PermanentError {
  override name = 'MissingEnvVarError';
  override readonly type = 'MissingEnvVar';
}

/**
 * Splits a job's env refs: `lit:` and `host:` values resolved from `env` (the worker's environment),
 * `runtime:` references left for the executor to resolve where the harness runs.
 */
export function resolveHostEnv(
  refs: EnvRefs,
  env: Record<string, string | undefined>,
  host: string,
): { values: Record<string, string>; runtime: Record<string, string> } {
  const values: Record<string, string> = {};
  const runtime: Record<string, string> = {};
  for (const [name, ref] of Object.entries(refs)) {
    if (ref.kind === 'lit') values[name] = ref.value;
    else if (ref.kind === 'runtime') runtime[name] = ref.name;
    else values[name] = requireEnv(env, ref.name, `${name} = host:${ref.name}`, host);
  }
  return { values, runtime };
}

/** `runtime:` references resolved from the environment where the harness runs. */
export function resolveRuntimeEnv(runtime: Record<string, string>, env: Record<string, string | undefined>, host: string): Record<string, string> {
  return Object.fromEntries(Object.entries(runtime).map(([name, variable]) => [name, requireEnv(env, variable, `${name} = runtime:${variable}`, host)]));
}

export function requireEnv(env: Record<string, string | undefined>, variable: string, what: string, host: string): string {
  const value = env[variable];
  if (value === undefined) throw new MissingEnvVarError(`env var ${what}: ${variable} is not set on ${host}, where it is read`);
  return value;
}
