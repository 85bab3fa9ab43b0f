import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseEnvRef, redactEnvRef, resolveTaskEnv } from '../../config/env.js';
import { ConfigError } from '../../config/errors.js';
import { resolveInterpolations } from '../../config/interpolate.js';
import { loadRunConfig, taskEvaluatorConfig, type LoadOptions } from '../../config/load.js';
import { planTasks } from '../../config/plan.js';
import { listTasks, resolveTaskName } from '../../config/registry.js';
import type { RunConfig } from '../../config/schema.js';

/** The execution section of a local config (the union's other member is slurm). */
function localExecution(cfg: RunConfig) {
  if (cfg.execution.type !== 'local') throw new Error(`expected execution.type local, got ${cfg.execution.type}`);
  return cfg.execution;
}

const dir = mkdtempSync(join(tmpdir(), 'evalflow-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

function writeConfig(config: object | string): string {
  const file = join(dir, `config-${files++}.yaml`);
  writeFileSync(file, typeof config === 'string' ? config : stringify(config));
  return file;
}

const ENDPOINT = 'http://127.0.0.1:8000/v1/chat/completions';

type Mapping = Record<string, unknown>;
interface TestConfig {
  [key: string]: unknown;
  execution: Mapping;
  target: { api_endpoint: Mapping };
  evaluation: Mapping & { tasks: Mapping[] };
}

/** A small valid config; tests change what they need. */
function base(): TestConfig {
  return {
    execution: { output_dir: '/tmp/out' },
    target: { api_endpoint: { url: ENDPOINT, model_id: 'tiny', api_key_name: 'MY_KEY' } },
    evaluation: { tasks: [{ name: 'evalflow.gsm8k' }] },
  };
}

function load(config: object | string, opts: LoadOptions = {}) {
  return loadRunConfig({ configPath: writeConfig(config), env: {}, cwd: '/work/run', ...opts });
}

function loadError(config: object | string, opts: LoadOptions = {}): ConfigError {
  try {
    load(config, opts);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

function withTasks(...names: string[]) {
  return { ...base(), evaluation: { tasks: names.map((name) => ({ name })) } };
}

describe('defaults groups', () => {
  it('gives a config without a defaults list the base list (execution: local, deployment: none)', () => {
    const cfg = load(base());
    expect(cfg.execution).toEqual({
      type: 'local',
      output_dir: '/tmp/out',
      mode: 'sequential',
      max_parallel_tasks: null,
      runtime: 'docker',
      extra_docker_args: '',
      endpoint_readiness_timeout: 600,
      heartbeat_timeout: 60,
      max_attempts: 3,
    });
    expect(cfg.deployment).toEqual({ type: 'none' });
    expect(cfg.env_vars).toEqual({});
    expect(cfg.auxiliary_deployments).toEqual({});
  });

  it('lets the config win over its groups when _self_ comes last', () => {
    const cfg = load({ defaults: [{ execution: 'local' }, { deployment: 'none' }, '_self_'], ...base(), execution: { output_dir: '/o', mode: 'parallel' } });
    expect(localExecution(cfg).mode).toBe('parallel');
  });

  it('puts _self_ last when the list omits it (Hydra 1.1+)', () => {
    const cfg = load({ defaults: [{ execution: 'local' }, { deployment: 'none' }], ...base(), execution: { output_dir: '/o', mode: 'parallel' } });
    expect(localExecution(cfg).mode).toBe('parallel');
  });

  it('lets the groups win when _self_ comes first, but a group ??? never erases a value', () => {
    const cfg = load({ defaults: ['_self_', { execution: 'local' }, { deployment: 'none' }], ...base(), execution: { output_dir: '/o', mode: 'parallel' } });
    expect(localExecution(cfg).mode).toBe('sequential');
    expect(cfg.execution.output_dir).toBe('/o');
  });

  it('accepts the string form group/option and picks an option with -o group=option', () => {
    const cfg = load({ defaults: ['execution/local', 'deployment/none', '_self_'], ...base() }, { overrides: ['execution=local'] });
    expect(cfg.execution.type).toBe('local');
    const fromSlurm = load({ defaults: [{ execution: 'slurm/default' }, { deployment: 'none' }, '_self_'], ...base() }, { overrides: ['execution=local'] });
    expect(fromSlurm.execution.type).toBe('local');
    const err = loadError(base(), { overrides: ['deployment=vllm_ray'] });
    expect(err.message).toBe("defaults: deployment group 'vllm_ray' is not supported yet (evalflow supports: generic, llama_cpp, nim, none, sglang, trtllm, vllm)");
  });

  it('names unsupported upstream groups and lists the choices for unknown ones', () => {
    expect(loadError({ defaults: [{ execution: 'lepton/default' }], ...base() }).message).toBe(
      "defaults: execution group 'lepton/default' is not supported yet (evalflow supports: local, slurm/default)",
    );
    expect(loadError({ defaults: [{ execution: 'kubernetes' }], ...base() }).message).toBe("defaults: unknown execution group 'kubernetes' (evalflow supports: local, slurm/default)");
    expect(loadError({ defaults: [{ cluster: 'x' }], ...base() }).message).toBe("defaults[0]: unknown defaults group 'cluster' (groups: execution, deployment)");
    expect(loadError({ defaults: ['deployment/vllm@auxiliary_deployments.judge', '_self_'], ...base() }).message).toBe('auxiliary_deployments: auxiliary deployments are not supported yet (found: judge)');
  });

  it('has schema defaults equal to the execution/local.yaml values (raw configs get the same)', () => {
    const hydra = load(base());
    const raw = load({ ...base(), execution: { type: 'local', output_dir: '/tmp/out', max_parallel_tasks: null }, deployment: { type: 'none' } }, { configMode: 'raw' });
    expect(raw.execution).toEqual(hydra.execution);
    expect(raw).toEqual(hydra);
  });
});

describe('required values (???)', () => {
  it('lists every missing key path', () => {
    const err = loadError({ evaluation: { tasks: [{ name: 'evalflow.gsm8k', nemo_evaluator_config: { config: { params: { extra: { judge: '???' } } } } }] } });
    const paths = ['target.api_endpoint.url', 'target.api_endpoint.model_id', 'evaluation.tasks[0].nemo_evaluator_config.config.params.extra.judge', 'execution.output_dir'];
    expect(err.message).toBe(`invalid config:\n${paths.map((p) => `  ${p}: missing required value (???); set it in the config or with -o ${p}=...`).join('\n')}`);
    expect(err.keyPath).toBe('target.api_endpoint.url');
    expect(err.problems.map((p) => p.keyPath)).toEqual(paths);
  });

  it('accepts values supplied with -o', () => {
    const cfg = loadRunConfig({ overrides: ['execution.output_dir=/x', `target.api_endpoint.url=${ENDPOINT}`, 'target.api_endpoint.model_id=m', 'evaluation.tasks=[{name: evalflow.mmlu}]'], env: {} });
    expect(cfg.evaluation.tasks).toEqual([{ name: 'evalflow.mmlu' }]);
    expect(cfg.target.api_endpoint).toEqual({ url: ENDPOINT, model_id: 'm' });
  });
});

describe('interpolation', () => {
  it('resolves absolute key paths, keeping the type of a whole-value reference', () => {
    const config = base();
    config.execution.output_dir = '/results/${target.api_endpoint.model_id}/run';
    config.evaluation.nemo_evaluator_config = { config: { params: { parallelism: '${execution.max_attempts}' } } };
    const cfg = load(config);
    expect(cfg.execution.output_dir).toBe('/results/tiny/run');
    expect(cfg.evaluation.nemo_evaluator_config?.config?.params?.parallelism).toBe(3);
  });

  it('resolves chains, references into lists and nested interpolations', () => {
    const tree = resolveInterpolations(
      { a: { b: '${c.d}', list: ['x', '${a.b}'] }, c: { d: '${e}' }, e: 7, key: 'e', nested: '${${key}}', first: 'v=${a.list.0}', pick: '${a.list[1]}' },
      {},
    );
    expect(tree).toEqual({ a: { b: 7, list: ['x', 7] }, c: { d: 7 }, e: 7, key: 'e', nested: 7, first: 'v=x', pick: 7 });
  });

  it('reads ${oc.env:VAR} and ${oc.env:VAR,default} from the given env', () => {
    const config = base();
    config.target.api_endpoint.model_id = '${oc.env:MODEL}';
    config.execution.output_dir = '${oc.env:OUT_DIR,/tmp/default}';
    config.evaluation.pre_cmd = "echo ${oc.env:GREETING,'hello, world'} ${oc.env:UNSET,${target.api_endpoint.model_id}}";
    const cfg = load(config, { env: { MODEL: 'from-env' } });
    expect(cfg.target.api_endpoint.model_id).toBe('from-env');
    expect(cfg.execution.output_dir).toBe('/tmp/default');
    expect(cfg.evaluation.pre_cmd).toBe('echo hello, world from-env');
  });

  it('keeps \\${...} literal', () => {
    const cfg = load({ ...base(), evaluation: { ...base().evaluation, pre_cmd: 'echo \\${HOME}' } });
    expect(cfg.evaluation.pre_cmd).toBe('echo ${HOME}');
  });

  it('reports an unset variable, a missing key and a cycle with the key path', () => {
    const unset = base();
    unset.target.api_endpoint.model_id = '${oc.env:NOPE}';
    expect(loadError(unset).message).toBe("target.api_endpoint.model_id: environment variable 'NOPE' is not set (give a default with ${oc.env:NOPE,default})");
    const missing = base();
    missing.evaluation.pre_cmd = 'cd ${execution.workdir}';
    const err = loadError(missing);
    expect(err.message).toBe("evaluation.pre_cmd: interpolation '${execution.workdir}' refers to missing key 'execution.workdir'");
    expect(err.keyPath).toBe('evaluation.pre_cmd');
    const shellVar = base();
    shellVar.evaluation.pre_cmd = 'echo ${HOME}';
    expect(loadError(shellVar).message).toBe(
      "evaluation.pre_cmd: interpolation '${HOME}' refers to missing key 'HOME' (for an environment variable use ${oc.env:HOME}; for a literal '${' write '\\${')",
    );
    const cycle = base();
    cycle.evaluation.pre_cmd = '${evaluation.post_cmd}';
    cycle.evaluation.post_cmd = 'x ${evaluation.pre_cmd}';
    expect(loadError(cycle).message).toBe('evaluation.pre_cmd: interpolation cycle: evaluation.pre_cmd -> evaluation.post_cmd -> evaluation.pre_cmd');
  });
});

describe('overrides', () => {
  it('parses values as YAML: numbers, booleans, null, lists, mappings; quoted values stay strings', () => {
    const cfg = load(base(), {
      overrides: [
        'execution.max_attempts=5',
        'execution.max_parallel_tasks=null',
        '+target.api_endpoint.stream=true',
        "target.api_endpoint.model_id='123'",
        '+execution.auto_export={destinations: [local, mlflow]}',
        '+evaluation.pre_cmd=echo a: b # not a comment',
        '+evaluation.nemo_evaluator_config={config: {params: {limit_samples: 0.5, extra: {subjects: [anatomy]}}}}',
      ],
    });
    expect(cfg.execution.max_attempts).toBe(5);
    expect(localExecution(cfg).max_parallel_tasks).toBeNull();
    expect(cfg.target.api_endpoint.stream).toBe(true);
    expect(cfg.target.api_endpoint.model_id).toBe('123');
    expect(cfg.execution.auto_export).toEqual({ destinations: ['local', 'mlflow'] });
    expect(cfg.evaluation.pre_cmd).toBe('echo a: b # not a comment');
    expect(cfg.evaluation.nemo_evaluator_config).toEqual({ config: { params: { limit_samples: 0.5, extra: { subjects: ['anatomy'] } } } });
  });

  it('needs + for a new key and refuses + on an existing one; ++ does both', () => {
    expect(loadError(base(), { overrides: ['execution.workers=2'] }).message).toBe(
      "override 'execution.workers=2': key 'execution.workers' does not exist; use '+execution.workers=2' to add it (or '++execution.workers=2' to add or change)",
    );
    expect(loadError(base(), { overrides: ['+execution.mode=parallel'] }).message).toBe(
      "override '+execution.mode=parallel': 'execution.mode' already exists; use 'execution.mode=parallel' to change it (or '++execution.mode=parallel' to add or change)",
    );
    const cfg = load(base(), { overrides: ['++execution.mode=parallel', '++evaluation.post_cmd=echo done'] });
    expect(localExecution(cfg).mode).toBe('parallel');
    expect(cfg.evaluation.post_cmd).toBe('echo done');
  });

  it('deletes with ~key and ~key=value (the value must match)', () => {
    const config = { ...base(), evaluation: { ...base().evaluation, pre_cmd: 'echo hi' } };
    expect(load(config, { overrides: ['~evaluation.pre_cmd'] }).evaluation.pre_cmd).toBeUndefined();
    expect(load(config, { overrides: ['~evaluation.pre_cmd=echo hi'] }).evaluation.pre_cmd).toBeUndefined();
    expect(loadError(config, { overrides: ['~evaluation.pre_cmd=echo bye'] }).message).toBe(
      `override '~evaluation.pre_cmd=echo bye': 'evaluation.pre_cmd' is "echo hi", not "echo bye"`,
    );
    expect(loadError(base(), { overrides: ['~evaluation.post_cmd'] }).keyPath).toBe('evaluation.post_cmd');
    expect(load(withTasks('evalflow.gsm8k', 'evalflow.mmlu'), { overrides: ['~evaluation.tasks.0'] }).evaluation.tasks).toEqual([{ name: 'evalflow.mmlu' }]);
  });

  it('addresses list items by index', () => {
    const cfg = load(withTasks('evalflow.gsm8k', 'evalflow.mmlu'), { overrides: ['evaluation.tasks.1.name=evalflow.custom', '+evaluation.tasks.0.endpoint_type=completions'] });
    expect(cfg.evaluation.tasks).toEqual([{ name: 'evalflow.gsm8k', endpoint_type: 'completions' }, { name: 'evalflow.custom' }]);
    expect(loadError(base(), { overrides: ['evaluation.tasks.3.name=x'] }).message).toBe(
      "override 'evaluation.tasks.3.name=x': 'evaluation.tasks[3]' is not an item of the list (length 1)",
    );
  });

  it('rewrites evaluation.tasks.<name>.<path> to every task of that name (full or bare, dotted names too)', () => {
    const config = withTasks('evalflow.gsm8k', 'lm-evaluation-harness.ifeval', 'gsm8k', 'evalflow.gsm8k');
    const cfg = load(config, {
      overrides: [
        'evaluation.tasks.gsm8k.nemo_evaluator_config.config.params.limit_samples=5',
        'evaluation.tasks.lm-evaluation-harness.ifeval.endpoint_type=chat',
        '++evaluation.tasks.evalflow.gsm8k.env_vars={SEED: "lit:1"}',
      ],
    });
    const limit = (i: number) => cfg.evaluation.tasks[i]?.nemo_evaluator_config?.config?.params?.limit_samples;
    expect([0, 1, 2, 3].map(limit)).toEqual([5, undefined, 5, 5]);
    expect(cfg.evaluation.tasks[1]?.endpoint_type).toBe('chat');
    expect(cfg.evaluation.tasks.map((t) => t.env_vars)).toEqual([{ SEED: 'lit:1' }, undefined, undefined, { SEED: 'lit:1' }]);
    expect(load(config, { overrides: ['~evaluation.tasks.gsm8k'] }).evaluation.tasks).toEqual([{ name: 'lm-evaluation-harness.ifeval' }]);
  });

  it('reports sugar for a task that is not in the config with the task names', () => {
    const err = loadError(withTasks('evalflow.gsm8k', 'evalflow.mmlu'), { overrides: ['evaluation.tasks.ifeval.endpoint_type=chat'] });
    expect(err.message).toBe("override 'evaluation.tasks.ifeval.endpoint_type=chat': no task named 'ifeval' in evaluation.tasks (tasks: evalflow.gsm8k, evalflow.mmlu)");
    expect(err.keyPath).toBe('evaluation.tasks');
  });

  it('rejects malformed overrides', () => {
    for (const bad of ['execution.mode', '=5', 'a..b=1', '+execution.x', 'execution mode=x']) {
      expect(loadError(base(), { overrides: [bad] }).message).toBe(`invalid override '${bad}': expected key=value, +key=value, ++key=value, ~key or ~key=value`);
    }
  });
});

describe('task filter (-t)', () => {
  const tasks = withTasks('evalflow.gsm8k', 'evalflow.mmlu', 'gsm8k', 'evalflow.gsm8k');

  it('selects every task of a name, full or bare, keeping their original indices', () => {
    const cfg = load(tasks, { taskFilter: ['gsm8k'] });
    expect(cfg.selected_tasks).toEqual([0, 2, 3]);
    expect(cfg.evaluation.tasks).toHaveLength(4);
    expect(planTasks(cfg).map((p) => [p.jobName, p.task.fullName])).toEqual([
      ['gsm8k.0', 'evalflow.gsm8k'],
      ['gsm8k.2', 'lm-evaluation-harness.gsm8k'],
      ['gsm8k.3', 'evalflow.gsm8k'],
    ]);
    expect(load(tasks, { taskFilter: ['evalflow.gsm8k', 'mmlu'] }).selected_tasks).toEqual([0, 1, 3]);
  });

  it('selects one task with name.<index>', () => {
    expect(load(tasks, { taskFilter: ['gsm8k.3'] }).selected_tasks).toEqual([3]);
    expect(load(tasks, { taskFilter: ['evalflow.gsm8k.0'] }).selected_tasks).toEqual([0]);
  });

  it('reports a filter that matches nothing, listing the tasks', () => {
    const err = loadError(tasks, { taskFilter: ['ifeval'] });
    expect(err.message).toBe(
      "task filter 'ifeval' matches no task in evaluation.tasks (tasks: gsm8k.0 (evalflow.gsm8k), mmlu.1 (evalflow.mmlu), gsm8k.2 (gsm8k), gsm8k.3 (evalflow.gsm8k))",
    );
    expect(loadError(tasks, { taskFilter: ['mmlu.0'] }).message).toContain("task filter 'mmlu.0' matches no task");
  });
});

describe('raw mode', () => {
  const raw = (): TestConfig => ({ ...base(), execution: { type: 'local', output_dir: '/tmp/out' }, deployment: { type: 'none' } });

  it('uses the file as written: no defaults list, no interpolation', () => {
    const cfg = load({ ...raw(), evaluation: { ...raw().evaluation, pre_cmd: 'echo ${HOME}' } }, { configMode: 'raw' });
    expect(cfg.evaluation.pre_cmd).toBe('echo ${HOME}');
    expect(localExecution(cfg).mode).toBe('sequential');
  });

  it('refuses overrides and needs every section', () => {
    expect(loadError(raw(), { configMode: 'raw', overrides: ['execution.mode=parallel'] }).message).toBe(
      'overrides (-o) cannot be combined with --config-mode raw: a raw config is used as written',
    );
    const { deployment: _d, ...noDeployment } = raw();
    expect(loadError(noDeployment, { configMode: 'raw' }).message).toBe('deployment: required object is missing');
  });

  it('round-trips a resolved config, -t selection included', () => {
    const cfg = load(withTasks('evalflow.gsm8k', 'evalflow.mmlu'), { taskFilter: ['mmlu'], overrides: ['execution.mode=parallel'] });
    const again = load(stringify(cfg), { configMode: 'raw' });
    expect(again).toEqual(cfg);
    expect(planTasks(again).map((p) => p.jobName)).toEqual(['mmlu.1']);
  });
});

describe('paths', () => {
  it('makes relative output, dataset and ./mount paths absolute against cwd', () => {
    const config = base();
    config.execution.output_dir = 'results';
    config.execution.mounts = { evaluation: { './hf_cache': '/root/.cache/huggingface', '/abs': '/in', named_volume: '/v' } };
    config.evaluation.tasks = [{ name: 'evalflow.gsm8k', dataset_dir: '../data' }, { name: 'evalflow.mmlu', dataset_dir: '/datasets/mmlu' }];
    const cfg = load(config, { cwd: '/work/run' });
    expect(cfg.execution.output_dir).toBe('/work/run/results');
    expect(cfg.execution.mounts?.evaluation).toEqual({ '/work/run/hf_cache': '/root/.cache/huggingface', '/abs': '/in', named_volume: '/v' });
    expect(cfg.evaluation.tasks.map((t) => t.dataset_dir)).toEqual(['/work/data', '/datasets/mmlu']);
    expect(planTasks(cfg)[0]).toMatchObject({ datasetDir: '/work/data', datasetMountPath: '/datasets' });
  });

  it('reads a relative config path against cwd', () => {
    const file = writeConfig(base());
    const cfg = loadRunConfig({ configPath: file.slice(dir.length + 1), cwd: dir, env: {} });
    expect(cfg.target.api_endpoint.model_id).toBe('tiny');
  });
});

describe('per-task nemo_evaluator_config', () => {
  it('deep-merges the task over the global config (task wins, lists replaced)', () => {
    const config = base();
    config.evaluation.nemo_evaluator_config = {
      config: { params: { parallelism: 4, limit_samples: 10, extra: { num_fewshot: 5, judge: { url: 'http://j', model_id: 'a' } } } },
      target: { api_endpoint: { adapter_config: { use_caching: true, interceptors: ['a', 'b'] } } },
    };
    config.evaluation.tasks = [
      { name: 'evalflow.gsm8k', nemo_evaluator_config: { config: { type: 'gsm8k_cot', params: { parallelism: 8, extra: { judge: { model_id: 'b' } } } }, target: { api_endpoint: { stream: true, adapter_config: { interceptors: ['c'] } } } } },
      { name: 'evalflow.mmlu' },
    ];
    const cfg = load(config);
    expect(taskEvaluatorConfig(cfg, 0)).toEqual({
      merged: {
        config: { type: 'gsm8k_cot', params: { parallelism: 8, limit_samples: 10, extra: { num_fewshot: 5, judge: { url: 'http://j', model_id: 'b' } } } },
        target: { api_endpoint: { stream: true, adapter_config: { use_caching: true, interceptors: ['c'] } } },
      },
      params: { parallelism: 8, limit_samples: 10, extra: { num_fewshot: 5, judge: { url: 'http://j', model_id: 'b' } } },
      unknownKeys: [],
    });
    expect(taskEvaluatorConfig(cfg, 1)).toEqual({
      merged: {
        config: { params: { parallelism: 4, limit_samples: 10, extra: { num_fewshot: 5, judge: { url: 'http://j', model_id: 'a' } } } },
        target: { api_endpoint: { adapter_config: { use_caching: true, interceptors: ['a', 'b'] } } },
      },
      params: { parallelism: 4, limit_samples: 10, extra: { num_fewshot: 5, judge: { url: 'http://j', model_id: 'a' } } },
      unknownKeys: [],
    });
    expect(taskEvaluatorConfig(load(base()), 0)).toEqual({ merged: {}, params: {}, unknownKeys: [] });
  });
});

describe('env', () => {
  it('layers top-level, evaluation and task env_vars (task wins) and passes the API key variable from the host', () => {
    const config = base();
    config.env_vars = { A: 'lit:top', B: 'lit:top', C: 'host:TOP_C' };
    config.evaluation.env_vars = { B: 'runtime:EVAL_B', D: 'lit:eval' };
    config.evaluation.tasks = [{ name: 'evalflow.gsm8k', env_vars: { D: 'host:TASK_D', MY_KEY: 'host:OTHER_KEY' } }, { name: 'evalflow.mmlu' }];
    const cfg = load(config);
    expect(resolveTaskEnv(cfg, 0)).toEqual({
      A: { kind: 'lit', value: 'top' },
      B: { kind: 'runtime', name: 'EVAL_B' },
      C: { kind: 'host', name: 'TOP_C' },
      D: { kind: 'host', name: 'TASK_D' },
      MY_KEY: { kind: 'host', name: 'OTHER_KEY' },
    });
    expect(resolveTaskEnv(cfg, 1).D).toEqual({ kind: 'lit', value: 'eval' });
    expect(resolveTaskEnv(cfg, 1).MY_KEY).toEqual({ kind: 'host', name: 'MY_KEY' });
  });

  it('parses the three prefixes and rejects anything else with the key path', () => {
    expect(parseEnvRef('lit:a:b', 'k')).toEqual({ kind: 'lit', value: 'a:b' });
    expect(parseEnvRef('lit:', 'k')).toEqual({ kind: 'lit', value: '' });
    expect(parseEnvRef('host:HF_TOKEN', 'k')).toEqual({ kind: 'host', name: 'HF_TOKEN' });
    expect(parseEnvRef('runtime:SLURM_JOB_ID', 'k')).toEqual({ kind: 'runtime', name: 'SLURM_JOB_ID' });
    expect(() => parseEnvRef('HF_TOKEN', 'env_vars.HF')).toThrow("env_vars.HF: expected 'host:VAR', 'lit:value' or 'runtime:VAR' (to pass the host variable HF_TOKEN, write 'host:HF_TOKEN')");
    expect(() => parseEnvRef('hf_secretvalue-123', 'env_vars.HF')).toThrow("env_vars.HF: expected 'host:VAR', 'lit:value' or 'runtime:VAR'");
    expect(() => parseEnvRef('host:not a name', 'x')).toThrow("x: 'host:' must be followed by an environment variable name");
    expect(() => parseEnvRef(5, 'x')).toThrow("x: expected a string 'host:VAR', 'lit:value' or 'runtime:VAR', got number");
  });

  it('redacts literal values for display and shows variable names', () => {
    expect(redactEnvRef({ kind: 'host', name: 'HF_TOKEN' })).toBe('host:HF_TOKEN');
    expect(redactEnvRef({ kind: 'runtime', name: 'X' })).toBe('runtime:X');
    expect(redactEnvRef({ kind: 'lit', value: 'sk-1234567890abcd' })).toBe('lit:***abcd');
    expect(redactEnvRef({ kind: 'lit', value: '12345678' })).toBe('lit:***');
    expect(redactEnvRef({ kind: 'lit', value: '' })).toBe('lit:***');
  });
});

describe('task registry', () => {
  it('lists the built-in tasks and all 421 upstream tasks', () => {
    const tasks = listTasks();
    const builtin = tasks.filter((t) => t.builtin).map((t) => t.fullName);
    expect(builtin).toEqual(expect.arrayContaining(['evalflow.gsm8k', 'evalflow.mmlu', 'evalflow.custom']));
    expect(tasks.filter((t) => !t.builtin)).toHaveLength(421);
    expect(new Set(tasks.map((t) => t.fullName)).size).toBe(tasks.length);
  });

  it('resolves harness.task exactly', () => {
    const task = resolveTaskName('lm-evaluation-harness.mmlu');
    expect(task).toMatchObject({ name: 'mmlu', harness: 'lm-evaluation-harness', builtin: false, supportedEndpointTypes: ['completions'] });
    expect(task.container).toBe('nvcr.io/nvidia/eval-factory/lm-evaluation-harness:26.03');
    expect(task.defaultParams).toMatchObject({ task: 'mmlu_str', parallelism: 10 });
    expect(resolveTaskName('simple_evals.mmlu').supportedEndpointTypes).toEqual(['chat']);
  });

  it('resolves a bare name to the unique upstream task, else to the built-in one', () => {
    expect(resolveTaskName('gsm8k').fullName).toBe('lm-evaluation-harness.gsm8k');
    expect(resolveTaskName('custom')).toMatchObject({ fullName: 'evalflow.custom', builtin: true });
    expect(resolveTaskName('custom').container).toBeUndefined();
  });

  it('resolves evalflow.<task> to the built-in task', () => {
    const task = resolveTaskName('evalflow.gsm8k');
    expect(task).toMatchObject({ name: 'gsm8k', harness: 'evalflow', builtin: true });
    expect(task.supportedEndpointTypes.length).toBeGreaterThan(0);
  });

  it('rejects an ambiguous bare name, listing the choices', () => {
    expect(() => resolveTaskName('mmlu')).toThrow("task name 'mmlu' is ambiguous; use one of: lm-evaluation-harness.mmlu, simple_evals.mmlu, evalflow.mmlu");
  });

  it('suggests close names for an unknown task and lists harnesses for an unknown harness', () => {
    expect(() => resolveTaskName('gsm8kk')).toThrow(/^unknown task 'gsm8kk'; did you mean: .*lm-evaluation-harness\.gsm8k.*\?/);
    expect(() => resolveTaskName('evalflow.gsm9k')).toThrow(/^unknown task 'evalflow\.gsm9k'; did you mean: evalflow\.gsm8k/);
    expect(() => resolveTaskName('nope.gsm8k')).toThrow(/^unknown harness 'nope' in task 'nope\.gsm8k' \(harnesses: evalflow, lm-evaluation-harness, /);
  });
});

describe('planTasks', () => {
  it('picks the endpoint type: task endpoint_type, else target type, else the first the task supports', () => {
    const config = withTasks('lm-evaluation-harness.gsm8k', 'simple_evals.mmlu');
    const [gsm8k, mmlu] = planTasks(load(config));
    expect([gsm8k?.endpointType, mmlu?.endpointType]).toEqual(['completions', 'chat']);
    const err = loadAndPlanError({ ...config, target: { api_endpoint: { url: ENDPOINT, model_id: 'm', type: 'chat' } } });
    expect(err.message).toBe("target.api_endpoint.type: task lm-evaluation-harness.gsm8k does not support endpoint type 'chat' (supported: completions)");
  });

  it('runs only built-in tasks with runtime process', () => {
    const cfg = load(withTasks('evalflow.gsm8k', 'evalflow.mmlu'), { overrides: ['execution.runtime=process'] });
    expect(planTasks(cfg).map((p) => [p.jobName, p.container])).toEqual([
      ['gsm8k.0', undefined],
      ['mmlu.1', undefined],
    ]);
  });

  it('uses the task container over the harness image', () => {
    const config = base();
    config.evaluation.tasks = [{ name: 'simple_evals.mmlu', container: 'registry.local/simple-evals:dev' }];
    expect(planTasks(load(config))[0]?.container).toBe('registry.local/simple-evals:dev');
  });
});

function loadAndPlanError(config: object): ConfigError {
  try {
    planTasks(load(config));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('bundled data', () => {
  it('names its upstream source in the catalogue', () => {
    const catalogue = JSON.parse(readFileSync(new URL('../../config/catalogue.json', import.meta.url), 'utf8')) as { _source: string };
    expect(catalogue._source).toContain('NVIDIA-NeMo/Evaluator@eb3ddf2acc7f2e1fa03aeba168afea636562779c');
  });

  it('ships defaults that parse', () => {
    const local = parse(readFileSync(new URL('../../config/defaults/execution/local.yaml', import.meta.url), 'utf8')) as Record<string, unknown>;
    expect(local).toMatchObject({ type: 'local', output_dir: '???', runtime: 'docker' });
  });
});
