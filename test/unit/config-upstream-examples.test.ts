/**
 * Every upstream example config (reference/upstream/examples, recursively): the ones for local execution
 * without a deployment load and plan; the others fail with "not supported yet" naming their group. Two
 * upstream examples put keys inside nemo_evaluator_config that nemo-evaluator does not know: like upstream's
 * launcher they load (the section goes to the container as it is), but with a warning naming the key. Two
 * others put `config:`/`target:` directly on a task, which upstream's strict task model rejects: those fail
 * here too, with the exact key path and a hint.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError } from '../../config/errors.js';
import { loadRunConfig, taskEvaluatorConfig } from '../../config/load.js';
import { planTasks } from '../../config/plan.js';
import { main } from '../../client/cli.js';
import { planExecution } from '../../backends/plans.js';
import { SlurmSpecSchema } from '../../backends/slurm/spec.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EXAMPLES_DIR = join(REPO_ROOT, '..', 'shared', 'reference', 'upstream', 'examples');
const CWD = '/tmp/evalflow-examples';
const ENV = { USER: 'tester', HOME: '/home/tester' };

/** Data files shipped next to the examples (inputs of a task), not launcher configs. */
const DATA_FILES = ['data/compliance/Tolkien_Policy.yaml'];

/** Upstream examples with keys nemo-evaluator ignores: they load, and planning warns about each key. */
const UPSTREAM_WARNINGS: Record<string, string[]> = {
  'local_extra_params.yaml': ['evaluation.tasks[0].nemo_evaluator_config.config.extra: not a nemo-evaluator key'],
  'local_safety.yaml': ['evaluation.tasks[2].nemo_evaluator_config.env_vars: not a nemo-evaluator key'],
};

/** Upstream examples with a mistake that upstream rejects as well; evalflow says where and what was meant. */
const UPSTREAM_MISTAKES: Record<string, { keyPath: string; hint: string }> = {
  'nemotron/nemotron-3-super/local_nemotron-3-super-120b-a12b.yaml': {
    keyPath: 'evaluation.tasks[7].config',
    hint: "did you mean 'evaluation.tasks[7].nemo_evaluator_config.config'?",
  },
  'nemotron/nemotron-3-super/local_nemotron-3-super-120b-a12b_low_budget.yaml': {
    keyPath: 'evaluation.tasks[1].config',
    hint: "did you mean 'evaluation.tasks[1].nemo_evaluator_config.config'?",
  },
};

const yamlFiles = existsSync(EXAMPLES_DIR)
  ? readdirSync(EXAMPLES_DIR, { recursive: true, encoding: 'utf8' })
      .filter((f) => /\.ya?ml$/.test(f))
      .map((f) => f.split('\\').join('/'))
      .sort()
  : [];
const configs = yamlFiles.filter((f) => !DATA_FILES.includes(f));

const parsed = new Map<string, Record<string, unknown>>();
function rawConfig(file: string): Record<string, unknown> {
  const cached = parsed.get(file) ?? (parse(readFileSync(join(EXAMPLES_DIR, file), 'utf8')) as Record<string, unknown>);
  parsed.set(file, cached);
  return cached;
}

/** The group options an example selects (`execution: slurm/default` → ['execution', 'slurm/default']). */
function selections(file: string): Map<string, string> {
  const defaults = (rawConfig(file).defaults ?? []) as unknown[];
  const out = new Map<string, string>();
  for (const entry of defaults) {
    if (typeof entry === 'object' && entry !== null) for (const [k, v] of Object.entries(entry)) out.set(k, String(v));
  }
  return out;
}

/** `-o` values for every `???` in the file (the values its comments ask the user for). */
function requiredOverrides(node: unknown, path: string[] = []): string[] {
  if (node === '???') {
    const key = path.join('.');
    return [`${key}=${/(url|uri)$/.test(key) ? 'http://judge.example:8000/v1' : key === 'execution.output_dir' ? '/cluster/required-value' : 'required-value'}`];
  }
  if (Array.isArray(node)) return node.flatMap((v, i) => requiredOverrides(v, [...path, String(i)]));
  if (typeof node === 'object' && node !== null) return Object.entries(node).flatMap(([k, v]) => requiredOverrides(v, [...path, k]));
  return [];
}

function load(file: string) {
  return loadRunConfig({ configPath: join(EXAMPLES_DIR, file), overrides: requiredOverrides(rawConfig(file)), env: ENV, cwd: CWD });
}

function loadError(file: string): ConfigError {
  try {
    load(file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`${file} loaded, but it should not`);
}

/** Local or Slurm execution without a deployment: what evalflow runs today. */
const isLocalWithoutDeployment = (file: string) => ['local', 'slurm/default'].includes(selections(file).get('execution') ?? '') && selections(file).get('deployment') === 'none';
const SUPPORTED_COUNT = configs.filter(isLocalWithoutDeployment).length;
/** Upstream examples that upstream's own launcher rejects too (a required value left unset). */
const UPSTREAM_MISSING: Record<string, string> = {
  'nemotron/nemotron-3-super/local_nemotron-3-super-120b-a12b-base.yaml': 'deployment.checkpoint_path',
};
/** Local execution with a deployment evalflow starts (vllm, sglang, nim, trtllm, generic). */
const isLocalWithDeployment = (file: string) => selections(file).get('execution') === 'local' && !['none', 'vllm_ray', undefined].includes(selections(file).get('deployment'));
/** Slurm with a single-node deployment: the server runs through pyxis as a step of each task's job. */
const SLURM_WITH_DEPLOYMENT = ['slurm_nim.yaml', 'slurm_sglang_auto_export.yaml', 'slurm_vllm_advanced_hf_caching.yaml', 'slurm_vllm_basic.yaml', 'slurm_vllm_checkpoint_path.yaml'];

describe('upstream example configs', () => {
  it('finds the examples next to the repository (../shared/reference/upstream/examples)', () => {
    expect(existsSync(EXAMPLES_DIR), `${EXAMPLES_DIR} is missing`).toBe(true);
    expect(configs.length).toBeGreaterThanOrEqual(30);
    expect(yamlFiles.filter((f) => f.startsWith('data/'))).toEqual(DATA_FILES);
  });

  it('covers both kinds: local without deployment, and groups evalflow does not support yet', () => {
    expect(configs.filter((f) => isLocalWithoutDeployment(f) && selections(f).get('execution') === 'local').length).toBe(12);
    expect(configs.filter((f) => isLocalWithoutDeployment(f) && selections(f).get('execution') === 'slurm/default')).toEqual(['slurm_nemotron_benchmarks.yaml']);
    expect(configs.filter((f) => !isLocalWithoutDeployment(f)).length).toBe(configs.length - SUPPORTED_COUNT);
    expect(configs.filter(isLocalWithDeployment)).toHaveLength(5);
  });

  describe.each(configs.filter((f) => isLocalWithoutDeployment(f) && !(f in UPSTREAM_MISTAKES)))('%s (local, no deployment)', (file) => {
    it('loads and plans every task', () => {
      const cfg = load(file);
      const raw = rawConfig(file) as { evaluation: { tasks: { name: string }[] }; target: { api_endpoint: { url: string } } };
      const slurm = selections(file).get('execution') === 'slurm/default';
      expect(cfg.execution.type).toBe(slurm ? 'slurm' : 'local');
      expect(cfg.deployment).toEqual({ type: 'none' });
      // Slurm's output_dir is a path on the cluster, taken as written.
      expect(cfg.execution.output_dir.startsWith(slurm ? '/cluster/' : `${CWD}/`)).toBe(true);
      expect(cfg.target.api_endpoint.url).toBe(raw.target.api_endpoint.url);
      expect(cfg.evaluation.tasks.map((t) => t.name)).toEqual(raw.evaluation.tasks.map((t) => t.name));
      const plans = planTasks(cfg);
      expect(plans.map((p) => p.index)).toEqual(raw.evaluation.tasks.map((_, i) => i));
      for (const plan of plans) {
        expect(plan.task.builtin).toBe(false);
        expect(plan.container).toMatch(/^nvcr\.io\/nvidia\/eval-factory\//);
        expect(plan.task.supportedEndpointTypes).toContain(plan.endpointType);
        expect(plan.jobName).toBe(`${plan.task.name}.${plan.index}`);
      }
    });
  });

  describe.each(configs.filter((f) => isLocalWithoutDeployment(f) && !(f in UPSTREAM_MISTAKES)))('%s through the CLI', (file) => {
    it('passes `evalflow run --dry-run` and shows every job', async () => {
      const argv = ['run', '-c', join(EXAMPLES_DIR, file), '--dry-run', '-o', `execution.output_dir=${CWD}/out`];
      for (const o of requiredOverrides(rawConfig(file))) argv.push('-o', o);
      // ${oc.env:USER} is read from this process's environment, which may not have USER.
      if (selections(file).get('execution') === 'slurm/default') argv.push('-o', 'execution.username=tester');
      let stdout = '';
      let stderr = '';
      const code = await main(argv, { out: (t) => (stdout += t), err: (t) => (stderr += t), isTTY: false });
      expect(code, stderr).toBe(0);
      const tasks = (rawConfig(file) as { evaluation: { tasks: unknown[] } }).evaluation.tasks;
      expect(stdout.match(/^## job [0-9a-f]{16}\.\d+: /gm)).toHaveLength(tasks.length);
      expect(stderr.split('\n').filter((l) => l && !l.startsWith('warning: '))).toEqual([]);
    });
  });

  describe.each(Object.entries(UPSTREAM_WARNINGS))('%s (keys nemo-evaluator ignores)', (file, expected) => {
    it('loads, plans, and warns about each such key', () => {
      const warnings = planTasks(load(file)).flatMap((p) => p.warnings);
      expect(warnings).toHaveLength(expected.length);
      for (const [i, w] of expected.entries()) expect(warnings[i]).toContain(w);
    });
  });

  describe.each(Object.entries(UPSTREAM_MISTAKES))('%s (upstream mistake)', (file, { keyPath, hint }) => {
    it(`fails at ${keyPath} with a hint`, () => {
      expect(configs).toContain(file);
      const err = loadError(file);
      expect(err.exitCode).toBe(2);
      expect(err.keyPath).toBe(keyPath);
      expect(err.message).toContain(`${keyPath}: unknown key; ${hint}`);
    });
  });

  describe.each(configs.filter(isLocalWithDeployment))('%s (local, with a deployment)', (file) => {
    it("loads with upstream's deployment defaults and derives each task's endpoint from the deployment", () => {
      const missing = UPSTREAM_MISSING[file];
      if (missing) {
        // Upstream's launcher fails on it as well (MissingMandatoryValue: deployment.checkpoint_path).
        const err = loadError(file);
        expect(err.keyPath).toBe(missing);
        expect(err.message).toBe(`${missing}: missing required value (???); set it in the config or with -o ${missing}=...`);
        return;
      }
      const cfg = load(file);
      const { deployment } = cfg;
      expect(deployment.type).toBe(selections(file).get('deployment'));
      if (deployment.type === 'none') return;
      for (const plan of planTasks(cfg)) {
        expect(plan.endpoint.url).toBe(`http://127.0.0.1:${deployment.port}${deployment.endpoints[plan.endpointType]}`);
        expect(plan.endpoint.modelId).toBe(deployment.served_model_name);
      }
    });
  });

  describe.each(SLURM_WITH_DEPLOYMENT)('%s (Slurm, the deployment in the job)', (file) => {
    it('loads and plans the server as a pyxis step of each job, with the endpoint derived from it', () => {
      expect(configs).toContain(file);
      const cfg = load(file);
      const { deployment } = cfg;
      if (cfg.execution.type !== 'slurm' || deployment.type === 'none' || deployment.type === 'llama_cpp') throw new Error(`${file}: not a Slurm config with a container deployment`);
      for (const plan of planTasks(cfg)) {
        expect(plan.endpoint.url).toBe(`http://127.0.0.1:${deployment.port}${deployment.endpoints[plan.endpointType]}`);
        const execution = planExecution(cfg, plan, `${CWD}/out/20261130_000000-0123456789abcdef/${plan.jobName}`);
        expect(SlurmSpecSchema.parse(execution.executor).deployment).toMatchObject({ image: deployment.image, healthUrl: `http://127.0.0.1:${deployment.port}${deployment.endpoints.health}` });
      }
    });
  });

  describe.each(configs.filter((f) => !isLocalWithoutDeployment(f) && !isLocalWithDeployment(f) && !SLURM_WITH_DEPLOYMENT.includes(f)))('%s (not supported yet)', (file) => {
    it('fails naming what is not supported', () => {
      const execution = selections(file).get('execution') ?? '';
      const deployment = selections(file).get('deployment') ?? '';
      const err = loadError(file);
      expect(err.exitCode).toBe(2);
      if (execution !== 'slurm/default' || deployment === 'vllm_ray') {
        const group = execution === 'slurm/default' ? `deployment group '${deployment}'` : `execution group '${execution}'`;
        expect(err.keyPath).toBe('defaults');
        expect(err.message).toContain(`${group} is not supported yet`);
      } else {
        // Multi-node deployments, auxiliary deployments and unresolved judge settings.
        expect(err.message).toMatch(/not supported yet|unknown key|invalid key|missing required value/);
      }
    });
  });

  it('local_basic.yaml resolves to the values it asks for', () => {
    const cfg = load('local_basic.yaml');
    expect(cfg.execution).toMatchObject({ output_dir: `${CWD}/nel-results`, mode: 'sequential', runtime: 'docker', endpoint_readiness_timeout: 600 });
    expect(cfg.target.api_endpoint).toEqual({
      model_id: 'meta/llama-3.2-3b-instruct',
      url: 'https://integrate.api.nvidia.com/v1/chat/completions',
      api_key_name: 'NGC_API_KEY',
    });
    const plans = planTasks(cfg);
    expect(plans.map((p) => [p.jobName, p.task.fullName, p.endpointType])).toEqual([
      ['ifeval.0', 'lm-evaluation-harness.ifeval', 'chat'],
      ['gpqa_diamond.1', 'simple_evals.gpqa_diamond', 'chat'],
      ['mbpp-chat.2', 'bigcode-evaluation-harness.mbpp-chat', 'chat'],
    ]);
    expect(taskEvaluatorConfig(cfg, 1).params).toEqual({ request_timeout: 3600, parallelism: 1, limit_samples: 10 });
    expect(plans[1]?.env).toEqual({ HF_TOKEN: { kind: 'host', name: 'HF_TOKEN_FOR_GPQA_DIAMOND' }, NGC_API_KEY: { kind: 'host', name: 'NGC_API_KEY' } });
  });

  it('local_advanced_adapters.yaml keeps the interceptor list as written', () => {
    const plan = planTasks(load('local_advanced_adapters.yaml'))[0];
    const adapter = plan?.evaluatorConfig.merged.target?.api_endpoint?.adapter_config as { interceptors: { name: string }[] };
    expect(adapter.interceptors.map((i) => i.name)).toEqual(['payload_modifier', 'system_message', 'request_logging', 'caching', 'endpoint', 'response_stats']);
  });
});
