/**
 * History confidentiality on the real Temporal dev server: with EVALFLOW_CODEC_KEY_FILE set on the CLI
 * and a real `evalflow worker` process, a run completes; its histories, read without the key (by the SDK
 * and by `temporal workflow show`), show no config value in clear; `temporal workflow show
 * --codec-endpoint` pointed at a real `evalflow codec-server` shows them. Keys rotate; a worker with the
 * wrong key or a key file others may read fails clearly.
 */
import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CODEC_KEY_FILE_ENV } from '../../common/codec.js';
import { distPath } from '../../common/paths.js';
import { connectClient } from '../../common/temporal.js';
import { findTemporalCli, startDevServer } from '../../scripts/temporal-dev-server.js';
import { answerFromTable, startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import { freePort } from '../../common/ports.js';
import { cli, DATASETS, gsm8kHead, startedInvocationId, tempDir, writeConfig } from '../support/run-helpers.js';
import { spawnEvalflow, testClient, testTarget, type SpawnedEvalflow } from '../support/temporal.js';

const execFileAsync = promisify(execFile);
const dir = tempDir('evalflow-codec-it-');
const MODEL = 'codec-model-7f3a9c';
const LIT = 'lit-value-5e8d21b4';
const TOKEN = 'codec-server-token-91c2';
const key = (byte: number) => Buffer.alloc(32, byte).toString('base64');

function secretFile(name: string, text: string, mode = 0o600): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  chmodSync(file, mode);
  return file;
}

const KEYS_V1 = secretFile('keys-v1', `k1 ${key(1)}\n`);
const KEYS_V2 = secretFile('keys-v2', `# k2 is current; k1 stays for the runs it encrypted\nk2 ${key(2)}\nk1 ${key(1)}\n`);
const KEYS_K2_ONLY = secretFile('keys-k2', `k2 ${key(2)}\n`);
const KEYS_WRONG = secretFile('keys-wrong', `k1 ${key(3)}\n`);
const TOKEN_FILE = secretFile('token', `${TOKEN}\n`);

/** Everything a history holds, bytes decoded as text: what anyone with read access to the server sees. */
function historyText(node: unknown): string {
  if (node instanceof Uint8Array) return Buffer.from(node).toString('utf8');
  if (Array.isArray(node)) return node.map(historyText).join('\n');
  if (node !== null && typeof node === 'object') return Object.values(node).map(historyText).join('\n');
  return String(node);
}

/** Text plus every base64 run in it decoded, so a value is not "hidden" by mere base64. */
function readable(text: string): string {
  const decoded = [...text.matchAll(/[A-Za-z0-9+/]{16,}={0,2}/g)].map((m) => Buffer.from(m[0], 'base64').toString('utf8'));
  return [text, ...decoded].join('\n');
}

function temporalShow(workflowId: string, extra: string[] = [], output: 'json' | 'text' = 'json'): string {
  const res = spawnSync(
    findTemporalCli(),
    ['workflow', 'show', '--workflow-id', workflowId, '--address', testTarget().address, '--namespace', 'default', '--output', output, ...extra],
    { encoding: 'utf8', timeout: 60_000 },
  );
  if (res.status !== 0) throw new Error(`temporal workflow show failed (${res.status}): ${res.stderr}`);
  return res.stdout;
}

function runConfig(runDir: string, fixture: FixtureServer): string {
  return writeConfig(
    runDir,
    `
execution: {output_dir: ${runDir}/results, runtime: process}
target:
  api_endpoint:
    url: ${fixture.url}/v1/chat/completions
    model_id: ${MODEL}
evaluation:
  nemo_evaluator_config: {config: {params: {limit_samples: 2}}}
  tasks:
    - name: evalflow.gsm8k
      dataset_dir: ${DATASETS}
      env_vars:
        PRIVATE_NOTE: lit:${LIT}
`,
  );
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

describe('payload codec on the real server', () => {
  let fixture: FixtureServer;
  let plainClient: Client;
  let worker: SpawnedEvalflow | undefined;
  let codecServer: SpawnedEvalflow | undefined;
  const runs: Array<{ inv: string; runDir: string }> = [];

  const startWorkerWith = async (keyFile: string) => {
    await stop(worker?.child);
    worker = await spawnEvalflow(['worker'], { [CODEC_KEY_FILE_ENV]: keyFile }, /evalflow worker ready/);
  };
  const run = async () => {
    const runDir = tempDir('evalflow-codec-run-');
    const res = await cli('run', '-c', runConfig(runDir, fixture), '--wait');
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const inv = startedInvocationId(res.stdout);
    runs.push({ inv, runDir });
    return { inv, runDir };
  };

  beforeAll(async () => {
    process.env.TEMPORAL_ADDRESS = testTarget().address;
    const table = Object.fromEntries(gsm8kHead(2).map(({ question, answer }) => [question, `The final answer is ${answer}`]));
    fixture = await startFixtureServer({ answer: answerFromTable(table) });
    plainClient = await testClient();
  });
  afterEach(() => {
    delete process.env[CODEC_KEY_FILE_ENV];
  });
  afterAll(async () => {
    await stop(worker?.child);
    await stop(codecServer?.child);
    await fixture?.close();
    await plainClient?.connection.close();
  });

  it('a run with the codec on completes, and its history shows no config value without the key', async () => {
    process.env[CODEC_KEY_FILE_ENV] = KEYS_V1;
    await startWorkerWith(KEYS_V1);
    const { inv, runDir } = await run();
    const status = await cli('status', inv, '--json');
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('SUCCESS');

    const secrets = [MODEL, LIT, 'gsm8k', runDir];
    for (const workflowId of [`evalflow-${inv}`, `evalflow-${inv}.0`]) {
      const raw = historyText(await plainClient.workflow.getHandle(workflowId).fetchHistory());
      expect(raw).toContain('binary/encrypted');
      const shown = readable(temporalShow(workflowId));
      for (const secret of secrets) {
        expect(raw, `${workflowId} raw history`).not.toContain(secret);
        expect(shown, `${workflowId} temporal workflow show`).not.toContain(secret);
      }
    }
    // The run is still listed and readable with the key: the model comes from the encrypted memo.
    const ls = await cli('ls', 'runs', '--json', '--limit', '5');
    expect(ls.stdout).toContain(MODEL);
    // Without the key it is listed too (ids, times, stage), its memo fields shown as encrypted.
    delete process.env[CODEC_KEY_FILE_ENV];
    const lsPlain = await cli('ls', 'runs', '--json', '--limit', '5');
    expect(lsPlain.code, lsPlain.stderr).toBe(0);
    const listed = (JSON.parse(lsPlain.stdout) as Array<{ invocation_id: string; model: string; run_dir: string; stage: string }>).find((r) => r.invocation_id === inv);
    expect(listed).toMatchObject({ model: '(encrypted)', run_dir: '(encrypted)', stage: 'succeeded' });
  });

  it('failure messages are encrypted too, and read back with the key', async () => {
    process.env[CODEC_KEY_FILE_ENV] = KEYS_V1;
    const runDir = tempDir('evalflow-codec-run-');
    const deadUrl = `http://127.0.0.1:${await freePort()}/v1/chat/completions`;
    const res = await cli('run', '-c', runConfig(runDir, fixture), '-o', `target.api_endpoint.url=${deadUrl}`, '-o', 'execution.endpoint_readiness_timeout=1', '--wait');
    expect(res.code).toBe(1);
    // The CLI (with the key) shows the cause…
    expect(res.stdout + res.stderr).toContain(`endpoint ${deadUrl} was not ready within 1 s`);
    const inv = startedInvocationId(res.stdout);
    // …which the history holds only encrypted: in the child's activity failure and in both workflows' failures.
    for (const workflowId of [`evalflow-${inv}`, `evalflow-${inv}.0`]) {
      const raw = historyText(await plainClient.workflow.getHandle(workflowId).fetchHistory());
      expect(raw).toContain('Encoded failure');
      for (const secret of [deadUrl, MODEL, 'gsm8k', runDir]) expect(raw, workflowId).not.toContain(secret);
    }
  });

  it('temporal workflow show --codec-endpoint shows them through evalflow codec-server', async () => {
    const [first] = runs;
    if (!first) throw new Error('the first test did not run');
    codecServer = await spawnEvalflow(['codec-server', '--port', '0', '--token-file', TOKEN_FILE], { [CODEC_KEY_FILE_ENV]: KEYS_V1 }, /codec server at (http:\/\/\S+)/);
    const endpoint = /codec server at (http:\/\/\S+)/.exec(codecServer.output())?.[1] as string;
    for (const workflowId of [`evalflow-${first.inv}`, `evalflow-${first.inv}.0`]) {
      const codecFlags = ['--codec-endpoint', endpoint, '--codec-auth', `Bearer ${TOKEN}`];
      // The JSON form holds every event (payload data stays base64 there, as in proto3 JSON)…
      const json = readable(temporalShow(workflowId, codecFlags));
      for (const secret of [MODEL, LIT, 'gsm8k', first.runDir]) expect(json, workflowId).toContain(secret);
      // …the text form prints the decoded result, which without the codec is only ciphertext.
      expect(temporalShow(workflowId, codecFlags, 'text')).toMatch(new RegExp(`Result\\s+\\{.*${first.runDir}.*gsm8k`));
      expect(temporalShow(workflowId, [], 'text')).toMatch(/ResultEncoding\s+binary\/encrypted/);
    }
    // Without the token the codec server refuses, so the CLI cannot decode.
    const refused = spawnSync(
      findTemporalCli(),
      ['workflow', 'show', '--workflow-id', `evalflow-${first.inv}`, '--address', testTarget().address, '--output', 'json', '--codec-endpoint', endpoint],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(readable(refused.stdout)).not.toContain(MODEL);
    await stop(codecServer.child);
  });

  it('a Web UI started with --ui-codec-endpoint decodes through evalflow codec-server, from its origin', async () => {
    const [first] = runs;
    if (!first) throw new Error('the first test did not run');
    const [port, uiPort] = [await freePort(), await freePort()];
    const uiOrigin = `http://127.0.0.1:${uiPort}`;
    const server = await spawnEvalflow(['codec-server', '--port', '0', '--cors-origin', uiOrigin], { [CODEC_KEY_FILE_ENV]: KEYS_V1 }, /codec server at (http:\/\/\S+)/);
    const endpoint = /codec server at (http:\/\/\S+)/.exec(server.output())?.[1] as string;
    const ui = await startDevServer({ port, uiPort, uiCodecEndpoint: endpoint, dbFile: join(dir, 'ui.db'), logFile: join(dir, 'ui.log'), startTimeoutS: 120 });
    try {
      // What the UI tells the browser: decode with this endpoint.
      const settings = await request(`${uiOrigin}/api/v1/settings`);
      expect(((await settings.body.json()) as { Codec: { Endpoint: string } }).Codec.Endpoint).toBe(endpoint);
      // What the browser then does, from the UI's origin: a CORS preflight, then POST /decode with X-Namespace.
      const preflight = await request(`${endpoint}/decode`, {
        method: 'OPTIONS',
        headers: { origin: uiOrigin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' },
      });
      await preflight.body.dump();
      expect(preflight.statusCode).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBe(uiOrigin);
      const history = await plainClient.workflow.getHandle(`evalflow-${first.inv}`).fetchHistory();
      const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      const b64 = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('base64');
      const body = { payloads: [{ metadata: Object.fromEntries(Object.entries(input?.metadata ?? {}).map(([k, v]) => [k, b64(v)])), data: b64(input?.data) }] };
      const decoded = await request(`${endpoint}/decode`, {
        method: 'POST',
        headers: { origin: uiOrigin, 'content-type': 'application/json', 'x-namespace': 'default' },
        body: JSON.stringify(body),
      });
      expect(decoded.statusCode).toBe(200);
      expect(decoded.headers['access-control-allow-origin']).toBe(uiOrigin);
      const [payload] = ((await decoded.body.json()) as { payloads: Array<{ data: string }> }).payloads;
      expect(Buffer.from(payload?.data ?? '', 'base64').toString()).toContain(MODEL);
    } finally {
      await ui.stop();
      await stop(server.child);
    }
  });

  it('rotates keys: new runs use the first key, old runs still read with the keys the file keeps', async () => {
    process.env[CODEC_KEY_FILE_ENV] = KEYS_V2;
    await startWorkerWith(KEYS_V2);
    // This run goes through the client script, which builds its client in the same one place.
    const script = await execFileAsync(process.execPath, [distPath('client', 'start-evaluation.js'), runConfig(tempDir('evalflow-codec-run-'), fixture)], {
      env: { ...process.env, [CODEC_KEY_FILE_ENV]: KEYS_V2 },
    });
    expect(JSON.parse(script.stdout)).toEqual([{ job: expect.stringMatching(/\.0$/), task: 'evalflow.gsm8k', metrics: { gsm8k_accuracy: 1 } }]);
    const inv = /started evalflow-([0-9a-f]{16})/.exec(script.stderr)?.[1] as string;
    const history = await plainClient.workflow.getHandle(`evalflow-${inv}`).fetchHistory();
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    expect(Buffer.from(started?.metadata?.['encryption-key-id'] ?? []).toString()).toBe('k2');

    const [old] = runs;
    const oldStatus = await cli('status', old?.inv as string, '--json');
    expect(oldStatus.code, oldStatus.stderr).toBe(0);
    expect(oldStatus.stdout).toContain('SUCCESS');

    // A client whose key file lacks k1 cannot read the old run's result (stored under k1), and says which key is missing.
    process.env[CODEC_KEY_FILE_ENV] = KEYS_K2_ONLY;
    const k2Only = await connectClient(testTarget());
    try {
      await expect(k2Only.workflow.getHandle(`evalflow-${old?.inv}`).result()).rejects.toThrow(
        /encrypted with key 'k1', which the key file .*keys-k2 \(EVALFLOW_CODEC_KEY_FILE\) does not hold; it holds k2/,
      );
    } finally {
      await k2Only.connection.close();
    }
  });

  it('a worker with the wrong key fails clearly, and one whose key file others may read does not start', async () => {
    await startWorkerWith(KEYS_WRONG);
    process.env[CODEC_KEY_FILE_ENV] = KEYS_V1;
    const runDir = tempDir('evalflow-codec-run-');
    const res = await cli('run', '-c', runConfig(runDir, fixture));
    expect(res.code, res.stderr).toBe(0);
    const inv = startedInvocationId(res.stdout);
    const deadline = Date.now() + 60_000;
    while (!/cannot decrypt a payload with key 'k1'/.test(worker?.output() ?? '') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(worker?.output()).toMatch(/cannot decrypt a payload with key 'k1' from .*keys-wrong \(EVALFLOW_CODEC_KEY_FILE\): this key is not the one it was encrypted with/);
    await plainClient.workflow.getHandle(`evalflow-${inv}`).terminate('test: the worker has the wrong key');
    await stop(worker?.child);

    const readable = secretFile('keys-readable', `k1 ${key(1)}\n`, 0o644);
    await expect(spawnEvalflow(['worker'], { [CODEC_KEY_FILE_ENV]: readable }, /evalflow worker ready/)).rejects.toThrow(
      /exited early \(2\): error: EVALFLOW_CODEC_KEY_FILE: the key file .*keys-readable is accessible by group or others \(mode 644\)/,
    );
    process.env[CODEC_KEY_FILE_ENV] = readable;
    const cliRefused = await cli('status', inv);
    expect(cliRefused.code).toBe(2);
    expect(cliRefused.stderr).toMatch(/accessible by group or others/);
  });
});
