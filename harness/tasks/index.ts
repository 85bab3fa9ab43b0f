/**
 * The built-in tasks of the `evalflow` harness, by name. A small map from name to definition; full names are
 * `evalflow.<name>` (DESIGN §3.10), and both forms resolve here.
 */
import { custom } from './custom.js';
import { gsm8k } from './gsm8k.js';
import { gsm8kCot } from './gsm8k-cot.js';
import { humaneval } from './humaneval.js';
import { ifeval } from './ifeval/index.js';
import { math500 } from './math500.js';
import { mbpp } from './mbpp.js';
import { mmlu } from './mmlu.js';
import type { TaskDefinition } from './types.js';
import { BUILTIN_HARNESS, type BuiltinTaskName } from './catalogue.js';

export { BUILTIN_HARNESS };

export const BUILTIN_TASKS: Record<string, TaskDefinition> = { gsm8k, gsm8k_cot: gsm8kCot, mmlu, math500, ifeval, humaneval, mbpp, custom } satisfies Record<BuiltinTaskName, TaskDefinition>;

/** The built-in task named `name` or `evalflow.<name>`; an unknown name is an Error listing the built-in ones. */
export function getBuiltinTask(name: string): TaskDefinition {
  const short = name.startsWith(`${BUILTIN_HARNESS}.`) ? name.slice(BUILTIN_HARNESS.length + 1) : name;
  const task = Object.hasOwn(BUILTIN_TASKS, short) ? BUILTIN_TASKS[short] : undefined;
  if (!task) {
    const names = Object.keys(BUILTIN_TASKS).map((n) => `${BUILTIN_HARNESS}.${n}`);
    throw new Error(`unknown built-in task "${name}" (built-in tasks: ${names.join(', ')})`);
  }
  return task;
}

export { custom, gsm8k, gsm8kCot, humaneval, ifeval, math500, mbpp, mmlu };
export { DatasetError, TaskConfigError } from './errors.js';
export type * from './types.js';
