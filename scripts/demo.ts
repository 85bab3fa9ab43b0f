/**
 * `npm run demo`: the main job on embedded defaults. Gets (or reuses) a Temporal dev server, the tiny
 * CPU model server and a worker, runs examples/demo.yaml (GSM8K + MMLU, a handful of samples each)
 * with live progress, prints the results table and where everything is, and stops what it started.
 */
import { join } from 'node:path';
import { request } from 'undici';
import { runCommand } from '../client/commands/run.js';
import { stdio } from '../client/output.js';
import { packageRoot } from '../common/paths.js';
import { connectClient, temporalTarget, workerIsPolling } from '../common/temporal.js';
import { ensureModel } from '../model-server/model-file.js';
import { startModelServer } from '../model-server/server.js';
import { runWorker } from '../worker/main.js';
import { portOpen, startDevServer, waitForServer } from './temporal-dev-server.js';

const log = (line: string) => process.stdout.write(`[demo] ${line}\n`);
const started = Date.now();
const cleanups: Array<() => Promise<void>> = [];

async function main(): Promise<number> {
  const target = temporalTarget();
  let uiUrl = process.env.EVALFLOW_TEMPORAL_UI ?? 'http://127.0.0.1:8233';
  if (await portOpen(target.address)) {
    await waitForServer(target.address, 30_000);
    log(`using the Temporal server already running at ${target.address}`);
  } else {
    const port = Number(target.address.split(':')[1] ?? 7233);
    log(`starting a Temporal dev server on ${target.address} (SQLite in .tools/temporal.db) …`);
    const server = await startDevServer({ port, uiPort: port + 1000, log });
    uiUrl = server.uiUrl ?? uiUrl;
    cleanups.push(() => server.stop());
    log(`Temporal dev server ready; Web UI at ${uiUrl}`);
  }

  const modelBase = process.env.EVALFLOW_DEMO_MODEL_URL ?? 'http://127.0.0.1:8000';
  if (await healthy(modelBase)) {
    log(`using the model server already running at ${modelBase}`);
  } else {
    const modelPath = await ensureModel({ log });
    log('loading SmolLM2-135M-Instruct on CPU …');
    const server = await startModelServer({ modelPath, port: Number(new URL(modelBase).port || 8000), log });
    cleanups.push(() => server.close());
    log(`model server ready at ${server.url}`);
  }

  if (!(await workerRunning())) {
    log('starting a worker on task queue evalflow');
    let stopWorker: () => void = () => undefined;
    const until = new Promise<void>((resolve) => (stopWorker = resolve));
    let ready: () => void = () => undefined;
    const isReady = new Promise<void>((resolve) => (ready = resolve));
    const worker = runWorker({ until, onReady: ready, logLevel: 'WARN' });
    await Promise.race([isReady, worker]);
    cleanups.push(async () => {
      stopWorker();
      await worker;
    });
  } else {
    log('using the worker(s) already polling task queue evalflow');
  }

  let invocationId = '';
  const code = await runCommand(
    {
      configPath: join(packageRoot(), 'examples', 'demo.yaml'),
      cwd: packageRoot(),
      overrides: [`target.api_endpoint.url=${modelBase}/v1/chat/completions`],
      wait: true,
      onStarted: (input) => (invocationId = input.invocationId),
    },
    stdio,
  );
  log(`finished in ${((Date.now() - started) / 1000).toFixed(1)} s (exit code ${code})`);
  if (invocationId) {
    log(`in the Temporal UI: ${uiUrl}/namespaces/${target.namespace}/workflows/evalflow-${invocationId}`);
    log(`with the Temporal CLI: temporal workflow query --workflow-id evalflow-${invocationId} --name status`);
  }
  return code;
}

async function healthy(base: string): Promise<boolean> {
  try {
    const res = await request(`${base}/health`, { headersTimeout: 2000, bodyTimeout: 2000 });
    await res.body.dump();
    return res.statusCode === 200;
  } catch {
    return false;
  }
}

async function workerRunning(): Promise<boolean> {
  const client = await connectClient();
  try {
    return await workerIsPolling(client, temporalTarget().namespace);
  } finally {
    await client.connection.close();
  }
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (err) {
  process.stderr.write(`[demo] error: ${(err as Error).message}\n`);
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((err: unknown) => log(`cleanup: ${(err as Error).message}`));
}
process.exit(exitCode);
