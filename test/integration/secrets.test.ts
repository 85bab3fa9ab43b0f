/**
 * Secrets never enter Temporal or the output files: the API key (named by api_key_name) and a host:
 * env var reach the harness process, but neither value appears in the workflow histories, the dry-run
 * output, or any file of the run.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerFromTable, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { cli, DATASETS, gsm8kHead, startedInvocationId, tempDir, writeConfig } from '../support/run-helpers.js';
import { startWorker, testClient, testTarget, type RunningWorker } from '../support/temporal.js';
import type { InvocationStatus } from '../../workflows/types.js';

const API_KEY = 'sk-evalflow-test-0123456789abcdef';
const HF_TOKEN = 'hf_evalflow_test_secret_token_42';

/** Everything a history holds, payloads decoded (they are bytes, so a plain JSON dump would hide them). */
function historyText(node: unknown): string {
  if (node instanceof Uint8Array) return Buffer.from(node).toString('utf8');
  if (Array.isArray(node)) return node.map(historyText).join('\n');
  if (node !== null && typeof node === 'object') return Object.values(node).map(historyText).join('\n');
  return String(node);
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('secrets', () => {
  let fixture: FixtureServer;
  let worker: RunningWorker;
  let client: Client;

  beforeAll(async () => {
    process.env.TEMPORAL_ADDRESS = testTarget().address;
    // The worker (in this process) is where host: variables and the API key are read.
    process.env.EVALFLOW_TEST_API_KEY = API_KEY;
    process.env.EVALFLOW_TEST_HF_TOKEN = HF_TOKEN;
    const table = Object.fromEntries(gsm8kHead(3).map(({ question, answer }) => [question, `The final answer is ${answer}`]));
    fixture = await startFixtureServer({ answer: answerFromTable(table) });
    worker = await startWorker();
    client = await testClient();
  });
  afterAll(async () => {
    await worker?.stop();
    await fixture?.close();
    await client?.connection.close();
    delete process.env.EVALFLOW_TEST_API_KEY;
    delete process.env.EVALFLOW_TEST_HF_TOKEN;
  });

  it('stay out of workflow histories, dry-run output and run files', async () => {
    const dir = tempDir();
    const config = writeConfig(
      dir,
      `
execution: {output_dir: ${dir}/results, runtime: process}
target:
  api_endpoint:
    url: ${fixture.url}/v1/chat/completions
    model_id: fixture-model
    api_key_name: EVALFLOW_TEST_API_KEY
evaluation:
  nemo_evaluator_config: {config: {params: {limit_samples: 3}}}
  tasks:
    - name: evalflow.gsm8k
      dataset_dir: ${DATASETS}
      env_vars:
        HF_TOKEN: host:EVALFLOW_TEST_HF_TOKEN
`,
    );
    const dry = await cli('run', '-c', config, '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('HF_TOKEN=host:EVALFLOW_TEST_HF_TOKEN');
    expect(dry.stdout + dry.stderr).not.toContain(API_KEY);
    expect(dry.stdout + dry.stderr).not.toContain(HF_TOKEN);

    const res = await cli('run', '-c', config, '--wait');
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const inv = startedInvocationId(res.stdout);
    const status = await client.workflow.getHandle(`evalflow-${inv}`).query<InvocationStatus>('status');
    expect(status.tasks[0]?.metrics?.gsm8k_accuracy).toBe(1);

    for (const workflowId of [`evalflow-${inv}`, `evalflow-${inv}.0`]) {
      const history = historyText(await client.workflow.getHandle(workflowId).fetchHistory());
      expect(history).toContain('EVALFLOW_TEST_API_KEY'); // the name travels…
      expect(history).not.toContain(API_KEY); // …the value never does
      expect(history).not.toContain(HF_TOKEN);
    }
    const files = filesUnder(status.runDir);
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      expect(text, file).not.toContain(API_KEY);
      expect(text, file).not.toContain(HF_TOKEN);
    }
    // The key did reach the endpoint, as a bearer token on every request.
    expect(fixture.requests.map((r) => r.authorization)).toEqual([`Bearer ${API_KEY}`, `Bearer ${API_KEY}`, `Bearer ${API_KEY}`]);
  });
});
