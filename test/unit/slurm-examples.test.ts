/** evalflow's own Slurm examples pass `evalflow run --dry-run` (with their ??? values given) and show the sbatch script. */
import { describe, expect, it } from 'vitest';
import { main } from '../../client/cli.js';
import { packageRoot } from '../../common/paths.js';
import { loadRunConfig } from '../../config/load.js';
import { runWarnings } from '../../config/inert-keys.js';
import { planTasks } from '../../config/plan.js';

const REQUIRED = ['execution.hostname=login.example', 'execution.account=acct', 'execution.output_dir=/lustre/me/evalflow', 'execution.username=me'];

describe.each(['slurm_none.yaml', 'slurm_pyxis.yaml'])('examples/%s', (file) => {
  const path = `${packageRoot()}/examples/${file}`;
  it('passes evalflow run --dry-run and shows run.sub for every job', async () => {
    let stdout = '';
    let stderr = '';
    const argv = ['run', '-c', path, '--dry-run', ...REQUIRED.flatMap((o) => ['-o', o])];
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
