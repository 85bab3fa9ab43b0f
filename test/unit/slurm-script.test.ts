import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { renderSbatchScript, renderSecretsFile, sbatchValue, slurmJobName, walltimeSeconds, type SbatchScriptSpec } from '../../backends/slurm/script.js';
import { SlurmExecutionSchema } from '../../config/schema.js';

const JOB = '0123456789abcdef.2';
/** As composed with config/defaults/execution/slurm/default.yaml (upstream's defaults). */
const settings = SlurmExecutionSchema.parse({
  type: 'slurm',
  hostname: 'login',
  username: 'me',
  account: 'acct',
  output_dir: '/lustre/me/runs',
  partition: 'batch',
  gres: 'gpu:8',
  sbatch_extra_flags: { exclusive: true },
});

function spec(over: Partial<SbatchScriptSpec> = {}): SbatchScriptSpec {
  return {
    jobId: JOB,
    attempt: 1,
    remoteJobDir: '/lustre/me/runs/20260101_000000-0123456789abcdef/gsm8k.2',
    settings: { ...settings, runtime: 'none' },
    harness: { argv: ['evalflow', 'harness', 'run_eval', '--run_config', 'config_ef.yaml'] },
    envNames: [],
    generator: 'evalflow 0.1.0',
    ...over,
  };
}

describe('sbatch script', () => {
  it("uses upstream's defaults, never requeues, names the job after the job id and attempt", () => {
    const script = renderSbatchScript(spec());
    const directives = script.split('\n').filter((l) => l.startsWith('#SBATCH'));
    expect(directives).toEqual([
      `#SBATCH --job-name=acct-evalflow.${JOB}-a1`,
      '#SBATCH --output=/lustre/me/runs/20260101_000000-0123456789abcdef/gsm8k.2/logs/slurm-%j.log',
      '#SBATCH --no-requeue',
      '#SBATCH --time=01:00:00',
      '#SBATCH --nodes=1',
      '#SBATCH --ntasks-per-node=1',
      '#SBATCH --account=acct',
      '#SBATCH --partition=batch',
      '#SBATCH --gres=gpu:8',
      '#SBATCH --exclusive',
    ]);
    expect(script).toContain("set -a; . /lustre/me/runs/20260101_000000-0123456789abcdef/gsm8k.2/.secrets.env || exit 1; set +a");
    expect(script).toContain('evalflow harness run_eval --run_config config_ef.yaml >> /lustre/');
    expect(slurmJobName({ account: null, subproject: 'p' }, JOB, 3)).toBe(`p.${JOB}-a3`);
  });

  it('writes extra flags in order (true: bare, false/null: omitted) and the optional keys', () => {
    const s = { ...settings, runtime: 'none' as const, gpus_per_node: 4, sbatch_comment: 'nightly run', sbatch_extra_flags: { exclusive: false, constraint: 'h100', switches: 1, 'mem-per-cpu': null, 'x-flag': true } };
    const directives = renderSbatchScript(spec({ settings: s })).split('\n').filter((l) => l.startsWith('#SBATCH'));
    expect(directives.slice(9)).toEqual(['#SBATCH --gpus-per-node=4', '#SBATCH --comment="nightly run"', '#SBATCH --constraint=h100', '#SBATCH --switches=1', '#SBATCH --x-flag']);
  });

  it('runs the harness and the deployment through srun --container-image under pyxis', () => {
    const script = renderSbatchScript(
      spec({
        settings: { ...settings, mounts: { mount_home: false } },
        harness: { argv: ['nemo-evaluator', 'run_eval', '--run_config', '/results/config_ef.yaml'], image: 'nvcr.io/nvidia/eval-factory/simple-evals:26.03', mounts: { '/runs/x/artifacts': '/results' } },
        deployment: { image: 'vllm/vllm-openai:latest', healthUrl: 'http://127.0.0.1:8000/health', mounts: { '/ckpt': '/checkpoint:ro' } },
        envNames: ['API_KEY', 'HF_TOKEN'],
      }),
    );
    expect(script).toContain(
      'srun --overlap --nodes=1 --ntasks=1 --chdir=/lustre/me/runs/20260101_000000-0123456789abcdef/gsm8k.2 --output=/lustre/me/runs/20260101_000000-0123456789abcdef/gsm8k.2/logs/server_stdout.log --container-image=vllm/vllm-openai:latest --container-mounts=/ckpt:/checkpoint:ro --no-container-mount-home --container-env=API_KEY,HF_TOKEN bash /lustre/',
    );
    expect(script).toContain('--container-image=nvcr.io/nvidia/eval-factory/simple-evals:26.03 --container-mounts=/runs/x/artifacts:/results --no-container-mount-home --container-env=API_KEY,HF_TOKEN nemo-evaluator run_eval');
    expect(script).toContain('until curl -sf -o /dev/null --max-time 10 http://127.0.0.1:8000/health; do');
    expect(script).toContain('deadline=$((SECONDS + 3600))');
    expect(() => renderSbatchScript(spec({ settings: { ...settings, runtime: 'pyxis' } }))).toThrow(/needs a container image/);
  });

  it('is valid bash and quotes every value', () => {
    const nasty = "/runs/it's $(touch x) `id` ; & | > *";
    const script = renderSbatchScript(spec({ remoteJobDir: nasty, harness: { argv: ['printf', '%s\n', '$(id)', "a'b", 'c"d'] } }));
    expect(spawnSync('bash', ['-n'], { input: script }).status).toBe(0);
    expect(script).toContain(`cd '/runs/it'\\''s $(touch x) \`id\` ; & | > *' || exit 1`);
    expect(script).toContain(`printf '%s\n' '$(id)' 'a'\\''b' 'c"d' >>`);
    expect(script).toContain(`#SBATCH --output="/runs/it's $(touch x) \`id\` ; & | > */logs/slurm-%j.log"`);
    expect(() => renderSbatchScript(spec({ jobId: '../x' }))).toThrow(/not a job id/);
  });

  it('escapes #SBATCH values for sbatch’s own parser', () => {
    expect(sbatchValue('gpu:8')).toBe('gpu:8');
    expect(sbatchValue('a b')).toBe('"a b"');
    expect(sbatchValue('say "hi" #now \\o/')).toBe('"say \\"hi\\" #now \\\\o/"');
    expect(() => sbatchValue('two\nlines')).toThrow(/single line/);
  });

  it('writes secrets as exported, quoted values, and runtime references by name', () => {
    const text = renderSecretsFile({ API_KEY: "it's $(secret)" }, { HF_TOKEN: 'CLUSTER_HF_TOKEN' });
    expect(text).toContain(`export API_KEY='it'\\''s $(secret)'`);
    expect(text).toContain('export HF_TOKEN="${CLUSTER_HF_TOKEN}"');
    const res = spawnSync('bash', ['-c', `CLUSTER_HF_TOKEN=tok\n${text}\nprintf '%s|%s' "$API_KEY" "$HF_TOKEN"`], { encoding: 'utf8' });
    expect(res.stdout).toBe("it's $(secret)|tok");
    expect(() => renderSecretsFile({ 'A;B': 'x' })).toThrow(/invalid environment variable name/);
    expect(() => renderSecretsFile({}, { A: 'B;C' })).toThrow(/not an environment variable name/);
  });

  it('reads walltimes', () => {
    expect(walltimeSeconds('01:00:00')).toBe(3600);
    expect(walltimeSeconds('120:00:00')).toBe(432_000);
    expect(walltimeSeconds('2-01:00:30')).toBe(176_430);
  });
});

describe('execution: slurm schema', () => {
  const base = { type: 'slurm', hostname: 'login', username: 'me', account: 'acct', output_dir: '/abs' };
  it('fills upstream defaults and ours', () => {
    expect(SlurmExecutionSchema.parse(base)).toMatchObject({ num_nodes: 1, ntasks_per_node: 1, walltime: '01:00:00', max_walltime: '120:00:00', sbatch_extra_flags: {}, subproject: 'evalflow', runtime: 'pyxis', ssh: { port: 22, trust_on_first_use: false }, poll_interval: 30, mounts: { mount_home: true } });
  });
  it.each([
    [{ output_dir: 'relative' }, 'output_dir'],
    [{ output_dir: '/a%j' }, 'output_dir'],
    [{ walltime: '1h' }, 'walltime'],
    [{ sbatch_comment: 'a\nb' }, 'sbatch_comment'],
    [{ sbatch_extra_flags: { 'job-name': 'x' } }, 'sbatch_extra_flags.job-name'],
    [{ sbatch_extra_flags: { 'bad flag': 'x' } }, 'sbatch_extra_flags.bad flag'],
    [{ account: 'a;b' }, 'account'],
    [{ num_instances: 2 }, 'num_instances'],
    [{ mounts: { evaluation: { '/a,b': '/c' } } }, 'mounts.evaluation./a,b'],
    [{ hostname: 'h; rm' }, 'hostname'],
    [{ unknown_key: 1 }, ''],
    [{ ssh: { port: 0 } }, 'ssh.port'],
  ])('refuses %j at its key path', (over, path) => {
    const res = SlurmExecutionSchema.safeParse({ ...base, ...over });
    expect(res.success).toBe(false);
    expect(res.error?.issues[0]?.path.join('.')).toBe(path);
  });
});
