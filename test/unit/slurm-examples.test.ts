/** evalflow's own Slurm examples pass `evalflow run --dry-run` (with their ??? values given) and show the sbatch script. */
import { describe, expect, it } from 'vitest';
import { main } from '../../client/cli.js';
import { packageRoot } from '../../common/paths.js';
import { loadRunConfig } from '../../config/load.js';
import { runWarnings } from '../../config/inert-keys.js';
import { planTasks } from '../../config/plan.js';
import { planExecution } from '../../backends/plans.js';
import { SlurmSpecSchema } from '../../backends/slurm/spec.js';

const REQUIRED = ['execution.hostname=login.example', 'execution.account=acct', 'execution.output_dir=/lustre/me/evalflow', 'execution.username=me'];

const EXAMPLES: Record<string, string[]> = {
  'slurm_none.yaml': [],
  'slurm_pyxis.yaml': [],
  'slurm_llama_cpp.yaml': ['deployment.model_path=/lustre/models/smollm2.gguf'],
  'slurm_vllm.yaml': ['deployment.checkpoint_path=/lustre/models/llama'],
};

describe.each(Object.keys(EXAMPLES))('examples/%s', (file) => {
  const path = `${packageRoot()}/examples/${file}`;
  it('passes evalflow run --dry-run and shows run.sub for every job', async () => {
    let stdout = '';
    let stderr = '';
    const argv = ['run', '-c', path, '--dry-run', ...[...REQUIRED, ...(EXAMPLES[file] ?? [])].flatMap((o) => ['-o', o])];
    const code = await main(argv, { out: (t) => (stdout += t), err: (t) => (stderr += t), isTTY: false });
    expect(code, stderr).toBe(0);
    expect(stdout.match(/^# {3}#SBATCH --no-requeue$/gm)).toHaveLength(2);
    expect(stdout).toContain('#   #SBATCH --job-name=');
    expect(stdout).toContain('remote job dir /lustre/me/evalflow/');
  });
});

describe('Slurm keys without effect', () => {
  it('are named in a warning, once', () => {
    const cfg = loadRunConfig({
      configPath: `${packageRoot()}/examples/slurm_none.yaml`,
      overrides: [...REQUIRED, 'execution.cpu_partition=cpu', '++execution.mounts.evaluation={/a: /b}'],
      env: {},
    });
    const warnings = runWarnings(cfg, planTasks(cfg));
    expect(warnings).toEqual([
      'execution.mounts.evaluation: ignored with execution.type=slurm, execution.runtime=none (it acts with: local/docker, slurm/pyxis)',
      'execution.cpu_partition: ignored: evalflow exports from the worker, not as a CPU Slurm job',
    ]);
  });
});

function slurmPlan(file: string, overrides: string[]) {
  const cfg = loadRunConfig({ configPath: `${packageRoot()}/examples/${file}`, overrides: [...REQUIRED, ...overrides], env: { HF_TOKEN: 'x' } });
  const [task] = planTasks(cfg);
  if (!task) throw new Error('no task');
  return planExecution(cfg, task, '/tmp/evalflow-results/20261130_000000-0123456789abcdef/gsm8k.0');
}

describe('a deployment inside the Slurm job', () => {
  it('llama_cpp under runtime none: model_server_command with the server flags, health-checked inside the job', () => {
    const plan = slurmPlan('slurm_llama_cpp.yaml', ['deployment.model_path=/lustre/m.gguf', 'execution.model_server_command=[node,/opt/evalflow/dist/model-server/main.js]']);
    const spec = SlurmSpecSchema.parse(plan.executor);
    expect(spec.deployment).toEqual({
      argv: ['node', '/opt/evalflow/dist/model-server/main.js', '--host', '127.0.0.1', '--port', '8000', '--model', '/lustre/m.gguf', '--model-id', 'smollm2-135m-instruct', '--parallel', '4'],
      healthUrl: 'http://127.0.0.1:8000/health',
    });
    expect(plan.server?.type).toBe('llama_cpp');
    const text = plan.describe.join('\n');
    expect(text).toContain('--output=/lustre/me/evalflow/20261130_000000-0123456789abcdef/gsm8k.0/logs/server_stdout.log bash /lustre/me/evalflow/20261130_000000-0123456789abcdef/gsm8k.0/deployment.sh &');
    expect(text).toContain('until curl -sf -o /dev/null --max-time 10 http://127.0.0.1:8000/health; do');
    expect(text).toContain("exec node /opt/evalflow/dist/model-server/main.js --host 127.0.0.1 --port 8000 --model /lustre/m.gguf");
  });

  it('vllm under pyxis: its image, command and read-only checkpoint mount; the token only by name', () => {
    const plan = slurmPlan('slurm_vllm.yaml', ['deployment.checkpoint_path=/lustre/ckpt']);
    const spec = SlurmSpecSchema.parse(plan.executor);
    expect(spec.deployment).toMatchObject({ image: 'vllm/vllm-openai:latest', mounts: { '/lustre/ckpt': '/checkpoint:ro' }, healthUrl: 'http://127.0.0.1:8000/health' });
    expect(spec.deployment?.argv.slice(0, 3)).toEqual(['vllm', 'serve', '/checkpoint']);
    const text = plan.describe.join('\n');
    expect(text).toContain('--container-image=vllm/vllm-openai:latest');
    expect(text).not.toMatch(/HF_TOKEN=x/);
  });

  it('refuses what cannot run there, naming the key', () => {
    expect(() => slurmPlan('slurm_llama_cpp.yaml', ['deployment.model_path=/m.gguf', 'execution.runtime=pyxis'])).toThrow(/^execution\.runtime: the llama_cpp deployment runs on the node/);
    expect(() => slurmPlan('slurm_llama_cpp.yaml', ['deployment.model_path=null'])).toThrow(/^deployment\.model_path: required on Slurm/);
    expect(() => slurmPlan('slurm_vllm.yaml', ['deployment.checkpoint_path=/c', 'execution.runtime=none'])).toThrow(/^execution\.runtime: a vllm deployment runs from its image/);
  });
});
