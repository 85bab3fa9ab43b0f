/**
 * Upstream's interceptors (nemo-evaluator `target.api_endpoint.adapter_config`), as a chain around the endpoint client.
 * A request passes the request links in their configured order (`system_message`, `payload_modifier`,
 * `request_logging`), then the request-to-response links (`caching`: a hit answers without sending; `endpoint`: the
 * client, with its retries, the outage gate and the concurrency limits), then the response links in order
 * (`response_logging`, `reasoning`, `response_stats`, `progress_tracking`, `raise_client_errors`). Cached responses
 * pass the response links too (as upstream's do), so a cache written before reasoning was configured is stripped too.
 *
 * Config: `interceptors: [{name, enabled, config}]` (a bare string is `{name}`), in upstream's order rules: request
 * links before `caching`/`endpoint`, response links after `endpoint`; `endpoint` is required. Without `interceptors`,
 * upstream's legacy flags (`use_caching`, `use_system_prompt` + `custom_system_prompt`, `use_reasoning`, …) are
 * converted to links; mixing both styles is an error. No adapter_config at all: `caching`, `endpoint`, `response_stats`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../common/files.js';
import type { CachedResponse } from './cache.js';

/** An adapter_config that cannot be used: the message names the key path. Nothing was sent. */
export class AdapterConfigError extends Error {
  override name = 'AdapterConfigError';
}

/** `raise_client_errors`: a client error from the endpoint ends the run (instead of counting as a failed sample). */
export class ClientErrorRaised extends Error {
  override name = 'ClientErrorRaised';
}

const REQUEST_LINKS = ['system_message', 'payload_modifier', 'request_logging'] as const;
const RESPONSE_LINKS = ['response_logging', 'reasoning', 'response_stats', 'progress_tracking', 'raise_client_errors'] as const;
export const INTERCEPTOR_NAMES = [...REQUEST_LINKS, 'caching', 'endpoint', ...RESPONSE_LINKS] as const;
export type InterceptorName = (typeof INTERCEPTOR_NAMES)[number];

const Params = z.record(z.string(), z.unknown());
const CONFIG_SCHEMAS = {
  system_message: z.object({ system_message: z.string(), strategy: z.enum(['prepend', 'replace', 'append']).default('prepend') }).strict(),
  payload_modifier: z
    .object({
      params_to_add: Params.default({}),
      params_to_remove: z.array(z.string()).default([]),
      params_to_rename: z.record(z.string(), z.string()).default({}),
    })
    .strict(),
  request_logging: z
    .object({ log_request_body: z.boolean().default(true), log_request_headers: z.boolean().default(true), max_requests: z.number().int().min(0).nullable().default(2), output_dir: z.string().nullish() })
    .strict(),
  response_logging: z
    .object({ log_response_body: z.boolean().default(true), log_response_headers: z.boolean().default(true), max_responses: z.number().int().min(0).nullable().default(2), output_dir: z.string().nullish() })
    .strict(),
  caching: z
    .object({
      cache_dir: z.string().nullish(),
      reuse_cached_responses: z.boolean().default(true),
      save_responses: z.boolean().default(true),
      save_requests: z.boolean().optional(),
      max_saved_requests: z.number().int().nullish(),
      max_saved_responses: z.number().int().nullish(),
    })
    .strict(),
  endpoint: z.object({}).strict(),
  reasoning: z
    .object({
      end_reasoning_token: z.string().min(1).default('</think>'),
      start_reasoning_token: z.string().min(1).nullable().default('<think>'),
      add_reasoning: z.boolean().default(true),
      migrate_reasoning_content: z.boolean().default(false),
      enable_reasoning_tracking: z.boolean().default(true),
      include_if_not_finished: z.boolean().default(true),
      cache_dir: z.string().nullish(),
    })
    .strict(),
  response_stats: z
    .object({
      collect_token_stats: z.boolean().default(true),
      collect_finish_reasons: z.boolean().default(true),
      collect_tool_calls: z.boolean().optional(),
      save_individuals: z.boolean().optional(),
      cache_dir: z.string().nullish(),
      logging_aggregated_stats_interval: z.number().int().nullish(),
    })
    .strict(),
  progress_tracking: z
    .object({
      progress_tracking_url: z.url({ protocol: /^https?$/ }).nullish(),
      progress_tracking_interval: z.number().int().min(1).default(1),
      progress_tracking_interval_seconds: z.number().positive().nullish(),
      request_method: z.enum(['PATCH', 'POST', 'PUT']).default('PATCH'),
      output_dir: z.string().nullish(),
    })
    .strict(),
  raise_client_errors: z
    .object({
      exclude_status_codes: z.array(z.number().int()).default([408, 429]),
      status_codes: z.array(z.number().int()).nullish(),
      status_code_range_start: z.number().int().default(400),
      status_code_range_end: z.number().int().default(499),
    })
    .strict(),
} satisfies Record<InterceptorName, z.ZodObject>;

type Configs = { [K in InterceptorName]: z.output<(typeof CONFIG_SCHEMAS)[K]> };
export type InterceptorSpec = { [K in InterceptorName]: { name: K; config: Configs[K] } }[InterceptorName];

/** Keys upstream accepts that change nothing here: each one set is reported (logged at start) as ignored, with why. */
const INERT_KEYS: Partial<Record<InterceptorName, Record<string, string>>> = {
  caching: { save_requests: 'requests are not stored (the key is their hash)', max_saved_requests: 'requests are not stored', max_saved_responses: 'every response is kept (a resume needs them)' },
  reasoning: { cache_dir: 'reasoning statistics go to eval_factory_metrics.json' },
  response_stats: {
    collect_tool_calls: 'tool calls are not requested by the built-in tasks',
    save_individuals: 'per-request statistics are not saved',
    cache_dir: 'statistics go to eval_factory_metrics.json',
    logging_aggregated_stats_interval: 'statistics are written once, at the end',
  },
  progress_tracking: { progress_tracking_interval_seconds: 'progress is reported by count (progress_tracking_interval)' },
};

/** Legacy flags (upstream's AdapterConfig fields before `interceptors`) and the ones that are only accepted. */
const LEGACY_KEYS = new Set([
  'use_caching', 'caching_dir', 'save_requests', 'save_responses', 'use_system_prompt', 'custom_system_prompt', 'use_request_logging',
  'max_logged_requests', 'use_response_logging', 'max_logged_responses', 'use_reasoning', 'end_reasoning_token', 'start_reasoning_token',
  'include_if_reasoning_not_finished', 'track_reasoning', 'use_progress_tracking', 'progress_tracking_url', 'progress_tracking_interval',
  'use_raise_client_errors', 'params_to_add', 'params_to_remove', 'params_to_rename', 'tracking_requests_stats', 'output_dir',
  'max_saved_requests', 'max_saved_responses',
]);
/** Legacy flags that map to no link here. */
const LEGACY_INERT: Record<string, string> = {
  save_requests: 'requests are not stored (the key is their hash)',
  save_responses: 'responses are always cached (a resume needs them)',
  max_saved_requests: 'requests are not stored',
  max_saved_responses: 'every response is kept (a resume needs them)',
  output_dir: 'logs and the progress file go to the run\'s output directory',
};
/** adapter_config keys that are not interceptors and not legacy flags: accepted, reported as ignored. */
const OTHER_KEYS: Record<string, string> = {
  endpoint_type: 'the endpoint type is target.api_endpoint.type',
  generate_html_report: 'no HTML report is written (per-sample outputs hold every request and response)',
  html_report_size: 'no HTML report is written',
  log_failed_requests: 'failed requests are recorded in the per-sample outputs (error)',
  post_eval_hooks: 'post-evaluation hooks are not supported',
  discovery: 'third-party interceptors are not supported',
  mode: 'the chain always runs inside the harness (client mode)',
};

function validate<K extends InterceptorName>(name: K, config: unknown, at: string): Configs[K] {
  const parsed = CONFIG_SCHEMAS[name].safeParse(config ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = [at, ...(issue?.path ?? []).map(String)].join('.');
    const detail = issue?.code === 'unrecognized_keys' ? `unknown key(s) ${issue.keys.join(', ')}` : (issue?.message ?? 'invalid');
    throw new AdapterConfigError(`${where}: ${detail}`);
  }
  return parsed.data as Configs[K];
}

const InterceptorEntrySchema = z.union([z.string(), z.object({ name: z.string(), enabled: z.boolean().default(true), config: z.record(z.string(), z.unknown()).nullish() }).strict()]);

export interface AdapterPlan {
  links: InterceptorSpec[];
  /** Accepted keys that change nothing here (the harness logs them at start). */
  ignored: string[];
}

/**
 * The links an adapter_config asks for, validated (`at` is its key path, for messages). Throws AdapterConfigError
 * naming the key path.
 */
export function planInterceptors(adapterConfig: Record<string, unknown> | null | undefined, at = 'target.api_endpoint.adapter_config'): AdapterPlan {
  const ignored: string[] = [];
  if (!adapterConfig) return { links: [link('caching', {}, at), link('endpoint', {}, at), link('response_stats', {}, at)], ignored };
  const explicit = Array.isArray(adapterConfig.interceptors) && adapterConfig.interceptors.length > 0;
  const legacy = Object.keys(adapterConfig).filter((k) => LEGACY_KEYS.has(k));
  for (const [key, value] of Object.entries(adapterConfig)) {
    if (key === 'interceptors' || LEGACY_KEYS.has(key)) continue;
    if (key in OTHER_KEYS) {
      if (value !== null && value !== undefined) ignored.push(`${at}.${key}: ignored: ${OTHER_KEYS[key]}`);
      continue;
    }
    throw new AdapterConfigError(`${at}.${key}: unknown key (valid: interceptors, the legacy flags ${[...LEGACY_KEYS].join(', ')}, ${Object.keys(OTHER_KEYS).join(', ')})`);
  }
  if (explicit && legacy.length > 0) {
    throw new AdapterConfigError(`${at}: interceptors and legacy flags (${legacy.join(', ')}) cannot be mixed; move the flags into the interceptors' config`);
  }
  if (explicit) return { links: explicitLinks(adapterConfig.interceptors as unknown[], at, ignored), ignored };
  for (const [key, why] of Object.entries(LEGACY_INERT)) {
    if (adapterConfig[key] !== null && adapterConfig[key] !== undefined) ignored.push(`${at}.${key}: ignored: ${why}`);
  }
  return { links: legacyLinks(adapterConfig, at), ignored };
}

function link<K extends InterceptorName>(name: K, config: unknown, at: string): InterceptorSpec {
  return { name, config: validate(name, config, at) } as InterceptorSpec;
}

function explicitLinks(entries: unknown[], at: string, ignored: string[]): InterceptorSpec[] {
  const links: InterceptorSpec[] = [];
  const stageOf = (name: InterceptorName) => ((REQUEST_LINKS as readonly string[]).includes(name) ? 0 : (RESPONSE_LINKS as readonly string[]).includes(name) ? 2 : 1);
  let stage = 0;
  let sawEndpoint = false;
  entries.forEach((raw, i) => {
    const where = `${at}.interceptors[${i}]`;
    const parsed = InterceptorEntrySchema.safeParse(raw);
    if (!parsed.success) throw new AdapterConfigError(`${where}: expected a name or {name, enabled, config}`);
    const entry = typeof parsed.data === 'string' ? { name: parsed.data, enabled: true, config: {} } : parsed.data;
    if (!(INTERCEPTOR_NAMES as readonly string[]).includes(entry.name)) {
      throw new AdapterConfigError(`${where}.name: unknown interceptor "${entry.name}" (built in: ${INTERCEPTOR_NAMES.join(', ')})`);
    }
    const name = entry.name as InterceptorName;
    if (links.some((l) => l.name === name)) throw new AdapterConfigError(`${where}.name: ${name} is listed twice`);
    const spec = link(name, entry.config, `${where}.config`);
    for (const [key, why] of Object.entries(INERT_KEYS[name] ?? {})) {
      const value = (entry.config ?? {})[key];
      if (value !== null && value !== undefined) ignored.push(`${where}.config.${key}: ignored: ${why}`);
    }
    const s = stageOf(name);
    if (s < stage) throw new AdapterConfigError(`${where}: ${name} is a ${['request', 'request-to-response', 'response'][s]} interceptor and must come before the ${['request', 'request-to-response', 'response'][stage]} ones`);
    if (name === 'caching' && sawEndpoint) throw new AdapterConfigError(`${where}: caching must come before endpoint`);
    stage = s;
    if (name === 'endpoint') sawEndpoint = true;
    if (entry.enabled) links.push(spec);
  });
  if (!links.some((l) => l.name === 'endpoint')) throw new AdapterConfigError(`${at}.interceptors: the endpoint interceptor is required (enabled)`);
  return links;
}

/** Upstream's conversion of the legacy flags, in its order. */
function legacyLinks(flags: Record<string, unknown>, at: string): InterceptorSpec[] {
  const f = (key: string) => flags[key] ?? undefined;
  const links: InterceptorSpec[] = [];
  const sub = (key: string) => `${at} (from ${key})`;
  if (f('use_system_prompt') === true && typeof f('custom_system_prompt') === 'string') {
    links.push(link('system_message', { system_message: f('custom_system_prompt') }, sub('custom_system_prompt')));
  }
  if (f('params_to_add') || f('params_to_remove') || f('params_to_rename')) {
    const config = Object.fromEntries(['params_to_add', 'params_to_remove', 'params_to_rename'].filter((k) => f(k)).map((k) => [k, f(k)]));
    links.push(link('payload_modifier', config, sub('params_to_*')));
  }
  if (f('use_request_logging') === true) links.push(link('request_logging', f('max_logged_requests') == null ? {} : { max_requests: f('max_logged_requests') }, sub('use_request_logging')));
  if (f('use_caching') !== false) {
    links.push(link('caching', f('caching_dir') == null ? {} : { cache_dir: f('caching_dir') }, sub('use_caching')));
  }
  links.push(link('endpoint', {}, at));
  if (f('use_response_logging') === true) links.push(link('response_logging', f('max_logged_responses') == null ? {} : { max_responses: f('max_logged_responses') }, sub('use_response_logging')));
  if (f('use_reasoning') === true) {
    const config: Record<string, unknown> = {};
    if (f('end_reasoning_token') != null) config.end_reasoning_token = f('end_reasoning_token');
    if (f('start_reasoning_token') != null) config.start_reasoning_token = f('start_reasoning_token');
    if (f('include_if_reasoning_not_finished') != null) config.include_if_not_finished = f('include_if_reasoning_not_finished');
    if (f('track_reasoning') != null) config.enable_reasoning_tracking = f('track_reasoning');
    links.push(link('reasoning', config, sub('use_reasoning')));
  }
  if (f('tracking_requests_stats') !== false) links.push(link('response_stats', {}, sub('tracking_requests_stats')));
  if (f('use_progress_tracking') === true) {
    const config: Record<string, unknown> = {};
    if (f('progress_tracking_url') != null) config.progress_tracking_url = f('progress_tracking_url');
    if (f('progress_tracking_interval') != null) config.progress_tracking_interval = f('progress_tracking_interval');
    links.push(link('progress_tracking', config, sub('use_progress_tracking')));
  }
  if (f('use_raise_client_errors') === true) links.push(link('raise_client_errors', {}, sub('use_raise_client_errors')));
  return links;
}

// ---------------------------------------------------------------------------------------------------------------
// The chain at run time.

/** A response after the response links: what is scored (`text`), and what reasoning was taken out of it. */
export interface ProcessedResponse extends CachedResponse {
  /** The reasoning taken out (`reasoning_content`, or the text up to the end token); null when there was none. */
  reasoning: string | null;
}

/** What the endpoint link returns: a response, or the error of a request that failed for good (status when HTTP). */
export type EndpointResult = { response: CachedResponse } | { error: string; status: number | null };

export interface ChainDeps {
  /** The run's output directory (default place of logs, caches and the progress file). */
  outputDir: string;
  /** Log lines (the harness's stdout: logs/client_stdout.log under the launcher). */
  log: (line: string) => void;
}

/** The store behind the caching link (harness/cache.ts's ResponseCache). */
export interface ResponseStore {
  get(key: string): CachedResponse | undefined;
  put(key: string, response: CachedResponse): void;
}

interface ReasoningStats {
  responses: number;
  responses_with_reasoning: number;
  reasoning_finished: number;
  reasoning_unfinished: number;
  reasoning_words: number;
  answer_words: number;
}

const words = (text: string) => (text.trim() === '' ? 0 : text.trim().split(/\s+/).length);

export class InterceptorChain {
  private readonly by: Partial<{ [K in InterceptorName]: Configs[K] }> = {};
  private requestsLogged = 0;
  private responsesLogged = 0;
  private progressCount = 0;
  private progressFailed = false;
  private readonly progressPosts = new Set<Promise<void>>();
  private store_: ResponseStore | undefined;
  private readonly finishReasons = new Map<string, number>();
  private readonly tokens = { responses: 0, prompt: 0, completion: 0 };
  private readonly reasoningStats: ReasoningStats = { responses: 0, responses_with_reasoning: 0, reasoning_finished: 0, reasoning_unfinished: 0, reasoning_words: 0, answer_words: 0 };

  constructor(
    readonly links: readonly InterceptorSpec[],
    private readonly deps: ChainDeps,
  ) {
    for (const l of links) (this.by as Record<string, unknown>)[l.name] = l.config;
  }

  /** Whether the chain has this link. */
  has(name: InterceptorName): boolean {
    return name in this.by;
  }

  /** The caching link's directory (`cache_dir`, else `<output_dir>/cache`); undefined without caching. */
  get cacheDir(): string | undefined {
    const caching = this.by.caching;
    return caching ? (caching.cache_dir ?? join(this.deps.outputDir, 'cache')) : undefined;
  }

  /** The store of the caching link (opened by the engine in `cacheDir`). */
  attachCache(store: ResponseStore | undefined): void {
    this.store_ = store;
  }

  /** The request links, in order: the body that is sent (and whose hash is the cache key). */
  prepareRequest(body: Record<string, unknown>): Record<string, unknown> {
    let out = body;
    for (const l of this.links) {
      if (l.name === 'system_message') out = withSystemMessage(out, l.config.system_message, l.config.strategy);
      else if (l.name === 'payload_modifier') out = modifyPayload(out, l.config);
      else if (l.name === 'request_logging') this.logRequest(out, l.config);
    }
    return out;
  }

  /** The caching link: a cached response for `key`, when the chain caches and reuses. */
  cached(key: string): CachedResponse | undefined {
    return this.by.caching?.reuse_cached_responses ? this.store_?.get(key) : undefined;
  }

  /** The caching link, on the way back: keeps a fresh response. */
  store(key: string, response: CachedResponse): void {
    if (this.by.caching?.save_responses) this.store_?.put(key, response);
  }

  /** `raise_client_errors`: a failed request whose status is in its set ends the run. */
  checkFailure(status: number | null, message: string): void {
    const rule = this.by.raise_client_errors;
    if (!rule || status === null) return;
    const listed = rule.status_codes ? rule.status_codes.includes(status) : status >= rule.status_code_range_start && status <= rule.status_code_range_end;
    if (listed && !rule.exclude_status_codes.includes(status)) throw new ClientErrorRaised(`the endpoint answered a client error (raise_client_errors): ${message}`);
  }

  /** The response links, in order. `cached`: the response came from the cache (response_stats and progress skip it). */
  processResponse(response: CachedResponse, cached: boolean): ProcessedResponse {
    let out: ProcessedResponse = { ...response, reasoning: null };
    for (const l of this.links) {
      if (l.name === 'response_logging') this.logResponse(out, cached, l.config);
      else if (l.name === 'reasoning') out = this.stripReasoning(out, l.config);
      else if (l.name === 'response_stats' && !cached) this.countResponse(out, l.config);
      else if (l.name === 'progress_tracking' && !cached) this.trackProgress(l.config);
    }
    return out;
  }

  private logRequest(body: Record<string, unknown>, config: Configs['request_logging']): void {
    if (config.max_requests !== null && this.requestsLogged >= config.max_requests) return;
    this.requestsLogged++;
    // The API key never reaches the chain (the client adds it), so the headers logged are the fixed ones.
    const entry = { ...(config.log_request_headers ? { headers: { 'content-type': 'application/json', authorization: '***' } } : {}), ...(config.log_request_body ? { body } : {}) };
    this.deps.log(`request_logging: ${JSON.stringify(entry)}`);
  }

  private logResponse(response: ProcessedResponse, cached: boolean, config: Configs['response_logging']): void {
    if (config.max_responses !== null && this.responsesLogged >= config.max_responses) return;
    this.responsesLogged++;
    const entry = { cached, ...(config.log_response_body ? { text: response.text, reasoning_content: response.reasoningContent ?? null, finish_reason: response.finishReason } : {}) };
    this.deps.log(`response_logging: ${JSON.stringify(entry)}`);
  }

  private stripReasoning(response: ProcessedResponse, config: Configs['reasoning']): ProcessedResponse {
    if (!config.add_reasoning) return response;
    const content = response.text;
    let reasoning: string | null;
    let answer: string;
    let finished: boolean;
    const separate = response.reasoningContent;
    if (separate && separate.trim() !== '') {
      // The server split it already (reasoning_content): the content is the answer.
      reasoning = separate;
      answer = content;
      finished = content.trim() !== '';
    } else {
      const end = content.lastIndexOf(config.end_reasoning_token);
      if (end !== -1) {
        finished = true;
        reasoning = content.slice(0, content.indexOf(config.end_reasoning_token));
        answer = content.slice(end + config.end_reasoning_token.length).replace(/^\n+|\n+$/g, '');
      } else {
        finished = false;
        const started = config.start_reasoning_token !== null && content.includes(config.start_reasoning_token);
        reasoning = started ? content : null;
        answer = started && !config.include_if_not_finished ? '' : content;
      }
    }
    if (config.enable_reasoning_tracking) {
      const s = this.reasoningStats;
      s.responses++;
      if (reasoning !== null) {
        s.responses_with_reasoning++;
        if (finished) s.reasoning_finished++;
        else s.reasoning_unfinished++;
        s.reasoning_words += words(reasoning);
      }
      s.answer_words += words(answer);
    }
    const migrated = config.migrate_reasoning_content && separate ? `${config.start_reasoning_token ?? ''}${separate}${config.end_reasoning_token}${content}` : undefined;
    return { ...response, text: answer, reasoning, ...(migrated === undefined ? {} : { reasoningContent: migrated }) };
  }

  private countResponse(response: ProcessedResponse, config: Configs['response_stats']): void {
    this.tokens.responses++;
    if (config.collect_token_stats) {
      this.tokens.prompt += response.promptTokens;
      this.tokens.completion += response.completionTokens;
    }
    if (config.collect_finish_reasons) {
      const reason = response.finishReason ?? 'unknown';
      this.finishReasons.set(reason, (this.finishReasons.get(reason) ?? 0) + 1);
    }
  }

  private trackProgress(config: Configs['progress_tracking']): void {
    this.progressCount++;
    if (this.progressCount % config.progress_tracking_interval !== 0) return;
    const count = this.progressCount;
    if (config.output_dir) {
      try {
        mkdirSync(config.output_dir, { recursive: true });
        writeFileAtomic(join(config.output_dir, 'progress'), `${count}\n`);
      } catch (err) {
        this.progressError(`writing ${join(config.output_dir, 'progress')}: ${(err as Error).message}`);
      }
    }
    const url = config.progress_tracking_url;
    if (!url) return;
    // Imported here: the config planner loads this module too, and must not load the HTTP client with it.
    const post: Promise<void> = import('./http.js')
      .then(({ requestOnce }) =>
        requestOnce(url, {
          method: config.request_method,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ samples_processed: count }),
        }),
      )
      .then(() => undefined)
      .catch((err: unknown) => this.progressError(`${config.request_method} ${url}: ${(err as Error).message}`))
      .finally(() => this.progressPosts.delete(post));
    this.progressPosts.add(post);
  }

  private progressError(message: string): void {
    if (this.progressFailed) return;
    this.progressFailed = true;
    this.deps.log(`progress_tracking: ${message} (progress tracking goes on; later failures are not logged)`);
  }

  /** Waits for progress reports still in flight (at the end of a run). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.progressPosts]);
  }

  /** What the response links collected, for eval_factory_metrics.json. */
  metrics(): { response_stats?: Record<string, unknown>; reasoning?: Record<string, unknown> } {
    const out: { response_stats?: Record<string, unknown>; reasoning?: Record<string, unknown> } = {};
    const stats = this.by.response_stats;
    if (stats) {
      const n = this.tokens.responses;
      out.response_stats = {
        responses_counted: n,
        ...(stats.collect_token_stats ? { avg_prompt_tokens: n ? this.tokens.prompt / n : 0, avg_completion_tokens: n ? this.tokens.completion / n : 0 } : {}),
        ...(stats.collect_finish_reasons ? { finish_reason: Object.fromEntries(this.finishReasons) } : {}),
      };
    }
    if (this.by.reasoning?.enable_reasoning_tracking) {
      const s = this.reasoningStats;
      const withR = s.responses_with_reasoning;
      out.reasoning = {
        ...s,
        avg_reasoning_words: withR ? s.reasoning_words / withR : 0,
        avg_answer_words: s.responses ? s.answer_words / s.responses : 0,
      };
    }
    return out;
  }
}

/** `system_message`: the system message of a chat request (completions requests have none and pass unchanged). */
export function withSystemMessage(body: Record<string, unknown>, message: string, strategy: 'prepend' | 'replace' | 'append'): Record<string, unknown> {
  if (!Array.isArray(body.messages)) return body;
  const messages = body.messages as Array<{ role: string; content: unknown }>;
  const existing = messages.findIndex((m) => m.role === 'system');
  if (existing === -1 || strategy === 'replace') {
    return { ...body, messages: [{ role: 'system', content: message }, ...messages.filter((m) => m.role !== 'system')] };
  }
  const old = String(messages[existing]?.content ?? '');
  const content = strategy === 'prepend' ? `${message}\n${old}` : `${old}\n${message}`;
  return { ...body, messages: messages.map((m, i) => (i === existing ? { ...m, content } : m)) };
}

/**
 * `payload_modifier`: removes, renames, then adds parameters. `params_to_add` merges objects deeply; its `extra_body`
 * goes into the body itself, as the OpenAI client sends it.
 */
export function modifyPayload(body: Record<string, unknown>, config: Configs['payload_modifier']): Record<string, unknown> {
  const out: Record<string, unknown> = { ...body };
  for (const key of config.params_to_remove) delete out[key];
  for (const [from, to] of Object.entries(config.params_to_rename)) {
    if (from in out) {
      out[to] = out[from];
      delete out[from];
    }
  }
  const { extra_body: extraBody, ...add } = config.params_to_add;
  const merged = deepMerge(out, add);
  return extraBody !== null && typeof extraBody === 'object' ? deepMerge(merged, extraBody as Record<string, unknown>) : merged;
}

function deepMerge(base: Record<string, unknown>, add: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(add)) {
    const prev = out[key];
    const bothObjects = [prev, value].every((v) => v !== null && typeof v === 'object' && !Array.isArray(v));
    out[key] = bothObjects ? deepMerge(prev as Record<string, unknown>, value as Record<string, unknown>) : value;
  }
  return out;
}
