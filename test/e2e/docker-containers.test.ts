/**
 * The container layer against a real Docker engine (the private dockerd of scripts/services/dockerd.sh in
 * CI): the harness image built without a registry, create-or-adopt, mounts, secrets, log copying across
 * "worker restarts", exit classification (OOM included), extra_docker_args, teardown by label.
 * Mandatory under EVALFLOW_E2E=1; skipped only when that is unset and no engine answers.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDockerArgs } from '../../backends/local/docker/args.js';
import { ContainerRuntime } from '../../backends/local/docker/containers.js';
import { appendLauncherLine } from '../../backends/local/docker/logs.js';
import type { ContainerIdentity } from '../../backends/local/docker/names.js';
import type { ContainerSpec } from '../../backends/local/docker/spec.js';
import { writeEnvFile } from '../../common/env-file.js';
import { ensureLocalImage } from '../../docker/images.js';
import { answerFromTable, startFixtureServer } from '../../common/fixture-endpoint.js';
import { testDocker } from '../support/docker.js';
import { DATASETS, gsm8kHead, readYaml, tempDir } from '../support/run-helpers.js';

const docker = await testDocker();
const invocations: string[] = [];

function newInvocation(): string {
  const id = randomBytes(8).toString('hex');
  invocations.push(id);
  return id;
}

function identity(invocationId: string, job = 0, attempt = 1, role: ContainerIdentity['role'] = 'harness'): ContainerIdentity {
  return { invocationId, jobId: `${invocationId}.${job}`, attempt, role };
}

async function waitForEnd(runtime: ContainerRuntime, name: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const outcome = await runtime.outcome(name);
    if (outcome.state !== 'running' && outcome.state !== 'created') return outcome;
    if (Date.now() > deadline) throw new Error(`${name} still ${outcome.state} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function isPodman(): Promise<boolean> {
  const version = await (docker as Docker).version();
  return (version.Components ?? []).some((c) => /podman/i.test(c.Name));
}

describe.skipIf(!docker)('docker container layer (real engine)', () => {
  let runtime: ContainerRuntime;
  let image: string;
  const node = (script: string) => ({ entrypoint: ['node', '-e', script], cmd: [] as string[] });

  beforeAll(async () => {
    runtime = new ContainerRuntime(docker as Docker);
    const built = await ensureLocalImage(docker as Docker, 'harness');
    image = built.tag;
    console.log(`[docker] harness image ${image}: ${built.built ? `built in ${built.ms} ms (${((built.bytes ?? 0) / 1e6).toFixed(0)} MB)` : `up to date (${built.ms} ms)`}`);
  });

  afterAll(async () => {
    if (!docker) return;
    for (const invocationId of invocations) await runtime.removeAll({ invocationId }, 1);
    for (const invocationId of invocations) expect(await runtime.list({ invocationId })).toEqual([]);
  });

  it('builds the harness image once per content, and its entrypoint runs run_eval', async () => {
    const again = await ensureLocalImage(docker as Docker, 'harness');
    expect(again).toMatchObject({ tag: image, built: false });
    expect(image).toMatch(/^evalflow\/harness:\d+\.\d+\.\d+[\w.-]*-[0-9a-f]{12}$/);
    const inv = newInvocation();
    const dir = tempDir();
    const launched = await runtime.createOrAdopt({ identity: identity(inv), image, cmd: ['run_eval', '--help'] });
    expect(await waitForEnd(runtime, launched.name)).toEqual({ state: 'succeeded' });
    await runtime.syncLogs(launched.name, join(dir, 'client_stdout.log'));
    expect(readFileSync(join(dir, 'client_stdout.log'), 'utf8')).toMatch(/^usage: run_eval --run_config FILE/);
  });

  it('creates once and adopts on a retried launch: one container, init, host network, labels', async () => {
    const inv = newInvocation();
    const spec: ContainerSpec = { identity: identity(inv, 4, 2), image, ...node('setInterval(() => {}, 1000)') };
    const first = await runtime.createOrAdopt(spec);
    const second = await new ContainerRuntime(docker as Docker).createOrAdopt(spec); // another worker
    expect(first).toMatchObject({ name: `evalflow-${inv}.4-a2`, adopted: false });
    expect(second).toEqual({ ...first, adopted: true });
    const listed = await runtime.list({ invocationId: inv, jobId: `${inv}.4` });
    expect(listed).toEqual([{ id: first.id, name: first.name, state: 'running', identity: identity(inv, 4, 2) }]);
    const info = await runtime.inspect(first.name);
    expect(info?.HostConfig).toMatchObject({ Init: true, NetworkMode: 'host' });
    expect(info?.Config.Labels).toMatchObject({ 'evalflow.invocation': inv, 'evalflow.job': `${inv}.4`, 'evalflow.attempt': '2', 'evalflow.role': 'harness' });

    // A container that was created but never started (the worker died in between) is started on adoption.
    const pending = { identity: identity(inv, 5), image, ...node('console.log("started late")') };
    const { createOptions } = await import('../../backends/local/docker/spec.js');
    await (docker as Docker).createContainer(createOptions(pending));
    expect((await runtime.inspect(`evalflow-${inv}.5-a1`))?.State.Status).toBe('created');
    expect(await runtime.createOrAdopt(pending)).toMatchObject({ adopted: true });
    expect(await waitForEnd(runtime, `evalflow-${inv}.5-a1`)).toEqual({ state: 'succeeded' });

    // A stranger under our name is not adopted.
    await (docker as Docker).createContainer({ name: `evalflow-${inv}.6-a1`, Image: image, Labels: { 'evalflow.invocation': inv } });
    await expect(runtime.createOrAdopt({ identity: identity(inv, 6), image, cmd: [] })).rejects.toThrow(/exists but is not this job's \(label evalflow.job=<none>/);
    await (docker as Docker).getContainer(`evalflow-${inv}.6-a1`).remove({ force: true });
  });

  it('untilExited wakes when the container exits; waits out maxWaitMs while it runs, before it starts, or when it is gone', async () => {
    const inv = newInvocation();
    const waitsOut = async (name: string) => {
      const t0 = Date.now();
      await runtime.untilExited(name, 300);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    };
    const launched = await runtime.createOrAdopt({ identity: identity(inv, 7), image, ...node('setTimeout(() => {}, 3000)') });
    await waitsOut(launched.name);
    expect((await runtime.outcome(launched.name)).state).toBe('running');
    const t0 = Date.now();
    await runtime.untilExited(launched.name, 60_000);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(await runtime.outcome(launched.name)).toEqual({ state: 'succeeded' });
    const { createOptions } = await import('../../backends/local/docker/spec.js');
    const pending = { identity: identity(inv, 8), image, ...node('') };
    await (docker as Docker).createContainer(createOptions(pending));
    await waitsOut(`evalflow-${inv}.8-a1`); // created, never started
    await waitsOut(`evalflow-${inv}.9-a1`); // no such container
  });

  it('mounts results read-write and datasets read-only; extra_docker_args reach the container', async () => {
    const inv = newInvocation();
    const dir = tempDir();
    mkdirSync(join(dir, 'artifacts'));
    mkdirSync(join(dir, 'data'));
    writeFileSync(join(dir, 'data', 'in.txt'), 'dataset line\n');
    const script = `
      const fs = require('fs');
      const limits = fs.readFileSync('/proc/self/limits', 'utf8').split('\\n').find((l) => l.startsWith('Max processes'));
      let ro = 'writable';
      try { fs.writeFileSync('/datasets/x', 'x'); } catch (e) { ro = e.code; }
      fs.writeFileSync('/results/out.txt', fs.readFileSync('/datasets/in.txt', 'utf8').toUpperCase());
      console.log(JSON.stringify({ ro, limits: limits.split(/\\s+/).slice(2, 4), mode: process.env.MODE, shm: fs.statfsSync('/dev/shm').blocks * fs.statfsSync('/dev/shm').bsize }));`;
    const launched = await runtime.createOrAdopt({
      identity: identity(inv),
      image,
      ...node(script),
      mounts: [
        { source: join(dir, 'artifacts'), target: '/results' },
        { source: join(dir, 'data'), target: '/datasets', readOnly: true },
      ],
      dockerArgs: parseDockerArgs('--shm-size 32m --pids-limit 64 --ulimit nofile=20000:20000 --ulimit nproc=512:1024 -e MODE=test -l team=eval'),
    });
    expect(await waitForEnd(runtime, launched.name)).toEqual({ state: 'succeeded' });
    const log = join(dir, 'client_stdout.log');
    await runtime.syncLogs(launched.name, log);
    expect(JSON.parse(readFileSync(log, 'utf8'))).toEqual({ ro: 'EROFS', limits: ['512', '1024'], mode: 'test', shm: 32 * 1024 * 1024 });
    expect(readFileSync(join(dir, 'artifacts', 'out.txt'), 'utf8')).toBe('DATASET LINE\n');
    const info = await runtime.inspect(launched.name);
    expect(info?.HostConfig).toMatchObject({ PidsLimit: 64, ShmSize: 32 * 1024 * 1024 });
    expect(info?.Config.Labels.team).toBe('eval');
  });

  it('runs a real evaluation in the harness image: secrets only through the mounted file, exact scores', async () => {
    const apiKey = `sk-docker-${randomBytes(12).toString('hex')}`;
    const questions = gsm8kHead(3);
    const fixture = await startFixtureServer({ answer: answerFromTable(Object.fromEntries(questions.map((q) => [q.question, `The final answer is ${q.answer}`]))) });
    try {
      const inv = newInvocation();
      const jobDir = join(tempDir(), 'gsm8k.0');
      mkdirSync(join(jobDir, 'artifacts'), { recursive: true });
      writeFileSync(
        join(jobDir, 'config_ef.yaml'),
        stringify({
          config: { type: 'gsm8k', output_dir: '/results', params: { limit_samples: 3, parallelism: 2, extra: { dataset_dir: '/datasets' } } },
          target: { api_endpoint: { url: `${fixture.url}/v1/chat/completions`, model_id: 'fixture-model', type: 'chat', api_key_name: 'EVALFLOW_API_KEY' } },
        }),
      );
      writeEnvFile(join(jobDir, '.secrets.env'), { EVALFLOW_API_KEY: apiKey });
      expect(statSync(join(jobDir, '.secrets.env')).mode & 0o777).toBe(0o600);
      const log = join(jobDir, 'logs', 'client_stdout.log');
      mkdirSync(join(jobDir, 'logs'));
      appendLauncherLine(log, '=== launching the harness container');
      const launched = await runtime.createOrAdopt({
        identity: identity(inv),
        image,
        cmd: ['run_eval', '--run_config', '/evalflow/config_ef.yaml'],
        secretsFile: join(jobDir, '.secrets.env'),
        mounts: [
          { source: join(jobDir, 'config_ef.yaml'), target: '/evalflow/config_ef.yaml', readOnly: true },
          { source: join(jobDir, 'artifacts'), target: '/results' },
          { source: DATASETS, target: '/datasets', readOnly: true },
        ],
        user: `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`,
      });
      expect(JSON.stringify(await runtime.inspect(launched.name))).not.toContain(apiKey);
      expect(await waitForEnd(runtime, launched.name)).toEqual({ state: 'succeeded' });
      await runtime.syncLogs(launched.name, log);

      const results = readYaml<{ results: { tasks: { gsm8k: { metrics: Record<string, { scores: Record<string, { value: number }> }> } } } }>(join(jobDir, 'artifacts', 'results.yml'));
      expect(Object.values(results.results.tasks.gsm8k.metrics).map((m) => Object.values(m.scores).map((s) => s.value))).toEqual([[1]]);
      expect(fixture.requests.map((r) => r.authorization)).toEqual([`Bearer ${apiKey}`, `Bearer ${apiKey}`, `Bearer ${apiKey}`]);
      const logText = readFileSync(log, 'utf8');
      expect(logText).toMatch(/^=== launching the harness container\n/);
      expect(logText).toContain('results written to /results/results.yml');
      expect(logText).not.toContain(apiKey);

      expect(await runtime.remove(launched.name)).toBe(true);
      expect(existsSync(join(jobDir, '.secrets.env'))).toBe(false);
      expect(await runtime.remove(launched.name)).toBe(false);
      expect(await runtime.outcome(launched.name)).toEqual({ state: 'missing' });
    } finally {
      await fixture.close();
    }
  });

  it('copies logs across worker restarts and an interrupted append without losing or doubling a line', async () => {
    const inv = newInvocation();
    const log = join(tempDir(), 'client_stdout.log');
    const script = `let i = 0; const t = setInterval(() => { i++; (i % 2 ? process.stdout : process.stderr).write('line ' + i + (i % 2 ? ' out' : ' err') + '\\n'); if (i === 60) { clearInterval(t); } }, 25);`;
    appendLauncherLine(log, '=== banner');
    const launched = await runtime.createOrAdopt({ identity: identity(inv), image, ...node(script) });
    let syncs = 0;
    let interrupted = false;
    for (let outcome = await runtime.outcome(launched.name); ; outcome = await runtime.outcome(launched.name)) {
      // Each sync is a fresh runtime, as after a worker restart.
      await new ContainerRuntime(docker as Docker).syncLogs(launched.name, log);
      syncs++;
      if (!interrupted && readFileSync(log, 'utf8').includes('line 10 ')) {
        appendFileSync(log, 'line 11 out\nline 12 e'); // appended, cursor not saved: the next sync must cut this off
        interrupted = true;
      }
      if (outcome.state === 'succeeded') break;
      await new Promise((r) => setTimeout(r, 150));
    }
    await runtime.syncLogs(launched.name, log);
    expect(interrupted).toBe(true);
    expect(syncs).toBeGreaterThan(2);
    const expected = ['=== banner', ...Array.from({ length: 60 }, (_, k) => `line ${k + 1} ${(k + 1) % 2 ? 'out' : 'err'}`)];
    expect(readFileSync(log, 'utf8')).toBe(`${expected.join('\n')}\n`);
  });

  it('classifies endings: failure with its output, OOM kill, SIGKILL, and a fast stop through init', async () => {
    const inv = newInvocation();
    const failing = await runtime.createOrAdopt({ identity: identity(inv, 0), image, ...node('console.log("step 1"); console.error("boom: bad thing"); process.exit(7)') });
    expect(await waitForEnd(runtime, failing.name)).toEqual({ state: 'failed', exitCode: 7, reason: `container ${failing.name} exited with code 7; last output:\nstep 1\nboom: bad thing` });

    const hog = await runtime.createOrAdopt({
      identity: identity(inv, 1),
      image,
      ...node('const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1));'),
      dockerArgs: parseDockerArgs('--memory 64m'),
    });
    expect(await waitForEnd(runtime, hog.name)).toMatchObject({ state: 'oomKilled', exitCode: 137 });
    // Docker sets OOMKilled; Podman (4.3) never does, and the layer infers the kill from exit 137 under the limit.
    expect((await runtime.inspect(hog.name))?.State.OOMKilled).toBe(!(await isPodman()));

    const sleeper = await runtime.createOrAdopt({ identity: identity(inv, 2), image, ...node('setInterval(() => {}, 1000)') });
    await (docker as Docker).getContainer(sleeper.name).kill();
    expect(await waitForEnd(runtime, sleeper.name)).toMatchObject({ state: 'signalled', signal: 'SIGKILL', exitCode: 137 });

    // node as PID 1 would ignore SIGTERM; with Init it gets it and ends at once, far within the grace time.
    const stopped = await runtime.createOrAdopt({ identity: identity(inv, 3), image, ...node('setInterval(() => {}, 1000)') });
    const started = Date.now();
    expect(await runtime.stop(stopped.name, 20)).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await runtime.outcome(stopped.name)).toMatchObject({ state: 'signalled', signal: 'SIGTERM', exitCode: 143 });
    expect(await runtime.stop(stopped.name)).toBe(false);
  });

  it('removes everything of a job, then of an invocation, by label', async () => {
    const inv = newInvocation();
    const other = newInvocation();
    const forever = node('setInterval(() => {}, 1000)');
    for (const id of [identity(inv, 0), identity(inv, 0, 2), identity(inv, 1), identity(inv, 0, 1, 'server'), identity(other, 0)]) {
      await runtime.createOrAdopt({ identity: id, image, ...forever });
    }
    expect((await runtime.list({ invocationId: inv })).map((c) => c.name)).toEqual([
      `evalflow-${inv}.0-a1`,
      `evalflow-${inv}.0-a1-server`,
      `evalflow-${inv}.0-a2`,
      `evalflow-${inv}.1-a1`,
    ]);
    expect(await runtime.removeAll({ invocationId: inv, jobId: `${inv}.1` }, 1)).toEqual([`evalflow-${inv}.1-a1`]);
    expect(await runtime.list({ invocationId: inv, jobId: `${inv}.1` })).toEqual([]);
    expect(await runtime.removeAll({ invocationId: inv }, 1)).toHaveLength(3);
    expect(await runtime.list({ invocationId: inv })).toEqual([]);
    expect((await runtime.list({ invocationId: other })).map((c) => c.state)).toEqual(['running']);
  });
});
