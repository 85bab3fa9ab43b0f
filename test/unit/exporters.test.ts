/** Exporter plug-ins: the registry, settings validation, the shared keys, MLflow helpers and upstream's CSV. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CommonExportSettingsSchema, jobFiles } from '../../exporters/common.js';
import { upsertUpstreamCsv } from '../../exporters/local.js';
import { flattenParams, MlflowSettingsSchema, resolveTrackingUri, sanitizeKey } from '../../exporters/mlflow.js';
import { EXPORTER_NAMES, exporterFor, exportSettings } from '../../exporters/registry.js';
import { settingsFromOptions } from '../../client/commands/export.js';
import { tempDir } from '../support/run-helpers.js';

describe('registry and settings', () => {
  it('knows local and mlflow, refuses the rest by name', () => {
    expect(EXPORTER_NAMES).toEqual(['local', 'mlflow']);
    expect(() => exporterFor('wandb')).toThrow(/'wandb' is not supported \(supported: local, mlflow\)/);
  });

  it('validates upstream keys with defaults, and names the bad key path', () => {
    expect(exportSettings('mlflow', {})).toMatchObject({ experiment_name: 'nemo-evaluator-launcher', skip_existing: false, only_required: true, copy_artifacts: true, copy_logs: false });
    expect(() => exportSettings('mlflow', { skip_existing: 'yes' })).toThrow(/export\.mlflow\.skip_existing/);
    expect(() => exportSettings('local', { layot: 'upstream' })).toThrow(/export\.local\.layot/);
  });

  it('CLI flags and -o overrides become settings (values parsed as YAML)', () => {
    expect(settingsFromOptions({ dest: 'mlflow', copyLogs: true, logMetrics: ['accuracy'], override: ['export.mlflow.skip_existing=true', 'export.mlflow.tags={team: eval}'] })).toMatchObject({
      skip_existing: true,
      copy_logs: true,
      log_metrics: ['accuracy'],
      tags: { team: 'eval' },
    });
    expect(() => settingsFromOptions({ dest: 'mlflow', override: ['tracking_uri=x'] })).toThrow(/expected export\.mlflow\.<key>=<value>/);
  });
});

describe('shared keys', () => {
  it('only_required picks upstream required files; otherwise all but caches and locks, logs included', () => {
    const job = tempDir();
    for (const f of ['artifacts/results.yml', 'artifacts/run_config.yml', 'artifacts/cache/responses.jsonl', 'artifacts/x.lock', 'artifacts/nemo-evaluator-per-sample-outputs/t.jsonl', 'logs/client_stdout.log']) {
      mkdirSync(join(job, f, '..'), { recursive: true });
      writeFileSync(join(job, f), 'x');
    }
    const names = (s: Record<string, unknown>) => jobFiles(job, CommonExportSettingsSchema.parse(s)).map((f) => f.relativePath);
    expect(names({})).toEqual(['artifacts/results.yml', 'artifacts/run_config.yml']);
    expect(names({ copy_logs: true })).toEqual(['artifacts/results.yml', 'artifacts/run_config.yml', 'logs/client_stdout.log']);
    expect(names({ only_required: false })).toEqual(['artifacts/nemo-evaluator-per-sample-outputs/t.jsonl', 'artifacts/results.yml', 'artifacts/run_config.yml', 'logs/client_stdout.log']);
    expect(names({ copy_artifacts: false })).toEqual([]);
  });
});

describe('mlflow helpers', () => {
  it('tracking URI from the setting, the env, or an env var named by the setting', () => {
    const settings = MlflowSettingsSchema.parse({});
    expect(resolveTrackingUri(settings, { MLFLOW_TRACKING_URI: 'http://h:5000/' })).toBe('http://h:5000');
    expect(resolveTrackingUri({ ...settings, tracking_uri: 'MY_URI' }, { MY_URI: 'https://m' })).toBe('https://m');
    expect(() => resolveTrackingUri(settings, {})).toThrow(/tracking_uri is not set/);
    expect(() => resolveTrackingUri({ ...settings, tracking_uri: 'file:///tmp/x' }, {})).toThrow(/http\(s\) URL/);
  });

  it("upstream's log_logs and log_artifacts set copy_logs and copy_artifacts", () => {
    expect(MlflowSettingsSchema.parse({ log_logs: true, log_artifacts: false })).toMatchObject({ copy_logs: true, copy_artifacts: false });
    expect(MlflowSettingsSchema.parse({})).toMatchObject({ copy_logs: false, copy_artifacts: true });
    expect(MlflowSettingsSchema.parse({})).not.toHaveProperty('log_logs');
  });

  it('keys are sanitised; configs flatten to dotted params down to a depth', () => {
    expect(sanitizeKey('mmlu_accuracy (macro)!')).toBe('mmlu_accuracy _macro__');
    expect(sanitizeKey('a.b/c-d:e f')).toBe('a.b/c-d:e f');
    expect(flattenParams({ config: { params: { limit_samples: 5, extra: { a: [1] } } }, x: null }, 'config', 3)).toEqual({
      'config.config.params.limit_samples': '5',
      'config.config.params.extra': '{"a":[1]}',
    });
  });
});

describe("upstream's CSV", () => {
  const job = { invocationId: 'i1', jobId: 'i1.0', taskName: 'evalflow.gsm8k', model: 'm', jobDir: '/x', executor: 'local' };
  it('drops the task prefix from metric columns, adds columns as they appear, upserts by (invocation, job)', () => {
    let csv = upsertUpstreamCsv('', job, 'evalflow', 'gsm8k', { gsm8k_accuracy: 0.5 });
    expect(csv).toBe('Model Name,Harness,Task Name,Executor,Container,Invocation ID,Job ID,accuracy\nm,evalflow,gsm8k,local,,i1,i1.0,0.5\n');
    csv = upsertUpstreamCsv(csv, { ...job, jobId: 'i1.1', taskName: 'evalflow.mmlu' }, 'evalflow', 'mmlu', { mmlu_accuracy: 0.25, mmlu_accuracy_macro: 0.2 });
    csv = upsertUpstreamCsv(csv, job, 'evalflow', 'gsm8k', { gsm8k_accuracy: 0.75 });
    expect(csv.trim().split('\n')).toEqual([
      'Model Name,Harness,Task Name,Executor,Container,Invocation ID,Job ID,accuracy,accuracy_macro',
      'm,evalflow,gsm8k,local,,i1,i1.0,0.75,',
      'm,evalflow,mmlu,local,,i1,i1.1,0.25,0.2',
    ]);
  });
});
