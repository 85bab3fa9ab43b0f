/**
 * The worker-side policy on the real Temporal dev server, with a real `evalflow worker` process configured
 * through its environment (as documented): allowed references run; a refused env var (through `host:` or
 * `api_key_name`) or an output dir outside the allowed ones fails the task naming it, never its value, and
 * nothing is launched.
 */
import { type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerFromTable, startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import { cli, DATASETS, gsm8kHead, startedInvocationId, tempDir, writeConfig } from '../support/run-helpers.js';
import { spawnWorkerProcess, testClient, testTarget } from '../support/temporal.js';
import type { InvocationStatus } from '../../workflows/types.js';

const SECRET_VALUE = 'policy-secret-value-3b7e';
const root = tempDir('evalflow-policy-it-');
const allowedOut = join(root, 'allowed');
mkdirSync(allowedOut);

function config(opts: { outputDir?: string; envVars?: string; apiKeyName?: string } = {}): string {
  return writeConfig(
    tempDir('evalflow-policy-cfg-'),
    `
execution: {output_dir: ${opts.outputDir ?? join(allowedOut, 'results')}, runtime: process}
target:
  api_endpoint:
    url: ${fixture.url}/v1/chat/completions
    model_id: fixture-model${opts.apiKeyName ? `\n    api_key_name: ${opts.apiKeyName}` : ''}
evaluation:
  nemo_evaluator_config: {config: {params: {limit_samples: 2}}}
  tasks:
    - name: evalflow.gsm8k
      dataset_dir: ${DATASETS}${opts.envVars ? `\n      env_vars: {${opts.envVars}}` : ''}
`,
  );
}

let fixture: FixtureServer;

describe('worker policy on the real server', () => {
  let worker: ChildProcess;
  let client: Client;

  beforeAll(async () => {
    process.env.TEMPORAL_ADDRESS = testTarget().address;
    const table = Object.fromEntries(gsm8kHead(2).map(({ question, answer }) => [question, `The final answer is ${answer}`]));
    fixture = await startFixtureServer({ answer: answerFromTable(table) });
    worker = await spawnWorkerProcess({
      EVALFLOW_ALLOW_ENV: 'EVALFLOW_POLICY_OK*',
      EVALFLOW_ALLOW_OUTPUT_DIRS: allowedOut,
      EVALFLOW_ALLOW_DATASET_DIRS: DATASETS,
      EVALFLOW_POLICY_OK_TOKEN: 'fine-to-read',
      EVALFLOW_POLICY_SECRET: SECRET_VALUE,
    });
    client = await testClient();
  });
  afterAll(async () => {
    if (worker && worker.exitCode === null) {
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.kill('SIGTERM');
      await exited;
    }
    await fixture?.close();
    await client?.connection.close();
  });

  const failedRun = async (cfg: string) => {
    const before = fixture.requests.length;
    const res = await cli('run', '-c', cfg, '--wait');
    expect(res.code, res.stdout + res.stderr).toBe(1);
    const inv = startedInvocationId(res.stdout);
    const status = await client.workflow.getHandle(`evalflow-${inv}`).query<InvocationStatus>('status');
    expect(status.tasks[0]?.stage).toBe('failed');
    expect(status.tasks[0]?.attempt ?? 0).toBeLessThanOrEqual(1);
    expect(fixture.requests.length, 'no sample may be sent').toBe(before);
    const output = res.stdout + res.stderr + (status.tasks[0]?.error ?? '');
    expect(output).not.toContain(SECRET_VALUE);
    return { output, error: status.tasks[0]?.error ?? '' };
  };

  it('runs a config whose references the policy allows', async () => {
    const res = await cli('run', '-c', config({ envVars: 'OK_TOKEN: host:EVALFLOW_POLICY_OK_TOKEN' }), '--wait');
    expect(res.code, res.stdout + res.stderr).toBe(0);
  });

  it('fails the task on a refused host: or runtime: variable, naming it and never its value', async () => {
    for (const kind of ['host', 'runtime']) {
      const { error } = await failedRun(config({ envVars: `LEAK: ${kind}:EVALFLOW_POLICY_SECRET` }));
      expect(error).toContain(
        `env var LEAK = ${kind}:EVALFLOW_POLICY_SECRET: this worker's policy does not let configs read the environment variable EVALFLOW_POLICY_SECRET (allowed by EVALFLOW_ALLOW_ENV: EVALFLOW_POLICY_OK*)`,
      );
    }
  });

  it('fails the task on a refused api_key_name, before any request is sent', async () => {
    const { error } = await failedRun(config({ apiKeyName: 'EVALFLOW_POLICY_SECRET' }));
    expect(error).toMatch(/target\.api_endpoint\.api_key_name: this worker's policy does not let configs read the environment variable EVALFLOW_POLICY_SECRET/);
  });

  it('fails the task on an output dir outside the allowed directories', async () => {
    const outside = join(root, 'elsewhere');
    const { error } = await failedRun(config({ outputDir: outside }));
    expect(error).toMatch(new RegExp(`execution\\.output_dir: output path ${outside}/\\S+ is outside the directories this worker's policy allows \\(EVALFLOW_ALLOW_OUTPUT_DIRS: ${allowedOut}\\)`));
  });
});
