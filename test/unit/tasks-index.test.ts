import { describe, expect, it } from 'vitest';
import { BUILTIN_TASK_INFO } from '../../harness/tasks/catalogue.js';
import { BUILTIN_HARNESS, BUILTIN_TASKS, custom, getBuiltinTask, gsm8k, mmlu } from '../../harness/tasks/index.js';

describe('built-in task lookup', () => {
  it('holds the built-in tasks under their own names', () => {
    expect(BUILTIN_HARNESS).toBe('evalflow');
    expect(Object.keys(BUILTIN_TASKS)).toEqual(['gsm8k', 'gsm8k_cot', 'mmlu', 'math500', 'ifeval', 'humaneval', 'mbpp', 'custom']);
    for (const [name, task] of Object.entries(BUILTIN_TASKS)) expect(task.name).toBe(name);
  });

  it('describes each task as the catalogue the config planner reads does', () => {
    expect(Object.keys(BUILTIN_TASK_INFO)).toEqual(Object.keys(BUILTIN_TASKS));
    for (const [name, info] of Object.entries(BUILTIN_TASK_INFO)) {
      const { name: own, description, supportedEndpointTypes, defaultParams } = BUILTIN_TASKS[name] ?? {};
      expect({ name: own, description, supportedEndpointTypes, defaultParams }).toEqual(info);
    }
  });

  it('resolves bare and harness-qualified names', () => {
    expect(getBuiltinTask('gsm8k')).toBe(gsm8k);
    expect(getBuiltinTask('evalflow.gsm8k')).toBe(gsm8k);
    expect(getBuiltinTask('evalflow.mmlu')).toBe(mmlu);
    expect(getBuiltinTask('custom')).toBe(custom);
  });

  it('rejects unknown names, listing the built-in tasks', () => {
    const list = '(built-in tasks: evalflow.gsm8k, evalflow.gsm8k_cot, evalflow.mmlu, evalflow.math500, evalflow.ifeval, evalflow.humaneval, evalflow.mbpp, evalflow.custom)';
    expect(() => getBuiltinTask('gsm8k_8shot')).toThrow(`unknown built-in task "gsm8k_8shot" ${list}`);
    expect(() => getBuiltinTask('lm-evaluation-harness.gsm8k')).toThrow(`unknown built-in task "lm-evaluation-harness.gsm8k" ${list}`);
    expect(() => getBuiltinTask('evalflow.')).toThrow(list);
    expect(() => getBuiltinTask('toString')).toThrow(list);
  });
});
