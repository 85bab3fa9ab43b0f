/**
 * evalflow runs on the real loopback Slurm (scripts/services/slurm.sh) over SSH, runtime `none` (the
 * built-in harness on the node, as the lab user), against the fixture endpoint: exact scores, artifacts
 * fetched, one Slurm job per task; a worker SIGKILLed mid-job re-attaches to the same Slurm job; sshd
 * down for 60 s and slurmctld restarted mid-job do not fail the task; a time limit is resubmitted and
 * resumes from the response cache (the fixture counts every request), max_walltime bounds it; an
 * external scancel is reported as cancelled, and `evalflow kill` leaves nothing in squeue.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeSshSessions, sshSession, type SshSession } from '../../backends/slurm/ssh.js';
import { distPath } from '../../common/paths.js';
import { shellQuote } from '../../common/shell.js';
import type { InvocationStatus } from '../../workflows/types.js';
import { answerFromTable, startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import { cli, DATASETS, gsm8kHead, readYaml, startedInvocationId, tempDir, writeConfig } from '../support/run-helpers.js';
import { ensureModel } from '../../model-server/model-file.js';
import { freePort } from '../../common/ports.js';
import { labUp, PrivateSshd, slurmLab, slurmSuitesEnabled, type SlurmLab } from '../support/slurm-lab.js';
import { spawnWorkerProcess, startWorker, testClient, testTarget, type RunningWorker } from '../support/temporal.js';

const N = 12;
const questions = gsm8kHead(30);
/** Questions 0, 3, 6, … are answered correctly. */
const table = Object.fromEntries(questions.map(({ question, answer }, i) => [question, `The final answer is ${i % 3 === 0 ? answer : '-1'}`]));

describe.runIf(slurmSuitesEnabled)('evalflow on the loopback Slurm', () => {
  let lab: SlurmLab;
  let ssh: SshSession;
  let client: Client;
  let fixture: FixtureServer;
  let remoteRoot: string;
  const cleanups: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    lab = slurmLab();
    process.env.TEMPORAL_ADDRESS = testTarget().address;
    ssh = sshSession({ host: lab.host, port: lab.port, user: lab.user, keyPath: lab.keyPath, hostKeys: [lab.hostKey] });
    remoteRoot = `${lab.scratchDir}/runs-${process.pid}`;
    client = await testClient();
  });
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
    await fixture?.close();
  });
  afterAll(async () => {
    await ssh?.exec(`rm -rf ${shellQuote(remoteRoot)}`);
    closeSshSessions();
    await client?.connection.close();
  });

  function config(dir: string, opts: { n?: number; walltime?: string; maxWalltime?: string; sshPort?: number; tasks?: number; parallelism?: number; endpoint?: FixtureServer } = {}): string {
    const task = `    - name: evalflow.gsm8k\n      dataset_dir: ${DATASETS}\n`;
    return writeConfig(
      dir,
      `
defaults:
  - execution: slurm/default
  - deployment: none
  - _self_
execution:
  hostname: ${lab.host}
  username: ${lab.user}
  account: null
  output_dir: ${remoteRoot}/${dir.split('/').pop()}
  local_output_dir: ${dir}/results
  partition: ${lab.partition}
  gres: null
  sbatch_extra_flags: {exclusive: false}
  runtime: none
  harness_command: [${lab.nodePath}, ${distPath('harness', 'cli.js')}]
  walltime: "${opts.walltime ?? '00:10:00'}"
  max_walltime: "${opts.maxWalltime ?? '01:00:00'}"
  poll_interval: 1
  heartbeat_timeout: 10
  ssh:
    port: ${opts.sshPort ?? lab.port}
    key_file: ${lab.keyPath}
    host_key: "${lab.hostKey}"
target:
  api_endpoint:
    url: ${(opts.endpoint ?? fixture).url}/v1/chat/completions
    model_id: fixture-model
evaluation:
  nemo_evaluator_config:
    config:
      params: {limit_samples: ${opts.n ?? N}, parallelism: ${opts.parallelism ?? 2}, request_timeout: 30}
  tasks:
${task.repeat(opts.tasks ?? 1)}`,
    );
  }

  async function start(dir: string, opts: Parameters<typeof config>[1] = {}): Promise<string> {
    const res = await cli('run', '-c', config(dir, opts));
    expect(res.code, res.stdout + res.stderr).toBe(0);
    return startedInvocationId(res.stdout);
  }

  async function finish(inv: string): Promise<{ status: InvocationStatus; error?: string }> {
    const handle = client.workflow.getHandle(`evalflow-${inv}`);
    let error: string | undefined;
    await handle.result().catch((err: Error) => (error = `${err.message} ${String((err.cause as Error | undefined)?.message ?? '')}`));
    return { status: await handle.query<InvocationStatus>('status'), ...(error ? { error } : {}) };
  }

  async function status(inv: string): Promise<InvocationStatus> {
    return client.workflow.getHandle(`evalflow-${inv}`).query<InvocationStatus>('status');
  }

  async function waitFor(what: string, check: () => Promise<boolean>, timeoutS = 120): Promise<void> {
    const deadline = Date.now() + timeoutS * 1000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** The `<attempt> <slurm job id>` lines the executor recorded in the remote job dir. */
  async function submittedJobs(inv: string, jobName = 'gsm8k.0'): Promise<string[]> {
    const found = await ssh.exec(`cat ${shellQuote(remoteRoot)}/*/*-${inv}/${jobName}/.slurm_job_ids 2>/dev/null`);
    return found.stdout.trim().split('\n').filter(Boolean);
  }

  async function liveJobsOf(inv: string): Promise<string[]> {
    const res = await ssh.exec(`squeue --noheader --user=${lab.user} --format='%j %T'`);
    return res.stdout.split('\n').filter((l) => l.includes(inv));
  }

  function accuracy(jobDir: string): number {
    const r = readYaml<{ results: { tasks: { gsm8k: { metrics: { accuracy: { scores: { accuracy: { value: number } } } } } } } }>(join(jobDir, 'artifacts', 'results.yml'));
    return r.results.tasks.gsm8k.metrics.accuracy.scores.accuracy.value;
  }

  it('runs two tasks as one Slurm job each, with exact scores and the artifacts fetched', async () => {
    fixture = await startFixtureServer({ answer: answerFromTable(table) });
    const worker = await startWorker();
    cleanups.push(() => worker.stop());
    const dir = tempDir('evalflow-slurm-run-');
    const submittedAt = Date.now();
    const inv = await start(dir, { tasks: 2 });
    let runningAfterS: number | undefined;
    await waitFor('a running job', async () => {
      const s = await status(inv).catch(() => undefined);
      if (s?.tasks.some((t) => t.stage === 'running' || t.stage === 'collecting' || t.stage === 'succeeded')) runningAfterS = (Date.now() - submittedAt) / 1000;
      return runningAfterS !== undefined;
    });
    const { status: final, error } = await finish(inv);
    expect(error).toBeUndefined();
    expect(final.tasks.map((t) => t.stage)).toEqual(['succeeded', 'succeeded']);
    for (const [i, task] of final.tasks.entries()) {
      expect(task.metrics?.gsm8k_accuracy).toBeCloseTo(4 / 12, 10);
      expect(accuracy(task.jobDir)).toBeCloseTo(4 / 12, 10);
      // Fetched over SFTP: results, per-sample outputs and logs; the response cache stays on the cluster.
      expect(readdirSync(join(task.jobDir, 'artifacts')).sort()).toEqual(expect.arrayContaining(['results.yml', 'eval_factory_metrics.json', 'nemo-evaluator-per-sample-outputs', 'run_config.yml']));
      expect(existsSync(join(task.jobDir, 'artifacts', 'cache'))).toBe(false);
      expect(readFileSync(join(task.jobDir, 'logs', 'client_stdout.log'), 'utf8')).toContain('starting the harness');
      expect(await submittedJobs(inv, `gsm8k.${i}`)).toHaveLength(1);
      expect(task.handle?.display).toMatch(/^Slurm job \d+ on 127\.0\.0\.1$/);
    }
    expect(fixture.totalRequests()).toBe(2 * N);
    console.log(`[slurm] submit→running latency ${runningAfterS?.toFixed(1)} s (evalflow run → first task running, as seen by the status query)`);
    const logs = await cli('logs', inv);
    expect(logs.stdout).toContain('starting the harness');
  });

  it('re-attaches to the same Slurm job after the worker is SIGKILLed: one sbatch, same scores', async () => {
    fixture = await startFixtureServer({ answer: answerFromTable(table), latencyMs: 300 });
    let workerA: ChildProcess | undefined = await spawnWorkerProcess();
    cleanups.push(() => void workerA?.kill('SIGKILL'));
    const dir = tempDir('evalflow-slurm-kill9-');
    const inv = await start(dir, { parallelism: 1 });
    await fixture.waitForRequests(3);
    const before = await submittedJobs(inv);
    workerA.kill('SIGKILL');
    workerA = undefined;
    const workerB: RunningWorker = await startWorker();
    cleanups.push(() => workerB.stop());
    const { status: final, error } = await finish(inv);
    expect(error).toBeUndefined();
    expect(final.tasks[0]?.stage).toBe('succeeded');
    expect(await submittedJobs(inv)).toEqual(before);
    expect(before).toHaveLength(1);
    expect(final.tasks[0]?.attempt).toBe(1);
    expect(accuracy(final.tasks[0]?.jobDir as string)).toBeCloseTo(4 / 12, 10);
    expect(fixture.totalRequests()).toBe(N);
  });

  it('rides out sshd down for 60 s and a slurmctld restart (SIGTERM) mid-job', async () => {
    // 30 samples at 3 s each, one at a time: the job still runs when sshd is back and slurmctld restarts.
    fixture = await startFixtureServer({ answer: answerFromTable(table), latencyMs: 3000 });
    const sshd = await PrivateSshd.start(lab);
    cleanups.push(() => sshd.stop());
    const worker = await startWorker();
    cleanups.push(() => worker.stop());
    const dir = tempDir('evalflow-slurm-outage-');
    const inv = await start(dir, { n: 30, parallelism: 1, sshPort: sshd.port });
    await fixture.waitForRequests(2);
    await sshd.stop();
    const outageStart = Date.now();
    await new Promise((r) => setTimeout(r, 60_000));
    expect((await status(inv)).tasks[0]?.stage).toBe('running');
    await sshd.resume();
    console.log(`[slurm] sshd was down ${((Date.now() - outageStart) / 1000).toFixed(0)} s`);

    process.kill(Number(readFileSync(lab.pidFiles.slurmctld, 'utf8').trim()), 'SIGTERM');
    await new Promise((r) => setTimeout(r, 5000));
    labUp();
    const { status: final, error } = await finish(inv);
    expect(error).toBeUndefined();
    expect(final.tasks[0]?.stage).toBe('succeeded');
    expect(final.tasks[0]?.attempt).toBe(1);
    expect(await submittedJobs(inv)).toHaveLength(1);
    expect(accuracy(final.tasks[0]?.jobDir as string)).toBeCloseTo(10 / 30, 10);
  });

  it('resubmits after a time limit and resumes from the cache; max_walltime bounds the resubmissions', async () => {
    fixture = await startFixtureServer({ answer: answerFromTable(table), latencyMs: 3000 });
    const other = await startFixtureServer({ answer: answerFromTable(table), latencyMs: 3000 });
    cleanups.push(() => other.close());
    const worker = await startWorker();
    cleanups.push(() => worker.stop());
    const resumed = tempDir('evalflow-slurm-timeout-');
    const bounded = tempDir('evalflow-slurm-maxwall-');
    // 30 samples at 3 s each, one at a time: 90 s of work against a 60 s time limit.
    const invResumed = await start(resumed, { n: 30, parallelism: 1, walltime: '00:01:00', maxWalltime: '00:10:00' });
    const invBounded = await start(bounded, { n: 30, parallelism: 1, walltime: '00:01:00', maxWalltime: '00:01:00', endpoint: other });

    const [r, b] = await Promise.all([finish(invResumed), finish(invBounded)]);
    expect(r.error).toBeUndefined();
    const task = r.status.tasks[0];
    expect(task?.stage).toBe('succeeded');
    expect(task?.attempt).toBeGreaterThanOrEqual(2);
    expect(accuracy(task?.jobDir as string)).toBeCloseTo(10 / 30, 10);
    const jobs = await submittedJobs(invResumed);
    expect(jobs.length).toBe(task?.attempt);

    expect(b.status.tasks[0]?.stage).toBe('failed');
    expect(b.error ?? b.status.tasks[0]?.error).toMatch(/max_walltime/);
    expect(await submittedJobs(invBounded)).toHaveLength(1);

    // Finished samples were not asked again: at most the one request in flight when a job hit its limit.
    const answered = [...fixture.answeredCounts().values()];
    const resent = fixture.totalRequests() - 30;
    console.log(`[slurm] time-limit resume: ${jobs.length} Slurm jobs (${jobs.join(', ')}); ${fixture.totalRequests()} requests for 30 samples (${resent} sent again), ${answered.length} distinct prompts answered, at most ${Math.max(...answered)} times each; the bounded run sent ${other.totalRequests()} requests before failing`);
    expect(answered).toHaveLength(30);
    expect(resent).toBeLessThanOrEqual(jobs.length - 1);
  });

  it('reports an external scancel as cancelled, and `evalflow kill` leaves nothing in squeue', async () => {
    fixture = await startFixtureServer({ answer: answerFromTable(table), latencyMs: 2000 });
    const worker = await startWorker();
    cleanups.push(() => worker.stop());
    const external = await start(tempDir('evalflow-slurm-scancel-'), { n: 30, parallelism: 1 });
    const killed = await start(tempDir('evalflow-slurm-kill-'), { n: 30, parallelism: 1 });
    await waitFor('both jobs running', async () => (await liveJobsOf(external)).some((l) => l.endsWith('RUNNING')) && (await liveJobsOf(killed)).some((l) => l.endsWith('RUNNING')));

    const [line] = await submittedJobs(external);
    await ssh.exec(`scancel ${line?.split(' ')[1]}`);
    const ext = await finish(external);
    expect(ext.status.tasks[0]?.stage).toBe('failed');
    expect(ext.error ?? ext.status.tasks[0]?.error).toMatch(/cancelled/);
    expect(await submittedJobs(external)).toHaveLength(1);

    const res = await cli('kill', killed);
    expect(res.code, res.stderr).toBe(0);
    const k = await finish(killed);
    expect(k.status.tasks[0]?.stage).toBe('cancelled');
    await waitFor('squeue without the invocation', async () => (await liveJobsOf(killed)).every((l) => !/PENDING|RUNNING|COMPLETING/.test(l)), 30);
  });

  it('starts the llama_cpp deployment inside the job and evaluates the real tiny model against it; nothing stays behind', async () => {
    const modelPath = await ensureModel();
    const port = await freePort();
    const worker = await startWorker();
    cleanups.push(() => worker.stop());
    const dir = tempDir('evalflow-slurm-deploy-');
    const n = 3;
    const config = writeConfig(
      dir,
      `
defaults:
  - execution: slurm/default
  - deployment: llama_cpp
  - _self_
execution:
  hostname: ${lab.host}
  username: ${lab.user}
  account: null
  output_dir: ${remoteRoot}/${dir.split('/').pop()}
  local_output_dir: ${dir}/results
  partition: ${lab.partition}
  gres: null
  sbatch_extra_flags: {exclusive: false}
  runtime: none
  harness_command: [${lab.nodePath}, ${distPath('harness', 'cli.js')}]
  model_server_command: [${lab.nodePath}, ${distPath('model-server', 'main.js')}]
  endpoint_readiness_timeout: 120
  walltime: "00:10:00"
  poll_interval: 1
  ssh:
    port: ${lab.port}
    key_file: ${lab.keyPath}
    host_key: "${lab.hostKey}"
deployment:
  model_path: ${modelPath}
  served_model_name: smollm2-in-job
  port: ${port}
  parallel: 2
evaluation:
  nemo_evaluator_config:
    config:
      params: {limit_samples: ${n}, parallelism: 2, temperature: 0, max_new_tokens: 96, request_timeout: 120}
  tasks:
    - name: evalflow.gsm8k
      dataset_dir: ${DATASETS}
`,
    );
    const res = await cli('run', '-c', config);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const inv = startedInvocationId(res.stdout);
    const { status: final, error } = await finish(inv);
    expect(error).toBeUndefined();
    const task = final.tasks[0];
    expect(task?.stage).toBe('succeeded');
    const jobDir = task?.jobDir as string;
    const results = readYaml<{ samples: { total: number; scored: number; errors: number } }>(join(jobDir, 'artifacts', 'results.yml'));
    expect(results.samples).toMatchObject({ total: n, scored: n, errors: 0 });
    const samples = readFileSync(join(jobDir, 'artifacts', 'nemo-evaluator-per-sample-outputs', 'gsm8k.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { generation: string; score: number });
    for (const sample of samples) expect(sample.generation.length).toBeGreaterThan(0);
    expect(task?.metrics?.gsm8k_accuracy).toBeCloseTo(samples.reduce((a, s) => a + s.score, 0) / n, 10);
    // The server ran as a step of the job, was waited for inside it, and went with it.
    const remoteJob = (await ssh.exec(`ls -d ${shellQuote(remoteRoot)}/*/*-${inv}/gsm8k.0`)).stdout.trim();
    const ready = /evalflow: deployment ready after (\d+) s/.exec((await ssh.exec(`cat ${shellQuote(remoteJob)}/logs/slurm-*.log`)).stdout);
    expect(ready).not.toBeNull();
    console.log(`[slurm] llama_cpp in the job: ready after ${ready?.[1]} s inside the job; gsm8k_accuracy ${task?.metrics?.gsm8k_accuracy} on ${n} samples`);
    expect((await ssh.exec(`cat ${shellQuote(remoteJob)}/logs/server_stdout.log`)).stdout).toMatch(/smollm2-in-job|listening|model/i);
    expect(await submittedJobs(inv)).toHaveLength(1);
    await waitFor('the model server gone', async () => !(await ssh.exec(`pgrep -u ${lab.user} -f ${shellQuote(`--port ${port}`)} || true`)).stdout.trim(), 30);
  });
});

