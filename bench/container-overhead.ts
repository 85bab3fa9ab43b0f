/**
 * Start-up overhead of the Docker runtime next to the process runtime: the same one-sample GSM8K run of
 * the built-in harness, launched through each executor (ProcessExecutor, DockerExecutor) against the
 * fixture endpoint, timed from `launch()` to the first request the endpoint receives, and to the end
 * (poll says succeeded). A measurement script, not a test: it prints figures, medians over `--repeat`.
 * Needs Docker at DOCKER_HOST (scripts/services/dockerd.sh) and a build (`npm run build`).
 *
 *   node dist/bench/container-overhead.js [--repeat 5]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DockerExecutor } from '../backends/local/docker/executor.js';
import { connectDocker } from '../backends/local/docker/client.js';
import { localHostIdentity } from '../backends/local/host.js';
import { ProcessExecutor } from '../backends/local/process.js';
import type { Executor, LaunchSpec } from '../backends/types.js';
import { packageRoot } from '../common/paths.js';
import { launchName } from '../core/ids.js';
import { ensureLocalImage } from '../docker/images.js';
import { startFixtureServer } from '../common/fixture-endpoint.js';

const DATASETS = resolve(packageRoot(), '..', 'shared', 'datasets');

interface Sample {
  firstRequestMs: number;
  endMs: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { repeat: { type: 'string', default: '5' } } });
  const repeat = Number(values.repeat);
  const host = localHostIdentity();
  const docker = connectDocker();
  const image = await ensureLocalImage(docker, 'harness');
  const executors: Record<'process' | 'docker', Executor> = {
    process: new ProcessExecutor({ host }) as Executor,
    docker: new DockerExecutor({ host, docker, harnessImage: image.tag }) as Executor,
  };
  const fixture = await startFixtureServer({ answer: () => 'The final answer is 42', record: false });
  const results: Record<string, Sample[]> = { process: [], docker: [] };
  try {
    // Interleaved, so a burst of load from elsewhere hits both runtimes alike.
    for (let i = 0; i < repeat; i++) {
      for (const kind of ['process', 'docker'] as const) results[kind]?.push(await once(executors[kind], kind, fixture));
    }
  } finally {
    await fixture.close();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  console.log(`harness image ${image.tag}; ${repeat} interleaved runs per runtime; Docker at ${process.env.DOCKER_HOST ?? '(default)'}`);
  console.log('runtime   launch → first request (median, all ms)            launch → done (median ms)');
  for (const [kind, samples] of Object.entries(results)) {
    const first = samples.map((s) => s.firstRequestMs);
    console.log(`${kind.padEnd(9)} ${String(median(first)).padStart(6)}  [${first.join(', ')}]`.padEnd(60) + String(median(samples.map((s) => s.endMs))).padStart(8));
  }
  const overhead = median(results.docker?.map((s) => s.firstRequestMs) ?? []) - median(results.process?.map((s) => s.firstRequestMs) ?? []);
  console.log(`docker start overhead over the process runtime: ${overhead} ms (median to first request)`);
}

async function once(executor: Executor, kind: 'process' | 'docker', fixture: Awaited<ReturnType<typeof startFixtureServer>>): Promise<Sample> {
  const dir = mkdtempSync(join(tmpdir(), 'evalflow-overhead-'));
  const jobDir = join(dir, 'gsm8k.0');
  const jobId = `${randomBytes(8).toString('hex')}.0`;
  const inContainer = kind === 'docker';
  const spec: LaunchSpec = {
    jobId,
    jobDir,
    attempt: 1,
    name: launchName(jobId, 1),
    executor: inContainer ? { kind: 'docker', extraDockerArgs: '', mounts: {}, dataset: { source: DATASETS, target: '/datasets' } } : { kind: 'process' },
    builtinHarness: true,
    runConfig: {
      config: { type: 'gsm8k', output_dir: inContainer ? '/results' : join(jobDir, 'artifacts'), params: { limit_samples: 1, extra: { dataset_dir: inContainer ? '/datasets' : DATASETS } } },
      target: { api_endpoint: { url: `${fixture.url}/v1/chat/completions`, model_id: 'fixture-model', type: 'chat' } },
    },
    env: {},
    runtimeEnv: {},
  };
  const before = fixture.totalRequests();
  const started = Date.now();
  let firstRequestMs = -1;
  void fixture.waitForRequests(before + 1).then(() => (firstRequestMs = Date.now() - started));
  const handle = await executor.launch(spec);
  for (;;) {
    const { outcome } = await executor.poll(handle);
    if (outcome.kind !== 'running' && outcome.kind !== 'queued') {
      if (outcome.kind !== 'succeeded') throw new Error(`${kind} run ended ${outcome.kind}: ${JSON.stringify(outcome)}`);
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const endMs = Date.now() - started;
  await executor.stopJob({ jobId, jobDir });
  rmSync(dir, { recursive: true, force: true });
  return { firstRequestMs, endMs };
}

await main();
