/**
 * MLflow exporter over the tracking server's REST API (no MLflow client library): one experiment, one
 * run per job, tagged with its invocation, job, task, harness, executor and model; params (invocation,
 * executor, model, `extra_metadata`, optionally the flattened run config); the flattened metrics; the
 * job's files through the server's artifact proxy (`mlflow server --artifacts-destination …`).
 *
 * Idempotent: a job's run is found again by its `job_id` tag (the tags go in with the create call, so a
 * run never exists untagged). A finished run is left alone with `skip_existing`, else updated in place;
 * an unfinished one (an export cut short) is always completed, never duplicated.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { CommonExportSettingsSchema, jobFiles, jobMetrics } from './common.js';
import { ExportError, type ExportContext, type ExportJob, type ExportOutcome, type Exporter } from './types.js';

export const DEFAULT_EXPERIMENT_NAME = 'nemo-evaluator-launcher';

export const MlflowSettingsSchema = CommonExportSettingsSchema.extend({
  /** `http(s)://host:port`; default: $MLFLOW_TRACKING_URI. Upstream also accepts the NAME of an env var holding it. */
  tracking_uri: z.string().min(1).optional(),
  experiment_name: z.string().min(1).default(DEFAULT_EXPERIMENT_NAME),
  /** Default: `eval-<invocation>-<task>`. */
  run_name: z.string().min(1).optional(),
  description: z.string().optional(),
  tags: z.record(z.string(), z.string()).default({}),
  extra_metadata: z.record(z.string(), z.unknown()).default({}),
  log_config_params: z.boolean().default(false),
  log_config_params_max_depth: z.number().int().min(1).default(10),
  skip_existing: z.boolean().default(false),
  /** Upstream's MLflow names for `copy_logs` and `copy_artifacts` (they win when set). */
  log_logs: z.boolean().optional(),
  log_artifacts: z.boolean().optional(),
})
  .strict()
  .transform(({ log_logs, log_artifacts, ...settings }) => ({
    ...settings,
    copy_logs: log_logs ?? settings.copy_logs,
    copy_artifacts: log_artifacts ?? settings.copy_artifacts,
  }));
export type MlflowSettings = z.output<typeof MlflowSettingsSchema>;

export class MlflowError extends ExportError {
  override name = 'MlflowError';
}

// MLflow's limits: keys up to 250 characters of [\w./\- :], param values up to 6000, 1000 metrics / 100 params per batch.
const MAX_KEY = 250;
const MAX_PARAM_VALUE = 6000;

export function sanitizeKey(key: string): string {
  return key.replace(/[^\w./\- :]/g, '_').slice(0, MAX_KEY);
}

/** The tracking URI: the setting or $MLFLOW_TRACKING_URI; a value without `://` names an env var (upstream). */
export function resolveTrackingUri(settings: MlflowSettings, env: ExportContext['env']): string {
  let uri = settings.tracking_uri ?? env.MLFLOW_TRACKING_URI;
  if (uri && !uri.includes('://')) uri = env[uri] ?? uri;
  if (!uri) throw new MlflowError('export.mlflow.tracking_uri is not set (nor MLFLOW_TRACKING_URI)');
  if (!/^https?:\/\//.test(uri)) throw new MlflowError(`export.mlflow.tracking_uri must be an http(s) URL of a tracking server, got '${uri}'`);
  return uri.replace(/\/+$/, '');
}

interface RunInfo {
  run_id: string;
  status: string;
  artifact_uri: string;
}

/** The handful of tracking-server calls the exporter needs. Credentials come from the environment, per call site. */
export class MlflowClient {
  constructor(
    readonly baseUrl: string,
    private readonly headers: Record<string, string> = {},
  ) {}

  static fromEnv(baseUrl: string, env: ExportContext['env']): MlflowClient {
    const headers: Record<string, string> = {};
    if (env.MLFLOW_TRACKING_TOKEN) headers.authorization = `Bearer ${env.MLFLOW_TRACKING_TOKEN}`;
    else if (env.MLFLOW_TRACKING_USERNAME) {
      headers.authorization = `Basic ${Buffer.from(`${env.MLFLOW_TRACKING_USERNAME}:${env.MLFLOW_TRACKING_PASSWORD ?? ''}`).toString('base64')}`;
    }
    return new MlflowClient(baseUrl, headers);
  }

  async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const url = `${this.baseUrl}/api/2.0/mlflow/${path}`;
    const res = await fetch(url, {
      method,
      headers: { ...this.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    if (!res.ok) {
      let code = '';
      try {
        code = (JSON.parse(text) as { error_code?: string }).error_code ?? '';
      } catch {
        // not JSON: keep the status
      }
      throw new MlflowApiError(`MLflow ${method} ${path}: HTTP ${res.status} ${code || text.slice(0, 200)}`, res.status, code);
    }
    return (text ? JSON.parse(text) : {}) as T;
  }

  async experimentId(name: string): Promise<string> {
    try {
      const found = await this.call<{ experiment: { experiment_id: string } }>('GET', `experiments/get-by-name?experiment_name=${encodeURIComponent(name)}`);
      return found.experiment.experiment_id;
    } catch (err) {
      if (!(err instanceof MlflowApiError && err.code === 'RESOURCE_DOES_NOT_EXIST')) throw err;
    }
    try {
      return (await this.call<{ experiment_id: string }>('POST', 'experiments/create', { name })).experiment_id;
    } catch (err) {
      // Another export created it meanwhile.
      if (!(err instanceof MlflowApiError && err.code === 'RESOURCE_ALREADY_EXISTS')) throw err;
      return this.experimentId(name);
    }
  }

  async findRunByTag(experimentId: string, key: string, value: string): Promise<RunInfo | null> {
    const filter = `tags.${key} = '${value.replaceAll("'", "\\'")}'`;
    const res = await this.call<{ runs?: Array<{ info: RunInfo }> }>('POST', 'runs/search', {
      experiment_ids: [experimentId],
      filter,
      max_results: 10,
      order_by: ['attributes.start_time ASC'],
    });
    return res.runs?.[0]?.info ?? null;
  }

  async uploadArtifact(artifactUri: string, relativePath: string, content: Buffer): Promise<void> {
    const prefix = 'mlflow-artifacts:/';
    if (!artifactUri.startsWith(prefix)) {
      throw new MlflowError(
        `the run's artifact store is ${artifactUri}, which the tracking server does not proxy; start it with --artifacts-destination (or --serve-artifacts)`,
      );
    }
    const path = `${artifactUri.slice(prefix.length).replace(/^\/+/, '')}/${relativePath}`.split('/').map(encodeURIComponent).join('/');
    const res = await fetch(`${this.baseUrl}/api/2.0/mlflow-artifacts/artifacts/${path}`, {
      method: 'PUT',
      headers: { ...this.headers, 'content-type': 'application/octet-stream' },
      body: content,
      signal: AbortSignal.timeout(300_000),
    });
    if (!res.ok) throw new MlflowApiError(`MLflow artifact upload ${relativePath}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`, res.status, '');
  }
}

/** A refused request is permanent; a server error, an overload (429) or a timeout (408) may pass on a retry. */
export class MlflowApiError extends MlflowError {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message, status < 500 && status !== 408 && status !== 429);
  }
}

/** Nested config as `config.a.b=value` params, down to `maxDepth` levels (deeper values as JSON). */
export function flattenParams(value: unknown, prefix: string, maxDepth: number, out: Record<string, string> = {}): Record<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && maxDepth > 0) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) flattenParams(v, `${prefix}.${k}`, maxDepth - 1, out);
  } else if (value !== undefined && value !== null) {
    out[prefix] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return out;
}

function harnessOf(taskName: string): string {
  const dot = taskName.indexOf('.');
  return dot > 0 ? taskName.slice(0, dot) : 'unknown';
}

function bareTask(taskName: string): string {
  const dot = taskName.indexOf('.');
  return dot > 0 ? taskName.slice(dot + 1) : taskName;
}

async function exportJob(client: MlflowClient, experimentId: string, job: ExportJob, settings: MlflowSettings): Promise<ExportOutcome> {
  const metrics = jobMetrics(job.jobDir, settings.log_metrics);
  const tags: Record<string, string> = {
    invocation_id: job.invocationId,
    job_id: job.jobId,
    task_name: bareTask(job.taskName),
    benchmark: bareTask(job.taskName),
    harness: harnessOf(job.taskName),
    executor: job.executor,
    model: job.model,
    ...Object.fromEntries(Object.entries(settings.tags).filter(([, v]) => v !== '')),
    'mlflow.runName': settings.run_name ?? `eval-${job.invocationId}-${bareTask(job.taskName)}`,
    ...(settings.description ? { 'mlflow.note.content': settings.description } : {}),
  };
  const existing = await client.findRunByTag(experimentId, 'job_id', job.jobId);
  if (existing && existing.status === 'FINISHED' && settings.skip_existing) {
    return { jobId: job.jobId, status: 'skipped', where: runUrl(client, experimentId, existing.run_id), message: 'a finished run exists (skip_existing)' };
  }
  const run =
    existing ??
    (
      await client.call<{ run: { info: RunInfo } }>('POST', 'runs/create', {
        experiment_id: experimentId,
        run_name: tags['mlflow.runName'],
        start_time: Date.now(),
        tags: Object.entries(tags).map(([key, value]) => ({ key: sanitizeKey(key), value })),
      })
    ).run.info;

  const params: Record<string, string> = { invocation_id: job.invocationId, executor: job.executor, model: job.model };
  for (const [k, v] of Object.entries(settings.extra_metadata)) params[k] = typeof v === 'string' ? v : JSON.stringify(v);
  if (settings.log_config_params) {
    const runConfig = parse(readFileSync(join(job.jobDir, 'artifacts', 'run_config.yml'), 'utf8')) as unknown;
    Object.assign(params, flattenParams(runConfig, 'config', settings.log_config_params_max_depth));
  }
  const timestamp = Date.now();
  const metricEntries = Object.entries(metrics).map(([key, value]) => ({ key: sanitizeKey(key), value, timestamp, step: 0 }));
  // A param's value cannot change in MLflow: an existing run keeps the params it has.
  const paramEntries = existing ? [] : Object.entries(params).map(([key, value]) => ({ key: sanitizeKey(key), value: value.slice(0, MAX_PARAM_VALUE) }));
  for (let i = 0; i < Math.max(metricEntries.length, paramEntries.length); i += 100) {
    await client.call('POST', 'runs/log-batch', {
      run_id: run.run_id,
      metrics: metricEntries.slice(i, i + 100),
      params: paramEntries.slice(i, i + 100),
      tags: existing ? Object.entries(tags).map(([key, value]) => ({ key: sanitizeKey(key), value })).slice(i, i + 100) : [],
    });
  }
  const artifactRoot = `${job.taskName}`;
  for (const file of jobFiles(job.jobDir, settings)) {
    await client.uploadArtifact(run.artifact_uri, `${artifactRoot}/${file.relativePath}`, readFileSync(file.path));
  }
  await client.call('POST', 'runs/update', { run_id: run.run_id, status: 'FINISHED', end_time: Date.now() });
  return { jobId: job.jobId, status: 'exported', where: runUrl(client, experimentId, run.run_id) };
}

function runUrl(client: MlflowClient, experimentId: string, runId: string): string {
  return `${client.baseUrl}/#/experiments/${experimentId}/runs/${runId}`;
}

export const mlflowExporter: Exporter<MlflowSettings> = {
  name: 'mlflow',
  settingsSchema: MlflowSettingsSchema,
  async export(jobs, settings, ctx) {
    const client = MlflowClient.fromEnv(resolveTrackingUri(settings, ctx.env), ctx.env);
    const experimentId = await client.experimentId(settings.experiment_name);
    const outcomes: ExportOutcome[] = [];
    for (const job of jobs) outcomes.push(await exportJob(client, experimentId, job, settings));
    return outcomes;
  },
};
