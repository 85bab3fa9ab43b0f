/**
 * Validation of `config.params.extra` for a task: one zod schema per task, errors that name the key path
 * (`config.params.extra.<key>`), and a per-object cache so the per-sample calls (buildPrompt, score) do not
 * re-validate the same object thousands of times.
 */
import type { z } from 'zod';
import { TaskConfigError } from './errors.js';

const EXTRA_PATH = 'config.params.extra';

function formatIssue(issue: z.core.$ZodIssue, validKeys: readonly string[]): string {
  const where = [EXTRA_PATH, ...issue.path.map(String)].join('.');
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => `${where}.${k}`).join(', ');
    return `${keys}: unknown key${issue.keys.length > 1 ? 's' : ''} (valid keys: ${validKeys.join(', ')})`;
  }
  return `${where}: ${issue.message}`;
}

/**
 * Returns a parser for a task's `extra`: validates with `schema` (which should be `.strict()`), throws a
 * TaskConfigError naming `config.params.extra.<key>` on the first problem, and caches results per object.
 */
export function extraParser<S extends z.ZodObject>(schema: S, taskName: string): (extra: Record<string, unknown> | undefined) => z.output<S> {
  const cache = new WeakMap<object, z.output<S>>();
  const validKeys = Object.keys(schema.shape).sort();
  return (extra) => {
    const input = extra ?? {};
    const hit = cache.get(input);
    if (hit !== undefined) return hit;
    const parsed = schema.safeParse(input);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((issue) => formatIssue(issue, validKeys));
      throw new TaskConfigError(`task ${taskName}: ${problems.join('; ')}`);
    }
    cache.set(input, parsed.data);
    return parsed.data;
  };
}
