/**
 * Golden tests: what evalflow generates for upstream's harness containers against what upstream's own launcher
 * (nemo-evaluator-launcher 0.2.6 from PyPI, `run --dry-run`) generated for the same configs, recorded in
 * test/fixtures/upstream-golden/ by record.py there (each file names the command that produced it).
 *
 * Per job: the image, config_ef.yaml (the whole merged nemo_evaluator_config, upstream's fill-if-absent rules;
 * `metadata` holds each launcher's own provenance, compared for pre_cmd/post_cmd only), the pre_cmd.sh and
 * post_cmd.sh the container writes, the command that runs the harness, the non-secret `-e` values
 * (NEMO_EVALUATOR_DATASET_DIR), the dataset mount and the names of the variables the container gets; for a
 * deployment, its server container's image, command, port, mounts, variable names, health URL and timeout.
 * Deliberate differences, normalised here: the run config is a mounted file (/evalflow/config_ef.yaml) instead
 * of a base64 blob in the command, secrets come from the mounted secrets file instead of `-e NAME`, and
 * the dataset is mounted read-only.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RUN_CONFIG_IN_CONTAINER, type DockerSpec } from '../../backends/local/docker/layout.js';
import { buildInvocationInput } from '../../client/invocation.js';
import { ServerSpecSchema } from '../../backends/server-spec.js';
import { shellQuote, shellSplit } from '../../common/shell.js';
import { loadRunConfig } from '../../config/load.js';
import { planTasks } from '../../config/plan.js';
import type { InvocationInput } from '../../workflows/types.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GOLDEN_DIR = join(REPO_ROOT, 'test', 'fixtures', 'upstream-golden');
const UPSTREAM_EXAMPLES = join(REPO_ROOT, '..', 'shared', 'reference', 'upstream', 'examples');
/** The configs and overrides record.py ran upstream's launcher with (see CASES there). */
const CASES: Record<string, { config: string; overrides?: string[] }> = {
  local_basic: { config: join(UPSTREAM_EXAMPLES, 'local_basic.yaml') },
  local_advanced_adapters: { config: join(UPSTREAM_EXAMPLES, 'local_advanced_adapters.yaml') },
  local_extra_params: { config: join(UPSTREAM_EXAMPLES, 'local_extra_params.yaml') },
  local_reasoning: { config: join(UPSTREAM_EXAMPLES, 'local_reasoning.yaml') },
  local_safety: {
    config: join(UPSTREAM_EXAMPLES, 'local_safety.yaml'),
    overrides: [
      'evaluation.tasks.1.nemo_evaluator_config.config.params.extra.judge.url=http://judge.example:8000/v1',
      'evaluation.tasks.2.nemo_evaluator_config.config.params.extra.judge.url=http://judge.example:8000/v1',
      'evaluation.tasks.2.nemo_evaluator_config.config.params.extra.judge.model_id=judge-model',
    ],
  },
  local_tools: { config: join(UPSTREAM_EXAMPLES, 'local_tools.yaml') },
  local_nim: { config: join(UPSTREAM_EXAMPLES, 'local_nim.yaml') },
  local_vllm_logprobs: { config: join(UPSTREAM_EXAMPLES, 'local_vllm_logprobs.yaml') },
  sglang_dataset_cmds: { config: join(GOLDEN_DIR, 'configs', 'sglang_dataset_cmds.yaml') },
  trtllm_checkpoint: { config: join(GOLDEN_DIR, 'configs', 'trtllm_checkpoint.yaml') },
  generic_server: { config: join(GOLDEN_DIR, 'configs', 'generic_server.yaml') },
  hosted_overrides: { config: join(GOLDEN_DIR, 'configs', 'hosted_overrides.yaml') },
};
const ENV = { USER: 'tester', HOME: '/home/tester' };

interface GoldenJob {
  job: string;
  index: number;
  job_dir: string;
  image: string;
  config_ef: Record<string, unknown> & { metadata: Record<string, unknown> };
  files: Record<string, string>;
  harness_command: string;
  volumes: string[];
  env_names: string[];
  env_values: Record<string, string>;
  produced_by: string;
  deployment: {
    image: string;
    command: string;
    port: number;
    docker_flags: string[];
    env_names: string[];
    mounts: string[];
    health_url: string;
    readiness_timeout: number;
  } | null;
}

function goldenJobs(name: string): GoldenJob[] {
  const dir = join(GOLDEN_DIR, name);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as GoldenJob);
}

function generate(name: string): InvocationInput {
  const { config, overrides = [] } = CASES[name] as { config: string; overrides?: string[] };
  const cfg = loadRunConfig({ configPath: config, overrides: [...overrides, 'execution.output_dir=/tmp/golden-out'], env: ENV, cwd: '/tmp' });
  return buildInvocationInput(cfg, planTasks(cfg), { invocationId: '0123456789abcdef', now: new Date(0) });
}

/** The files the container's `bash -c` script writes from base64 (`echo "…" | base64 -d > f`). */
function base64Files(script: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const m of script.matchAll(/echo "([A-Za-z0-9+/=]*)" \| base64 -d > (\S+)/g)) files[m[2] as string] = Buffer.from(m[1] as string, 'base64').toString('utf8');
  return files;
}

const withoutMetadata = (config: Record<string, unknown>) => Object.fromEntries(Object.entries(config).filter(([k]) => k !== 'metadata'));
const commands = (metadata: Record<string, unknown>) => Object.fromEntries(['pre_cmd', 'post_cmd'].filter((k) => metadata[k] !== undefined).map((k) => [k, metadata[k]]));

const cases = Object.keys(CASES);
const allJobs = cases.flatMap((name) => goldenJobs(name).map((job) => ({ name, job })));

describe("upstream harness containers: evalflow's generation against upstream's launcher (goldens)", () => {
  it('covers at least 10 catalogue tasks across at least 5 harnesses', () => {
    expect(allJobs.length).toBeGreaterThanOrEqual(10);
    expect(new Set(allJobs.map(({ job }) => job.image.replace(/:[^:]*$/, ''))).size).toBeGreaterThanOrEqual(5);
    for (const { job } of allJobs) expect(job.produced_by).toMatch(/^.*nemo-evaluator-launcher run --config \S+ --dry-run/);
  });

  describe.each(cases)('%s', (name) => {
    const input = generate(name);
    it.each(goldenJobs(name).map((job) => [job.job_dir, job] as const))('%s', (_dir, golden) => {
      const task = input.tasks.find((t) => t.taskIndex === golden.index);
      expect(task, `no job for task index ${golden.index}`).toBeDefined();
      if (!task) return;
      // Job dirs differ on purpose: upstream names them after the task as written (`simple_evals.mmlu_pro.1`),
      // evalflow after the bare task name (`mmlu_pro.1`), the same whichever way the config spells it.
      expect(golden.job_dir.endsWith(task.jobName)).toBe(true);
      const docker = task.executor as DockerSpec;
      expect(docker.kind).toBe('docker');
      expect(docker.image).toBe(golden.image);

      // config_ef.yaml: the whole merged config, completed only where keys are absent.
      expect(withoutMetadata(task.runConfig)).toEqual(withoutMetadata(golden.config_ef));
      expect(commands(task.runConfig.metadata as Record<string, unknown>)).toEqual(commands(golden.config_ef.metadata));

      // The container command: upstream's script, the run config read from its mount.
      const script = docker.command?.cmd.join(' ') ?? '';
      expect(docker.command?.entrypoint).toEqual(['bash', '-c']);
      expect(base64Files(script)).toEqual(golden.files);
      expect(script).toContain(golden.harness_command.replace('--run_config config_ef.yaml', `--run_config ${shellQuote(RUN_CONFIG_IN_CONTAINER)}`));
      expect(script).toMatch(/chmod 777 -R \/results/);

      // What the container gets besides: non-secret variables, the dataset, secret names.
      expect(docker.command?.env ?? {}).toEqual(golden.env_values);
      const volumes = golden.volumes.filter((v) => v !== '$artifacts_dir:/results');
      expect(docker.dataset ? [`${docker.dataset.source}:${docker.dataset.target}`] : []).toEqual(volumes);
      expect(Object.keys(task.env ?? {}).sort()).toEqual([...golden.env_names].sort());

      // The deployment's server container, as upstream starts it: image, command, port, mounts, env names, health.
      if (!golden.deployment) {
        expect(task.deployment).toBeUndefined();
        return;
      }
      const server = ServerSpecSchema.parse(task.deployment);
      expect(server.type).not.toBe('llama_cpp');
      if (server.type === 'llama_cpp') return;
      expect(server.image).toBe(golden.deployment.image);
      expect(server.argv).toEqual(shellSplit(golden.deployment.command));
      expect(server.port).toBe(golden.deployment.port);
      expect(server.healthUrl).toBe(golden.deployment.health_url);
      expect(server.mounts.map((m) => `${m.source}:${m.target}${m.readOnly ? ':ro' : ''}`)).toEqual(golden.deployment.mounts);
      expect(Object.keys(server.env).sort()).toEqual([...golden.deployment.env_names].sort());
      expect(task.endpoint.readinessTimeoutS).toBe(golden.deployment.readiness_timeout);
      expect(golden.deployment.docker_flags).toContain("--entrypoint ''");
    });
  });
});
