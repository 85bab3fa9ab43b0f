/**
 * What a job's harness gets, generated as upstream's launcher generates it for its containers (golden-tested
 * against nemo-evaluator-launcher 0.2.6, test/fixtures/upstream-golden/): the run config (config_ef.yaml) and,
 * for a harness container, its command. Pure, so the planner, dry runs and every executor that runs a
 * container (Docker; Slurm with pyxis) share it.
 *
 * The run config is the task's whole merged `nemo_evaluator_config` (params.extra, adapter_config, keys
 * nemo-evaluator may add later: nothing is dropped), completed where the user left a key out: the endpoint
 * (url, model_id, type, api_key_name), `config.type`, `config.output_dir` and the launcher's metadata. A key the
 * user set is never overwritten, as upstream.
 */
import { shellQuote } from '../common/shell.js';

export interface TaskEndpoint {
  url: string;
  modelId: string;
  type: string;
  /** The NAME of the env var with the API key. */
  apiKeyName?: string | undefined;
  /** `target.api_endpoint.stream` (evalflow's harness streams when it is true). */
  stream?: boolean | undefined;
}

export interface RunConfigInput {
  /** The merged `nemo_evaluator_config` of the task (task over evaluation), as the user wrote it. */
  evaluatorConfig: Record<string, unknown>;
  /** `config.type` unless the user set one: the catalogue's task name within its harness. */
  taskType: string;
  /** Where the harness writes its artifacts, as it sees them. */
  outputDir: string;
  /** The endpoint the launcher derived (target, or the deployment). */
  endpoint: TaskEndpoint;
  /** The launcher's own keys under `metadata` (added where the user's metadata lacks them). */
  metadata: Record<string, unknown>;
}

/** config_ef.yaml: the user's config, completed where keys are absent (upstream's order of precedence). */
export function harnessRunConfig(input: RunConfigInput): Record<string, unknown> {
  const config = structuredClone(input.evaluatorConfig);
  const fill = (path: string[], value: unknown) => {
    if (value !== undefined) setIfAbsent(config, path, value);
  };
  fill(['target', 'api_endpoint', 'url'], input.endpoint.url);
  fill(['target', 'api_endpoint', 'model_id'], input.endpoint.modelId);
  fill(['target', 'api_endpoint', 'type'], input.endpoint.type);
  fill(['config', 'type'], input.taskType);
  fill(['config', 'output_dir'], input.outputDir);
  if (input.endpoint.apiKeyName) fill(['target', 'api_endpoint', 'api_key_name'], input.endpoint.apiKeyName);
  if (input.endpoint.stream != null) fill(['target', 'api_endpoint', 'stream'], input.endpoint.stream);
  for (const [key, value] of Object.entries(input.metadata)) fill(['metadata', key], value);
  return config;
}

export interface ContainerCommandInput {
  /** Runs before the harness, in the same shell (`source`): upstream's `pre_cmd`. */
  preCmd?: string | undefined;
  /** Runs after the harness whatever its outcome (an EXIT trap that keeps the harness's exit code): `post_cmd`. */
  postCmd?: string | undefined;
  /** Where config_ef.yaml is mounted in the container. */
  runConfigPath: string;
  /** The artifacts dir in the container (made writable for the host user afterwards, as upstream). */
  resultsDir: string;
  /** The job's secrets file in the container (`export NAME=value` lines), sourced first. */
  secretsFile: string;
}

/** How the container is started: the image's entrypoint replaced by bash running `cmd[0]`. */
export interface ContainerCommand {
  entrypoint: string[];
  cmd: string[];
}

/**
 * The command of an upstream harness container: upstream's `bash -c` script (pre_cmd.sh and post_cmd.sh written
 * from base64, `nemo-evaluator run_eval` with the `eval-factory` fallback, post_cmd in an EXIT trap, /results
 * opened up for the host user), with two changes: the secrets come from the mounted secrets file instead of
 * `docker run -e` (so `docker inspect` shows none), and config_ef.yaml is a mounted file instead of a third
 * base64 blob (it is the job dir's config_ef.yaml, readable there).
 */
export function harnessContainerCommand(input: ContainerCommandInput): ContainerCommand {
  const results = shellQuote(input.resultsDir);
  const harness = [
    `. ${shellQuote(input.secretsFile)}`,
    base64File(input.preCmd ?? '', 'pre_cmd.sh'),
    base64File(input.postCmd ?? '', 'post_cmd.sh'),
    'cmd=$(command -v nemo-evaluator >/dev/null 2>&1 && echo nemo-evaluator || echo eval-factory)',
    'source pre_cmd.sh',
    `(trap "code=\\$?; source post_cmd.sh; exit \\$code" EXIT; $cmd run_eval --run_config ${shellQuote(input.runConfigPath)})`,
  ].join(' && ');
  const script = [
    `${harness} ;`,
    'exit_code=$?',
    `chmod 777 -R ${results};`,
    'if [ "$exit_code" -ne 0 ]; then echo "The evaluation container failed with exit code $exit_code" >&2; exit "$exit_code"; fi;',
    'echo "Container completed successfully" >&2;',
    'exit 0',
  ].join('\n');
  return { entrypoint: ['bash', '-c'], cmd: [script] };
}

/** Upstream's way to ship a file through a `bash -c` boundary: base64 only, so nothing in it is shell syntax. */
function base64File(content: string, file: string): string {
  return `echo "${Buffer.from(content, 'utf8').toString('base64')}" | base64 -d > ${file}`;
}

function setIfAbsent(tree: Record<string, unknown>, path: string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  const last = path[path.length - 1] as string;
  if (node[last] === undefined) node[last] = structuredClone(value);
}
