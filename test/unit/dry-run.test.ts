/**
 * `evalflow run --dry-run` shows the plan, never a secret: `lit:` env values are masked in the text and the
 * JSON form alike, wherever they are set (top level, evaluation, task, export), and the JSON form of a
 * masked value cannot be fed back as workflow input by mistake.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../client/cli.js';
import { redactSecrets } from '../../config/env.js';
import { InvocationInputSchema } from '../../workflows/types.js';

const dir = mkdtempSync(join(tmpdir(), 'evalflow-dry-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRETS = ['top-level-secret-1111', 'evaluation-secret-2222', 'task-api-key-secret-3333', 'export-secret-4444'];

const CONFIG = `
execution: {output_dir: ${dir}/out, runtime: process}
env_vars: {TOP_SECRET: "lit:${SECRETS[0]}", PLAIN: "host:HOME"}
target:
  api_endpoint: {url: "http://127.0.0.1:9/v1/chat/completions", model_id: m, api_key_name: MY_KEY}
evaluation:
  env_vars: {EVAL_SECRET: "lit:${SECRETS[1]}"}
  tasks:
    - name: evalflow.gsm8k
      env_vars: {MY_KEY: "lit:${SECRETS[2]}"}
export:
  env_vars: {EXPORT_SECRET: "lit:${SECRETS[3]}"}
`;

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { out: (t) => (stdout += t), err: (t) => (stderr += t), isTTY: false });
  return { code, stdout, stderr };
}

describe('dry run', () => {
  const config = join(dir, 'config.yaml');
  writeFileSync(config, CONFIG);

  it.each([['text', []], ['JSON', ['--json']]] as const)('masks every lit: value in the %s form', async (_form, flags) => {
    const res = await cli('run', '-c', config, '--dry-run', ...flags);
    expect(res.code, res.stderr).toBe(0);
    for (const secret of SECRETS) {
      expect(res.stdout).not.toContain(secret);
      expect(res.stdout).not.toContain(secret.slice(0, -4)); // not even partly
      expect(res.stdout).toContain(`***${secret.slice(-4)}`);
    }
    expect(res.stdout).toContain('host:HOME'); // names are not secrets
  });

  it('gives JSON whose masked literals the workflow input schema refuses', async () => {
    const res = await cli('run', '-c', config, '--dry-run', '--json');
    const { invocation } = JSON.parse(res.stdout) as { invocation: { tasks: { env: Record<string, unknown> }[] } };
    expect(invocation.tasks[0]?.env.MY_KEY).toEqual({ kind: 'lit', value: '***3333', redacted: true });
    expect(invocation.tasks[0]?.env.PLAIN).toEqual({ kind: 'host', name: 'HOME' });
    const parsed = InvocationInputSchema.safeParse(invocation);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(['tasks', 0, 'env', 'TOP_SECRET']);
  });

  it('redacts by shape, so sections added later are covered as well', () => {
    const tree = { deployment: { env_vars: { HF: 'lit:hf_0123456789', N: 'host:N' } }, nested: [{ ref: { kind: 'lit', value: 'short' } }] };
    expect(redactSecrets(tree)).toEqual({
      deployment: { env_vars: { HF: 'lit:***6789', N: 'host:N' } },
      nested: [{ ref: { kind: 'lit', value: '***', redacted: true } }],
    });
    expect(tree.deployment.env_vars.HF).toBe('lit:hf_0123456789'); // the input is left alone
  });
});
