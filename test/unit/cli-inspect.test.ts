/** Upstream's verbs and flags that need no server: `version`, bare `ls`, `ls task NAME`, `run --config-output`. */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../client/cli.js';
import { evalflowVersion } from '../../common/paths.js';
import { tempDir } from '../support/run-helpers.js';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t), isTTY: false });
  return { code, out, err };
}

describe('inspection verbs', () => {
  it('version prints the package version', async () => {
    const res = await run('version');
    expect(res.code).toBe(0);
    expect(res.out).toBe(`evalflow ${evalflowVersion()} (node ${process.versions.node})\n`);
  });

  it('bare ls is ls tasks', async () => {
    const bare = await run('ls');
    expect(bare.code).toBe(0);
    expect(bare.out).toBe((await run('ls', 'tasks')).out);
    expect(bare.out).toContain('evalflow.gsm8k');
  });

  it('ls task shows a built-in task and an upstream task with its image; an unknown one is bad input', async () => {
    const builtin = await run('ls', 'task', 'evalflow.gsm8k');
    expect(builtin.code).toBe(0);
    expect(builtin.out).toMatch(/^evalflow\.gsm8k\n {2}description: .+\n {2}runs in: +the built-in harness/);
    expect(builtin.out).toContain('endpoint types: ');
    const upstream = JSON.parse((await run('ls', 'task', 'simple_evals.mmlu', '--json')).out) as { fullName: string; builtin: boolean; container: string; defaultParams: object };
    expect(upstream).toMatchObject({ fullName: 'simple_evals.mmlu', builtin: false });
    expect(upstream.container).toMatch(/\S+:\S+/);
    expect((await run('ls', 'task', 'simple_evals.mmlu')).out).toContain(`runs in:        ${upstream.container}`);
    const unknown = await run('ls', 'task', 'gsm9k');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('gsm9k');
  });

  it('run --config-output saves the resolved config (0600), which validates again with --config-mode raw', async () => {
    const dir = tempDir();
    const file = join(dir, 'suite.yaml');
    writeFileSync(
      file,
      `defaults: [{execution: local}, {deployment: none}, _self_]\nexecution: {output_dir: ${dir}/out, runtime: process}\nenv_vars: {LABEL: 'lit:nightly-suite'}\ntarget: {api_endpoint: {url: 'http://127.0.0.1:9/v1/chat/completions', model_id: m}}\nevaluation: {tasks: [{name: evalflow.gsm8k}, {name: evalflow.mmlu}]}\n`,
    );
    const first = await run('run', '-c', file, '-t', 'mmlu', '--dry-run', '--json', '--config-output', join(dir, 'configs'));
    expect(first.code, first.err).toBe(0);
    const { config, invocation } = JSON.parse(first.out) as { config: object; invocation: { invocationId: string } };
    const saved = join(dir, 'configs', `${invocation.invocationId}_config.yml`);
    expect(first.err).toContain(`resolved config: ${saved}`);
    expect(statSync(saved).mode & 0o777).toBe(0o600);
    expect(readFileSync(saved, 'utf8')).toContain('lit:nightly-suite');
    const again = await run('run', '-c', saved, '--config-mode', 'raw', '--dry-run', '--json');
    expect(again.code, again.err).toBe(0);
    expect((JSON.parse(again.out) as { config: object }).config).toEqual(config);
  });
});
