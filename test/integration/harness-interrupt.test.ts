/**
 * An interrupted harness (SIGTERM from `evalflow kill`, `docker stop`, a Slurm preemption) sends nothing new, lets the
 * requests in flight come back for up to DRAIN_MS and caches them, so the relaunch sends none of them again. Real
 * harness processes and the fixture endpoint.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import { distPath } from '../../common/paths.js';
import { parseStageFailure } from '../../core/harness-contract.js';
import { InterruptedError, runEvaluation } from '../../harness/engine.js';
import { DATASETS, runHarnessProcess, tempDir } from '../support/run-helpers.js';

const N = 24;
const PARALLELISM = 8;
const LATENCY_MS = 600;

let fixture: FixtureServer;
beforeAll(async () => {
  fixture = await startFixtureServer({ latencyMs: LATENCY_MS, record: false });
});
afterAll(async () => {
  await fixture.close();
});

function runConfig(outputDir: string) {
  return {
    config: { type: 'gsm8k', output_dir: outputDir, params: { limit_samples: N, parallelism: PARALLELISM, extra: { dataset_dir: DATASETS } } },
    target: { api_endpoint: { url: `${fixture.url}/v1/chat/completions`, model_id: 'fixture-model', type: 'chat' as const } },
  };
}

const cacheEntries = (outputDir: string) => readFileSync(join(outputDir, 'cache', 'responses.jsonl'), 'utf8').split('\n').filter(Boolean).length;

describe('harness: SIGTERM drains the requests in flight', () => {
  it('exits 143 without results, with every answered request cached: the relaunch sends none again', async () => {
    const dir = tempDir('evalflow-interrupt-');
    const outputDir = join(dir, 'artifacts');
    const configFile = join(dir, 'config_ef.yaml');
    writeFileSync(configFile, stringify(runConfig(outputDir)));
    const logs = join(dir, 'logs');
    const before = fixture.totalRequests();
    const child = spawn(process.execPath, [distPath('harness', 'cli.js'), 'run_eval', '--run_config', configFile, '--stage_dir', logs], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // The first wave is in flight (each request takes LATENCY_MS): interrupt it.
    await fixture.waitForRequests(before + PARALLELISM);
    child.kill('SIGTERM');
    const sentAtSignal = fixture.totalRequests() - before;
    expect(await exited, output).toBe(143);
    const sentByFirst = fixture.totalRequests() - before;
    expect(sentByFirst).toBe(sentAtSignal); // nothing new after the signal
    expect(sentByFirst).toBeLessThan(N);
    expect(output).toContain('SIGTERM received, stopping: nothing new is sent');
    expect(parseStageFailure(readFileSync(join(logs, 'stage.exit'), 'utf8'))?.reason).toBe('interrupted');
    expect(existsSync(join(outputDir, 'results.yml'))).toBe(false);
    expect(existsSync(join(outputDir, '.nemo_evaluator_interrupted'))).toBe(true);
    expect(cacheEntries(outputDir)).toBe(sentByFirst); // the drained responses are in the cache

    const second = await runHarnessProcess(['--run_config', configFile, '--stage_dir', logs]);
    expect(second.code, second.output).toBe(0);
    expect(fixture.totalRequests() - before).toBe(N); // no request sent twice
  });

  it('stops after the drain time when requests in flight do not come back', async () => {
    const slow = await startFixtureServer({ latencyMs: 30_000, record: false });
    try {
      const outputDir = join(tempDir('evalflow-interrupt-slow-'), 'artifacts');
      const controller = new AbortController();
      const cfg = runConfig(outputDir);
      cfg.target.api_endpoint.url = `${slow.url}/v1/chat/completions`;
      const running = runEvaluation({ runConfig: cfg, signal: controller.signal, drainMs: 300 });
      await slow.waitForRequests(PARALLELISM);
      const started = Date.now();
      controller.abort(new InterruptedError('SIGTERM'));
      await expect(running).rejects.toBeInstanceOf(InterruptedError);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(slow.totalRequests()).toBe(PARALLELISM);
      expect(existsSync(join(outputDir, 'results.yml'))).toBe(false);
    } finally {
      await slow.close();
    }
  });
});
