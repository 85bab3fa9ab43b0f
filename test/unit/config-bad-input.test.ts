/**
 * Bad input fails fast (DESIGN §3.6): every case is a ConfigError with exit code 2 whose message starts
 * at the offending key path (or file:line:col for YAML syntax), before anything is started.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError } from '../../config/errors.js';
import { loadRunConfig, type LoadOptions } from '../../config/load.js';
import { planTasks } from '../../config/plan.js';
import { main } from '../../client/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'evalflow-bad-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const GOOD = {
  execution: { output_dir: '/tmp/out' },
  target: { api_endpoint: { url: 'http://127.0.0.1:8000/v1/chat/completions', model_id: 'tiny' } },
  evaluation: { tasks: [{ name: 'evalflow.gsm8k' }, { name: 'evalflow.mmlu' }] },
};

/** GOOD with some keys replaced: `{ 'execution.mode': 'fast' }`; undefined deletes. */
function good(changes: Record<string, unknown> = {}): Record<string, unknown> {
  const config = structuredClone(GOOD) as Record<string, unknown>;
  for (const [path, value] of Object.entries(changes)) {
    const keys = path.split('.');
    const last = keys.pop() ?? '';
    let node = config as Record<string, unknown>;
    for (const key of keys) node = (node[key] ??= {}) as Record<string, unknown>;
    if (value === undefined) delete node[last];
    else node[last] = value;
  }
  return config;
}

const params = (p: Record<string, unknown>) => ({ config: { params: p } });

interface Case {
  name: string;
  config: Record<string, unknown> | string;
  overrides?: string[];
  filter?: string[];
  mode?: LoadOptions['configMode'];
  /** The error message starts with this (key path first), or matches this pattern. */
  message: string | RegExp;
  keyPath?: string;
}

const CASES: Case[] = [
  { name: 'unknown top-level key', config: good({ executor: 'local' }), message: "executor: unknown key; did you mean 'execution'?", keyPath: 'executor' },
  { name: 'unknown key in evaluation (legacy v0.1 overrides)', config: good({ 'evaluation.overrides': {} }), message: 'evaluation.overrides: unknown key (expected one of: nemo_evaluator_config, env_vars, pre_cmd, post_cmd, tasks)' },
  { name: 'unknown key in a task', config: good({ 'evaluation.tasks': [{ name: 'evalflow.gsm8k', params: {} }] }), message: 'evaluation.tasks[0].params: unknown key', keyPath: 'evaluation.tasks[0].params' },
  {
    name: 'unknown key inside params',
    config: good({ 'evaluation.nemo_evaluator_config': params({ paralelism: 4 }) }),
    message: "evaluation.nemo_evaluator_config.config.params.paralelism: unknown key; did you mean 'parallelism'?",
  },
  {
    name: 'wrong type of a param',
    config: good({ 'evaluation.tasks': [{ name: 'evalflow.gsm8k' }, { name: 'evalflow.mmlu', nemo_evaluator_config: params({ parallelism: 'x' }) }] }),
    message: 'evaluation.tasks[1].nemo_evaluator_config.config.params.parallelism: expected integer, got "x"',
    keyPath: 'evaluation.tasks[1].nemo_evaluator_config.config.params.parallelism',
  },
  { name: 'parallelism 0', config: good({ 'evaluation.nemo_evaluator_config': params({ parallelism: 0 }) }), message: 'evaluation.nemo_evaluator_config.config.params.parallelism: expected integer >= 1, got 0' },
  { name: 'limit_samples negative', config: good({ 'evaluation.nemo_evaluator_config': params({ limit_samples: -1 }) }), message: 'evaluation.nemo_evaluator_config.config.params.limit_samples: expected number > 0, got -1' },
  { name: 'temperature negative', config: good({ 'evaluation.nemo_evaluator_config': params({ temperature: -0.5 }) }), message: 'evaluation.nemo_evaluator_config.config.params.temperature: expected number >= 0, got -0.5' },
  { name: 'temperature above the API range', config: good({ 'evaluation.nemo_evaluator_config': params({ temperature: 2.5 }) }), message: 'evaluation.nemo_evaluator_config.config.params.temperature: expected number <= 2, got 2.5' },
  { name: 'top_p 0', config: good({ 'evaluation.nemo_evaluator_config': params({ top_p: 0 }) }), message: 'evaluation.nemo_evaluator_config.config.params.top_p: expected number > 0, got 0' },
  {
    name: 'top_p above 1 in a task',
    config: good({ 'evaluation.tasks': [{ name: 'evalflow.gsm8k' }, { name: 'evalflow.mmlu', nemo_evaluator_config: params({ top_p: 1.5 }) }] }),
    message: 'evaluation.tasks[1].nemo_evaluator_config.config.params.top_p: expected number <= 1, got 1.5',
    keyPath: 'evaluation.tasks[1].nemo_evaluator_config.config.params.top_p',
  },
  { name: 'max_new_tokens 0', config: good({ 'evaluation.nemo_evaluator_config': params({ max_new_tokens: 0 }) }), message: 'evaluation.nemo_evaluator_config.config.params.max_new_tokens: expected integer > 0, got 0' },
  { name: 'max_new_tokens not an integer', config: good({ 'evaluation.nemo_evaluator_config': params({ max_new_tokens: 12.5 }) }), message: 'evaluation.nemo_evaluator_config.config.params.max_new_tokens: expected integer, got 12.5' },
  { name: 'parallelism not an integer', config: good({ 'evaluation.nemo_evaluator_config': params({ parallelism: 1.5 }) }), message: 'evaluation.nemo_evaluator_config.config.params.parallelism: expected integer, got 1.5' },
  { name: 'max_retries negative', config: good({ 'evaluation.nemo_evaluator_config': params({ max_retries: -1 }) }), message: 'evaluation.nemo_evaluator_config.config.params.max_retries: expected integer >= 0, got -1' },
  { name: 'max_retries not an integer', config: good({ 'evaluation.nemo_evaluator_config': params({ max_retries: 2.5 }) }), message: 'evaluation.nemo_evaluator_config.config.params.max_retries: expected integer, got 2.5' },
  { name: 'limit_samples 0', config: good({ 'evaluation.nemo_evaluator_config': params({ limit_samples: 0 }) }), message: 'evaluation.nemo_evaluator_config.config.params.limit_samples: expected number > 0, got 0' },
  {
    name: 'limit_samples neither a count nor a fraction',
    config: good({ 'evaluation.nemo_evaluator_config': params({ limit_samples: 2.5 }) }),
    message: 'evaluation.nemo_evaluator_config.config.params.limit_samples: expected a whole number of samples or a fraction below 1, got 2.5',
  },
  { name: 'config.extra instead of config.params.extra', config: good({ 'evaluation.nemo_evaluator_config': { config: { extra: {} } } }), message: 'evaluation.nemo_evaluator_config.config.extra: unknown key (the built-in harness takes config.params and config.type; task knobs go in config.params.extra)' },
  { name: 'bad URL', config: good({ 'target.api_endpoint.url': 'localhost:8000/v1' }), message: 'target.api_endpoint.url: expected an http(s) URL, got "localhost:8000/v1"', keyPath: 'target.api_endpoint.url' },
  { name: 'bad api_key_name (never echoed: it may be the key itself)', config: good({ 'target.api_endpoint.api_key_name': 'nvapi-secret' }), message: 'target.api_endpoint.api_key_name: must be an environment variable name, got a string' },
  { name: 'endpoint type evalflow does not have', config: good({ 'target.api_endpoint.type': 'embedding' }), message: 'target.api_endpoint.type: expected "chat" or "completions", got "embedding"' },
  { name: 'bad env value prefix', config: good({ env_vars: { HF_TOKEN: 'env:HF_TOKEN' } }), message: "env_vars.HF_TOKEN: expected 'host:VAR', 'lit:value' or 'runtime:VAR'", keyPath: 'env_vars.HF_TOKEN' },
  { name: 'bare variable name as env value (legacy form)', config: good({ 'evaluation.env_vars': { HF_TOKEN: 'HF_TOKEN' } }), message: "evaluation.env_vars.HF_TOKEN: expected 'host:VAR', 'lit:value' or 'runtime:VAR' (to pass the host variable HF_TOKEN, write 'host:HF_TOKEN')" },
  { name: '${oc.env} in env_vars', config: good({ 'evaluation.env_vars': { HF_TOKEN: '${oc.env:HF_TOKEN}' } }), message: 'evaluation.env_vars.HF_TOKEN: ${oc.env:...} is not allowed in env_vars', keyPath: 'evaluation.env_vars.HF_TOKEN' },
  { name: 'bad env var name', config: good({ env_vars: { 'MY-VAR': 'lit:1' } }), message: 'env_vars.MY-VAR: invalid key: must be an environment variable name' },
  { name: 'missing ??? value', config: good({ 'target.api_endpoint.model_id': undefined }), message: 'target.api_endpoint.model_id: missing required value (???); set it in the config or with -o target.api_endpoint.model_id=...', keyPath: 'target.api_endpoint.model_id' },
  { name: 'bad override syntax', config: good(), overrides: ['execution.mode'], message: "invalid override 'execution.mode': expected key=value", keyPath: 'overrides' },
  { name: '= on a missing key', config: good(), overrides: ['execution.modes=parallel'], message: "override 'execution.modes=parallel': key 'execution.modes' does not exist; use '+execution.modes=parallel'", keyPath: 'execution.modes' },
  { name: '+ on an existing key', config: good(), overrides: ['+execution.mode=parallel'], message: "override '+execution.mode=parallel': 'execution.mode' already exists", keyPath: 'execution.mode' },
  { name: 'override into a scalar', config: good(), overrides: ['++execution.mode.x=1'], message: "override '++execution.mode.x=1': 'execution.mode' is not a mapping or list" },
  { name: 'list index out of range', config: good(), overrides: ['evaluation.tasks.2.name=x'], message: "override 'evaluation.tasks.2.name=x': 'evaluation.tasks[2]' is not an item of the list (length 2)" },
  { name: 'sugar with an unknown task', config: good(), overrides: ['evaluation.tasks.ifeval.endpoint_type=chat'], message: "override 'evaluation.tasks.ifeval.endpoint_type=chat': no task named 'ifeval' in evaluation.tasks (tasks: evalflow.gsm8k, evalflow.mmlu)" },
  { name: 'overrides in raw mode', config: good({ 'execution.type': 'local', deployment: { type: 'none' } }), mode: 'raw', overrides: ['execution.mode=parallel'], message: 'overrides (-o) cannot be combined with --config-mode raw' },
  { name: '-t with an unknown task', config: good(), filter: ['ifeval'], message: "task filter 'ifeval' matches no task in evaluation.tasks (tasks: gsm8k.0 (evalflow.gsm8k), mmlu.1 (evalflow.mmlu))", keyPath: 'evaluation.tasks' },
  { name: '-t with an index of another task', config: good(), filter: ['gsm8k.1'], message: "task filter 'gsm8k.1' matches no task" },
  { name: 'ambiguous bare task name', config: good({ 'evaluation.tasks': [{ name: 'gsm8k' }, { name: 'mmlu' }] }), message: "evaluation.tasks[1].name: task name 'mmlu' is ambiguous; use one of: lm-evaluation-harness.mmlu, simple_evals.mmlu, evalflow.mmlu", keyPath: 'evaluation.tasks[1].name' },
  { name: 'unknown task', config: good({ 'evaluation.tasks': [{ name: 'evalflow.gsm8kk' }] }), message: "evaluation.tasks[0].name: unknown task 'evalflow.gsm8kk'; did you mean: evalflow.gsm8k", keyPath: 'evaluation.tasks[0].name' },
  { name: 'unknown harness', config: good({ 'evaluation.tasks': [{ name: 'lm-eval.gsm8k' }] }), message: "evaluation.tasks[0].name: unknown harness 'lm-eval' in task 'lm-eval.gsm8k'" },
  { name: 'task name with shell characters', config: good({ 'evaluation.tasks': [{ name: 'gsm8k;rm -rf ~' }] }), message: 'evaluation.tasks[0].name: must be a task name like harness.task, got "gsm8k;rm -rf ~"' },
  {
    name: 'endpoint_type the task does not support',
    config: good({ 'evaluation.tasks': [{ name: 'evalflow.gsm8k' }, { name: 'lm-evaluation-harness.gsm8k', endpoint_type: 'chat' }] }),
    message: "evaluation.tasks[1].endpoint_type: task lm-evaluation-harness.gsm8k does not support endpoint type 'chat' (supported: completions)",
    keyPath: 'evaluation.tasks[1].endpoint_type',
  },
  {
    name: 'runtime process with a container task',
    config: good({ 'execution.runtime': 'process', 'evaluation.tasks': [{ name: 'evalflow.gsm8k' }, { name: 'simple_evals.mmlu' }] }),
    message: 'evaluation.tasks[1].name: task simple_evals.mmlu runs in container nvcr.io/nvidia/eval-factory/simple-evals:26.03 and needs execution.runtime=docker',
    keyPath: 'evaluation.tasks[1].name',
  },
  { name: 'empty task list', config: good({ 'evaluation.tasks': [] }), message: 'evaluation.tasks: needs at least one task', keyPath: 'evaluation.tasks' },
  { name: 'YAML syntax error', config: 'execution:\n  output_dir: /tmp/out\n mode: parallel\n', message: /config-\d+\.yaml:3:1: YAML syntax error: All mapping items must start at the same column$/ },
  { name: 'duplicate YAML key', config: 'execution:\n  output_dir: /a\n  output_dir: /b\n', message: /config-\d+\.yaml:3:3: YAML syntax error: Map keys must be unique/ },
  {
    name: 'YAML alias expansion (billion laughs)',
    config: ['a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]', ...Array.from({ length: 8 }, (_, i) => `a${i + 1}: &a${i + 1} [${Array(9).fill(`*a${i}`).join(', ')}]`)].join('\n'),
    message: /config-\d+\.yaml: YAML aliases expand to more than 1000 copies/,
  },
  { name: 'YAML nested beyond the parser', config: `x: ${'['.repeat(5000)}${']'.repeat(5000)}\n`, message: /config-\d+\.yaml:1:\d+: YAML nested too deeply for the parser/ },
  { name: 'YAML nested beyond 64 levels', config: `x: ${'{a: '.repeat(100)}1${'}'.repeat(100)}\n`, message: /config-\d+\.yaml: nests deeper than 64 levels \(or refers to itself through an alias\) at x\.a\.a/ },
  { name: 'YAML alias that contains itself', config: 'a: &a [*a]\n', message: /config-\d+\.yaml: nests deeper than 64 levels .* at a\[0\]\[0\]/ },
  { name: 'YAML file too large for a config', config: `x: "${'a'.repeat(2 * 1024 * 1024)}"\n`, message: /config-\d+\.yaml: 2097158 bytes is larger than a config can be \(1048576 bytes\)$/ },
  { name: 'non-mapping root', config: '- execution\n- target\n', message: /config-\d+\.yaml: expected a mapping of config keys at the top level, got a list$/ },
  { name: 'empty file', config: '# nothing here\n', message: /config-\d+\.yaml: expected a mapping of config keys at the top level, got an empty document$/ },
  { name: 'interpolation to a missing key', config: good({ 'execution.output_dir': '/runs/${target.model}' }), message: "execution.output_dir: interpolation '${target.model}' refers to missing key 'target.model'", keyPath: 'execution.output_dir' },
  { name: 'interpolation cycle', config: good({ 'evaluation.pre_cmd': '${evaluation.post_cmd}', 'evaluation.post_cmd': '${evaluation.pre_cmd}' }), message: 'evaluation.pre_cmd: interpolation cycle: evaluation.pre_cmd -> evaluation.post_cmd -> evaluation.pre_cmd' },
  { name: 'unset env var without default', config: good({ 'target.api_endpoint.model_id': '${oc.env:EVALFLOW_TEST_UNSET}' }), message: "target.api_endpoint.model_id: environment variable 'EVALFLOW_TEST_UNSET' is not set" },
  { name: 'unknown resolver', config: good({ 'execution.output_dir': '${oc.select:a,b}' }), message: "execution.output_dir: unknown resolver 'oc.select' (evalflow supports oc.env, select_not_null)" },
  { name: 'unsupported execution group', config: { defaults: [{ execution: 'lepton/default' }, { deployment: 'none' }, '_self_'], ...good() }, message: "defaults: execution group 'lepton/default' is not supported yet", keyPath: 'defaults' },
  { name: 'unsupported deployment group', config: { defaults: [{ execution: 'local' }, { deployment: 'vllm_ray' }, '_self_'], ...good() }, message: "defaults: deployment group 'vllm_ray' is not supported yet", keyPath: 'defaults' },
  {
    name: 'deployment without its required keys',
    config: { defaults: [{ execution: 'local' }, { deployment: 'vllm' }, '_self_'], ...good() },
    message: 'invalid config:\n  deployment.checkpoint_path: missing required value (???); set it in the config or with -o deployment.checkpoint_path=...\n  deployment.served_model_name: missing required value (???); set it in the config or with -o deployment.served_model_name=...',
    keyPath: 'deployment.checkpoint_path',
  },
  { name: 'unknown group option', config: { defaults: [{ execution: 'k8s' }], ...good() }, message: "defaults: unknown execution group 'k8s' (evalflow supports: local, slurm/default)" },
  { name: 'group selected twice', config: { defaults: [{ execution: 'local' }, 'execution/local'], ...good() }, message: "defaults: 'execution' is selected twice", keyPath: 'defaults' },
  { name: 'defaults not a list', config: { defaults: { execution: 'local' }, ...good() }, message: 'defaults: expected a list' },
  { name: 'execution type set inline', config: good({ 'execution.type': 'lepton' }), message: "execution.type: execution 'lepton' is not supported yet", keyPath: 'execution.type' },
  { name: 'deployment set inline', config: good({ deployment: { type: 'vllm', image: 'x' } }), message: /^(error: )?invalid config:\n {2}deployment\.served_model_name: required string is missing\n/, keyPath: 'deployment.served_model_name' },
  { name: 'non-empty auxiliary_deployments', config: good({ auxiliary_deployments: { judge: { type: 'vllm' } } }), message: 'auxiliary_deployments: auxiliary deployments are not supported yet (found: judge)', keyPath: 'auxiliary_deployments' },
  { name: 'negative readiness timeout', config: good({ 'execution.endpoint_readiness_timeout': -5 }), message: 'execution.endpoint_readiness_timeout: expected number > 0, got -5', keyPath: 'execution.endpoint_readiness_timeout' },
  { name: 'invalid mode', config: good({ 'execution.mode': 'fast' }), message: 'execution.mode: expected "sequential" or "parallel", got "fast"', keyPath: 'execution.mode' },
  { name: 'invalid runtime', config: good(), overrides: ['execution.runtime=podman'], message: 'execution.runtime: expected "docker" or "process", got "podman"' },
  { name: 'heartbeat timeout below 10 s', config: good({ 'execution.heartbeat_timeout': 5 }), message: 'execution.heartbeat_timeout: expected number >= 10, got 5' },
  { name: 'max_attempts 0', config: good({ 'execution.max_attempts': 0 }), message: 'execution.max_attempts: expected integer >= 1, got 0' },
  { name: 'unmappable extra_docker_args flag', config: good({ 'execution.extra_docker_args': '--shm-size 1g --name x' }), message: /^(error: )?execution\.extra_docker_args: unsupported docker flag --name; supported: /, keyPath: 'execution.extra_docker_args' },
  { name: 'bad extra_docker_args value', config: good({ 'execution.extra_docker_args': '--memory lots' }), message: 'execution.extra_docker_args: --memory: expected a size like 512m or 2g, got "lots"', keyPath: 'execution.extra_docker_args' },
  { name: 'unknown mount kind', config: good({ 'execution.mounts': { scratch: {} } }), message: 'execution.mounts.scratch: unknown key (expected one of: deployment, evaluation, auxiliary, mount_home)' },
  { name: 'unknown auto-export destination', config: good({ 'execution.auto_export': { destinations: ['s3'] } }), message: "execution.auto_export.destinations[0]: unknown export destination 's3'", keyPath: 'execution.auto_export.destinations[0]' },
  { name: 'local export format', config: good({ export: { local: { format: 'xml' } } }), message: 'export.local.format: expected "json" or "csv", got "xml"' },
  { name: 'several problems at once', config: good({ 'execution.mode': 'fast', 'execution.max_attempts': 0 }), message: 'invalid config:\n  execution.mode: expected "sequential" or "parallel", got "fast"\n  execution.max_attempts: expected integer >= 1, got 0', keyPath: 'execution.mode' },
];

let files = 0;
function writeCase(c: Case): string {
  const configPath = join(dir, `config-${files++}.yaml`);
  writeFileSync(configPath, typeof c.config === 'string' ? c.config : stringify(c.config));
  return configPath;
}

function run(c: Case): void {
  const configPath = writeCase(c);
  const cfg = loadRunConfig({ configPath, overrides: c.overrides, taskFilter: c.filter, configMode: c.mode, env: {}, cwd: dir });
  planTasks(cfg);
}

describe('bad config input', () => {
  it('has a broad table', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  it.each(CASES)('$name', (c) => {
    let error: unknown;
    try {
      run(c);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const err = error as ConfigError;
    expect(err.exitCode).toBe(2);
    if (typeof c.message === 'string') expect(err.message.startsWith(c.message), `got: ${err.message}`).toBe(true);
    else expect(err.message).toMatch(c.message);
    if ('keyPath' in c && c.keyPath !== undefined) expect(err.keyPath).toBe(c.keyPath);
    expect(err.message).not.toMatch(/\n\s+at /); // no stack trace in the message
  });

  // The same table through the real CLI (`evalflow run --dry-run`): exit code 2, `error: <message>` on stderr.
  it.each(CASES)('CLI: $name', async (c) => {
    const argv = ['run', '-c', writeCase(c), '--dry-run'];
    for (const o of c.overrides ?? []) argv.push('-o', o);
    for (const t of c.filter ?? []) argv.push('-t', t);
    if (c.mode) argv.push('--config-mode', c.mode);
    let stdout = '';
    let stderr = '';
    const code = await main(argv, { out: (t) => (stdout += t), err: (t) => (stderr += t), isTTY: false });
    expect(code, stderr).toBe(2);
    expect(stdout).toBe('');
    if (typeof c.message === 'string') expect(stderr.startsWith(`error: ${c.message}`), `got: ${stderr}`).toBe(true);
    else expect(stderr.trimEnd()).toMatch(c.message);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});

describe('every problem of a config at once', () => {
  // Unknown keys (top level included) next to missing required values, bad values, an unknown task, a bad
  // interpolation and a bad override: one run reports all of them, each under its key path.
  const config = {
    executor: 'local',
    execution: { output_dir: '/tmp/out', mode: 'fast', mounts: { scratch: {} } },
    target: { api_endpoint: { url: 'localhost:8000', model_id: '???' } },
    evaluation: {
      env_vars: { HF_TOKEN: 'HF_TOKEN' },
      nemo_evaluator_config: params({ temperature: -1, paralelism: 4 }),
      tasks: [{ name: 'evalflow.gsm8kk' }, { name: 'evalflow.mmlu', dataset_dir: '${execution.nowhere}', prams: {} }],
    },
  };
  const overrides = ['execution.modes=parallel'];
  const expected = [
    "override 'execution.modes=parallel': key 'execution.modes' does not exist",
    'target.api_endpoint.model_id: missing required value (???)',
    "evaluation.tasks[1].dataset_dir: interpolation '${execution.nowhere}' refers to missing key 'execution.nowhere'",
    "executor: unknown key; did you mean 'execution'?",
    'execution.mode: expected "sequential" or "parallel", got "fast"',
    'execution.mounts.scratch: unknown key',
    'target.api_endpoint.url: expected an http(s) URL, got "localhost:8000"',
    "evaluation.env_vars.HF_TOKEN: expected 'host:VAR', 'lit:value' or 'runtime:VAR'",
    'evaluation.nemo_evaluator_config.config.params.temperature: expected number >= 0, got -1',
    "evaluation.nemo_evaluator_config.config.params.paralelism: unknown key; did you mean 'parallelism'?",
    "evaluation.tasks[0].name: unknown task 'evalflow.gsm8kk'",
    'evaluation.tasks[1].prams: unknown key (expected one of: name, container,',
  ];

  it('lists every problem, one line each, starting with its key path', () => {
    const configPath = writeCase({ name: 'all problems', config, message: '' });
    let error: unknown;
    try {
      loadRunConfig({ configPath, overrides, env: {}, cwd: dir });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const err = error as ConfigError;
    const lines = err.message.split('\n');
    expect(lines[0]).toBe('invalid config:');
    expect(lines.slice(1)).toHaveLength(expected.length);
    for (const text of expected) expect(lines.filter((l) => l.startsWith(`  ${text}`)), text).toHaveLength(1);
    expect(err.problems.map((p) => p.keyPath)).toContain('executor');
    expect(err.problems.map((p) => p.keyPath)).toContain('target.api_endpoint.model_id');
  });

  it('through the CLI: exit 2, every key path on stderr, nothing on stdout', async () => {
    let stdout = '';
    let stderr = '';
    const argv = ['run', '-c', writeCase({ name: 'all problems', config, message: '' }), '--dry-run', ...overrides.flatMap((o) => ['-o', o])];
    const code = await main(argv, { out: (t) => (stdout += t), err: (t) => (stderr += t), isTTY: false });
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.startsWith('error: invalid config:\n')).toBe(true);
    for (const text of expected) expect(stderr).toContain(`  ${text}`);
  });

  it('reports the planning problems of every task together', () => {
    const configPath = writeCase({
      name: 'plan problems',
      config: good({
        'execution.runtime': 'process',
        'evaluation.tasks': [
          { name: 'simple_evals.mmlu' },
          { name: 'evalflow.gsm8k', nemo_evaluator_config: { config: { extra: {} } } },
          { name: 'lm-evaluation-harness.gsm8k', endpoint_type: 'chat' },
        ],
      }),
      message: '',
    });
    const cfg = loadRunConfig({ configPath, env: {}, cwd: dir });
    let error: unknown;
    try {
      planTasks(cfg);
    } catch (err) {
      error = err;
    }
    expect((error as ConfigError).problems.map((p) => p.keyPath)).toEqual([
      'evaluation.tasks[0].name',
      'evaluation.tasks[1].nemo_evaluator_config.config.extra',
      'evaluation.tasks[2].name',
      'evaluation.tasks[2].endpoint_type',
    ]);
  });
});
