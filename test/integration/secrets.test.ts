/**
 * Secrets never enter Temporal or the output files: the API key (named by api_key_name) and a host:
 * env var reach the harness process, but neither value appears in the workflow histories, the dry-run
 * output, or any file of the run.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { answerFromTable, startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
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

  /** A GSM8K run against the fixture, with the API key read from `apiKeyName` and the task's env_vars. */
  function gsm8kConfig(opts: { apiKeyName: string; limit: number; taskEnv: Record<string, string> }): string {
    const dir = tempDir();
    return writeConfig(
      dir,
      stringify({
        execution: { output_dir: `${dir}/results`, runtime: 'process' },
        target: { api_endpoint: { url: `${fixture.url}/v1/chat/completions`, model_id: 'fixture-model', api_key_name: opts.apiKeyName } },
        evaluation: {
          nemo_evaluator_config: { config: { params: { limit_samples: opts.limit } } },
          tasks: [{ name: 'evalflow.gsm8k', dataset_dir: DATASETS, env_vars: opts.taskEnv }],
        },
      }),
    );
  }

  it('stay out of workflow histories, dry-run output and run files', async () => {
    const config = gsm8kConfig({ apiKeyName: 'EVALFLOW_TEST_API_KEY', limit: 3, taskEnv: { HF_TOKEN: 'host:EVALFLOW_TEST_HF_TOKEN' } });
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

  it('a lit: value is masked in every dry-run form and the saved config, yet reaches the harness', async () => {
    const LITERAL_KEY = 'sk-evalflow-literal-key-9876543210';
    const config = gsm8kConfig({ apiKeyName: 'EVALFLOW_TEST_LITERAL_KEY', limit: 2, taskEnv: { EVALFLOW_TEST_LITERAL_KEY: `lit:${LITERAL_KEY}` } });
    for (const flags of [[], ['--json']]) {
      const dry = await cli('run', '-c', config, '--dry-run', ...flags);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout).toContain('***3210');
      expect(dry.stdout + dry.stderr).not.toContain(LITERAL_KEY);
    }
    const before = fixture.requests.length;
    const res = await cli('run', '-c', config, '--wait');
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const inv = startedInvocationId(res.stdout);
    const status = await client.workflow.getHandle(`evalflow-${inv}`).query<InvocationStatus>('status');
    expect(readFileSync(join(status.runDir, 'launcher_config.yml'), 'utf8')).toContain('lit:***3210');
    for (const file of filesUnder(status.runDir)) expect(readFileSync(file, 'utf8'), file).not.toContain(LITERAL_KEY);
    // The literal (not its mask) is what the harness sent.
    expect(fixture.requests.slice(before).map((r) => r.authorization)).toEqual([`Bearer ${LITERAL_KEY}`, `Bearer ${LITERAL_KEY}`]);
  });
});
