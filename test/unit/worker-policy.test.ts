import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { assertEnvAllowed, assertEnvRefsAllowed, assertLaunchAllowed, assertPathAllowed, canonicalPath, envNameAllowed, POLICY_REFUSED, workerPolicyFromEnv } from '../../common/worker-policy.js';
import { ConfigError } from '../../config/errors.js';
import { tempDir } from '../support/run-helpers.js';

function refusal(fn: () => void): ApplicationFailure {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe(POLICY_REFUSED);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    return err as ApplicationFailure;
  }
  throw new Error('not refused');
}

describe('worker policy', () => {
  it('allows everything when nothing is set (as before)', () => {
    const policy = workerPolicyFromEnv({});
    expect(policy).toEqual({});
    expect(envNameAllowed(policy, 'AWS_SECRET_ACCESS_KEY')).toBe(true);
    expect(() => assertPathAllowed(policy, 'output', '/anywhere', 'execution.output_dir')).not.toThrow();
  });

  it('allows env names from the list, exactly or by prefix', () => {
    const policy = workerPolicyFromEnv({ EVALFLOW_ALLOW_ENV: 'NGC_API_KEY, HF_*,' });
    expect(policy.env).toEqual(['NGC_API_KEY', 'HF_*']);
    expect(envNameAllowed(policy, 'NGC_API_KEY')).toBe(true);
    expect(envNameAllowed(policy, 'HF_TOKEN')).toBe(true);
    expect(envNameAllowed(policy, 'NGC_API_KEY_2')).toBe(false);
    expect(envNameAllowed(workerPolicyFromEnv({ EVALFLOW_ALLOW_ENV: '' }), 'HOME')).toBe(false);
    const err = refusal(() => assertEnvAllowed(policy, 'AWS_SECRET_ACCESS_KEY', 'env var CREDS = host:AWS_SECRET_ACCESS_KEY'));
    expect(err.message).toBe(
      "env var CREDS = host:AWS_SECRET_ACCESS_KEY: this worker's policy does not let configs read the environment variable AWS_SECRET_ACCESS_KEY (allowed by EVALFLOW_ALLOW_ENV: NGC_API_KEY, HF_*)",
    );
  });

  it('refuses host: and runtime: references it does not allow, naming them; literals are not reads', () => {
    const policy = workerPolicyFromEnv({ EVALFLOW_ALLOW_ENV: 'HF_TOKEN' });
    expect(() => assertEnvRefsAllowed(policy, { A: { kind: 'host', name: 'HF_TOKEN' }, B: { kind: 'lit', value: 'SECRET_X' } })).not.toThrow();
    for (const kind of ['host', 'runtime'] as const) {
      const err = refusal(() => assertEnvRefsAllowed(policy, { A: { kind: 'host', name: 'HF_TOKEN' }, B: { kind, name: 'SECRET_X' } }));
      expect(err.message).toMatch(new RegExp(`^env var B = ${kind}:SECRET_X: this worker's policy does not let configs read the environment variable SECRET_X`));
    }
  });

  it('keeps paths inside the allowed directories, through .. and symlinks', () => {
    const root = tempDir('evalflow-policy-');
    const allowed = join(root, 'evals');
    mkdirSync(allowed);
    mkdirSync(join(root, 'elsewhere'));
    symlinkSync(join(root, 'elsewhere'), join(allowed, 'escape'));
    const policy = workerPolicyFromEnv({ EVALFLOW_ALLOW_OUTPUT_DIRS: `${allowed}:/nonexistent/other` });
    expect(policy.outputDirs).toEqual([canonicalPath(allowed), '/nonexistent/other']);
    expect(() => assertPathAllowed(policy, 'output', allowed, 'x')).not.toThrow();
    expect(() => assertPathAllowed(policy, 'output', join(allowed, 'new', 'run', 'gsm8k.0'), 'x')).not.toThrow();
    expect(() => assertPathAllowed(policy, 'output', '/nonexistent/other/a', 'x')).not.toThrow();
    expect(() => assertPathAllowed(policy, 'dataset', '/etc', 'x')).not.toThrow(); // no dataset policy
    for (const outside of [join(allowed, '..', 'elsewhere'), join(allowed, 'escape', 'run'), `${allowed}-sibling`, '/etc']) {
      const err = refusal(() => assertPathAllowed(policy, 'output', outside, 'execution.output_dir'));
      expect(err.message).toContain(`execution.output_dir: output path ${outside} is outside the directories this worker's policy allows (EVALFLOW_ALLOW_OUTPUT_DIRS:`);
    }
  });

  it('checks everything a launch reads and writes', () => {
    const root = tempDir('evalflow-policy-');
    const out = join(root, 'out');
    const data = join(root, 'data');
    const policy = workerPolicyFromEnv({ EVALFLOW_ALLOW_OUTPUT_DIRS: out, EVALFLOW_ALLOW_DATASET_DIRS: data, EVALFLOW_ALLOW_ENV: 'NGC_API_KEY' });
    const jobDir = join(out, 'run', 'custom.0');
    const runConfig = (extra: Record<string, unknown>, outputDir = join(jobDir, 'artifacts'), apiKeyName = 'NGC_API_KEY') => ({
      config: { type: 'evalflow.custom', output_dir: outputDir, params: { extra } },
      target: { api_endpoint: { url: 'http://x/v1/chat/completions', model_id: 'm', api_key_name: apiKeyName } },
    });
    const ok = { jobDir, runConfig: runConfig({ dataset_dir: data, dataset_path: 'mine/q.jsonl' }), apiKeyName: 'NGC_API_KEY', harnessOnThisHost: true };
    expect(() => assertLaunchAllowed(policy, ok)).not.toThrow();
    // A container or remote job sees its own paths (its executor checks the host side); names are still checked.
    const remote = { ...ok, runConfig: runConfig({ dataset_dir: '/datasets' }, '/results'), harnessOnThisHost: false };
    expect(() => assertLaunchAllowed(policy, remote)).not.toThrow();
    expect(refusal(() => assertLaunchAllowed(policy, { ...remote, apiKeyName: 'AWS_SECRET_ACCESS_KEY' })).message).toMatch(/AWS_SECRET_ACCESS_KEY/);
    const cases: Array<[Parameters<typeof assertLaunchAllowed>[1], RegExp]> = [
      [{ ...ok, jobDir: join(root, 'elsewhere', 'custom.0') }, /^execution\.output_dir: output path/],
      [{ ...ok, runConfig: runConfig({ dataset_dir: data }, '/tmp/x') }, /^config\.output_dir: output path \/tmp\/x/],
      [{ ...ok, runConfig: runConfig({ dataset_dir: '/etc' }) }, /^dataset_dir: dataset path \/etc is outside .*EVALFLOW_ALLOW_DATASET_DIRS/],
      [{ ...ok, runConfig: runConfig({ dataset_dir: data, dataset_path: '../../etc/passwd' }) }, /^config\.params\.extra\.dataset_path: dataset path/],
      [{ ...ok, runConfig: runConfig({ dataset_path: 'q.jsonl' }), datasetDirEnv: '/srv/other' }, /^NEMO_EVALUATOR_DATASET_DIR: dataset path \/srv\/other/],
      [{ ...ok, apiKeyName: 'AWS_SECRET_ACCESS_KEY' }, /^target\.api_endpoint\.api_key_name: .* AWS_SECRET_ACCESS_KEY/],
      [{ ...ok, runConfig: runConfig({ dataset_dir: data }, undefined, 'AWS_SECRET_ACCESS_KEY') }, /AWS_SECRET_ACCESS_KEY/],
    ];
    for (const [launch, message] of cases) expect(refusal(() => assertLaunchAllowed(policy, launch)).message).toMatch(message);
  });

  it('refuses a malformed policy so the worker does not start', () => {
    expect(() => workerPolicyFromEnv({ EVALFLOW_ALLOW_ENV: 'OK,bad-name' })).toThrow(ConfigError);
    expect(() => workerPolicyFromEnv({ EVALFLOW_ALLOW_ENV: 'OK,bad-name' })).toThrow(/EVALFLOW_ALLOW_ENV: 'bad-name'/);
    expect(() => workerPolicyFromEnv({ EVALFLOW_ALLOW_DATASET_DIRS: 'relative/dir' })).toThrow(/EVALFLOW_ALLOW_DATASET_DIRS: 'relative\/dir' is not an absolute directory/);
  });
});
