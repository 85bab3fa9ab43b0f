/**
 * Every accepted key has an effect or a warning naming it (issue 5 §7): keys evalflow accepts for
 * upstream's sake but does not act on are listed by `run` and `--dry-run`, and keys that act under some
 * runtimes only warn exactly where they do not act.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { main } from '../../client/cli.js';
import { runWarnings } from '../../config/inert-keys.js';
import { loadRunConfig } from '../../config/load.js';
import { planTasks } from '../../config/plan.js';

const dir = mkdtempSync(join(tmpdir(), 'evalflow-inert-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A config that sets every key evalflow accepts without acting on it today. */
const EVERYTHING = {
  execution: {
    output_dir: `${dir}/out`,
    extra_docker_args: '--shm-size 1g --rm',
    max_parallel_tasks: 2,
    mounts: { evaluation: { '/data': '/data' }, deployment: { '/ckpt': '/checkpoint' }, auxiliary: { judge: { '/j': '/j' } }, mount_home: false },
  },
  target: { api_endpoint: { url: 'http://127.0.0.1:9/v1/chat/completions', model_id: 'm', adapter_config: { interceptors: [] } } },
  evaluation: {
    pre_cmd: 'echo before',
    post_cmd: 'echo after',
    nemo_evaluator_config: { config: { type: 'x', params: { task: 'main' } }, target: { api_endpoint: { adapter_config: { interceptors: [] } } } },
    tasks: [
      { name: 'evalflow.gsm8k', pre_cmd: 'echo task', post_cmd: 'echo task', dataset_dir: dir, dataset_mount_path: '/datasets' },
      { name: 'evalflow.mmlu', nemo_evaluator_config: { target: { api_endpoint: { adapter_config: { interceptors: [] } } } } },
    ],
  },
  export: {
    local: { format: 'csv', output_dir: `${dir}/exports`, output_filename: 'x', copy_logs: true, copy_artifacts: false, only_required: false, log_metrics: ['accuracy'] },
    mlflow: { tracking_uri: 'http://127.0.0.1:5000' },
    wandb: { entity: 'e', project: 'p' },
    gsheets: { spreadsheet_name: 's' },
    env_vars: { MLFLOW_TRACKING_TOKEN: 'host:MLFLOW_TRACKING_TOKEN' },
  },
};

/** Keys named by a warning under each runtime (order: as reported). */
const EXPECTED: Record<'process' | 'docker', string[]> = {
  process: [
    'execution.mounts.evaluation',
    'execution.mounts.mount_home',
    'execution.mounts.deployment',
    'execution.mounts.auxiliary',
    'execution.extra_docker_args',
    'execution.max_parallel_tasks',
    'target.api_endpoint.adapter_config',
    'evaluation.pre_cmd',
    'evaluation.post_cmd',
    'evaluation.nemo_evaluator_config.config.type',
    'evaluation.nemo_evaluator_config.config.params.task',
    'evaluation.tasks[0].pre_cmd',
    'evaluation.tasks[0].post_cmd',
    'evaluation.tasks[0].dataset_mount_path',
    'export.wandb',
    'export.gsheets',
    'export.local',
    'export.mlflow',
    'export.env_vars',
  ],
  docker: [],
};
// The docker runtime acts on its own keys; everything else warns as under process.
EXPECTED.docker = EXPECTED.process.flatMap((k) => {
  if (k === 'execution.extra_docker_args') return [k]; // its --rm only (evalflow removes its containers itself)
  return ['execution.mounts.evaluation', 'evaluation.tasks[0].dataset_mount_path'].includes(k) ? [] : [k];
});

function warningsFor(config: object, overrides: string[] = []): string[] {
  const file = join(dir, `config-${Math.random().toString(16).slice(2)}.yaml`);
  writeFileSync(file, stringify(config));
  const cfg = loadRunConfig({ configPath: file, overrides, env: {}, cwd: dir });
  return runWarnings(cfg, planTasks(cfg));
}

describe('keys without effect', () => {
  it.each(['process', 'docker'] as const)('are each named by one warning with execution.runtime=%s', (runtime) => {
    const warnings = warningsFor(EVERYTHING, [`execution.runtime=${runtime}`]);
    expect(warnings.map((w) => w.slice(0, w.indexOf(': ')))).toEqual(EXPECTED[runtime]);
    for (const w of warnings) expect(w).toMatch(/^[\w.[\]]+: (ignored|--rm has no effect)/);
  });

  it('names the runtime where a key does not act', () => {
    const [warning] = warningsFor({ ...EVERYTHING, execution: { output_dir: `${dir}/out`, runtime: 'process', extra_docker_args: '--shm-size 1g' }, export: undefined, evaluation: { tasks: [{ name: 'evalflow.gsm8k' }] } }).filter((w) => !w.startsWith('target.'));
    expect(warning).toBe('execution.extra_docker_args: ignored with execution.runtime=process (it acts with: local/docker)');
  });

  it('stay quiet for a config that sets only keys that act, and for defaults', () => {
    const config = {
      execution: { output_dir: `${dir}/out`, runtime: 'process', mode: 'parallel', max_parallel_tasks: 2, auto_export: { destinations: ['local'] } },
      target: { api_endpoint: { url: 'http://127.0.0.1:9/v1/chat/completions', model_id: 'm', stream: true } },
      evaluation: { nemo_evaluator_config: { config: { params: { limit_samples: 5, temperature: 0 } } }, tasks: [{ name: 'evalflow.gsm8k', dataset_dir: dir }] },
      export: { local: { format: 'csv', output_dir: `${dir}/exports` } },
    };
    expect(warningsFor(config)).toEqual([]);
  });

  it('are printed by run --dry-run on stderr, one line each', async () => {
    const file = join(dir, 'cli.yaml');
    writeFileSync(file, stringify(EVERYTHING));
    let stdout = '';
    let stderr = '';
    const code = await main(['run', '-c', file, '--dry-run', '-o', 'execution.runtime=process'], { out: (t) => (stdout += t), err: (t) => (stderr += t), isTTY: false });
    expect(code, stderr).toBe(0);
    const lines = stderr.trimEnd().split('\n');
    expect(lines.map((l) => l.slice('warning: '.length, l.indexOf(': ', 'warning: '.length)))).toEqual(EXPECTED.process);
    expect(stdout).toContain('# resolved config');
  });
});

describe('adapter_config of built-in tasks (the harness runs the interceptors)', () => {
  const withAdapter = (adapterConfig: object) => ({
    execution: { output_dir: `${dir}/out`, runtime: 'process' },
    target: { api_endpoint: { url: 'http://127.0.0.1:9/v1/chat/completions', model_id: 'm' } },
    evaluation: { tasks: [{ name: 'evalflow.gsm8k', dataset_dir: dir, nemo_evaluator_config: { target: { api_endpoint: { adapter_config: adapterConfig } } } }] },
  });

  it('acts without a warning, except for the keys that change nothing here', () => {
    expect(warningsFor(withAdapter({ interceptors: ['caching', 'endpoint', 'reasoning'] }))).toEqual([]);
    expect(warningsFor(withAdapter({ use_reasoning: true, generate_html_report: true }))).toEqual([
      'evaluation.tasks[0].nemo_evaluator_config.target.api_endpoint.adapter_config.generate_html_report: ignored: no HTML report is written (per-sample outputs hold every request and response)',
    ]);
  });

  it('is a config error naming the entry when the harness could not run it', () => {
    expect(() => warningsFor(withAdapter({ interceptors: ['reasoning', 'endpoint'] }))).toThrow(
      'evaluation.tasks[0].nemo_evaluator_config.target.api_endpoint.adapter_config.interceptors[1]: endpoint is a request-to-response interceptor and must come before the response ones',
    );
  });
});
