/**
 * Request parsing of the model server: an OpenAI-style JSON body → a typed generation request, or an
 * HttpError with the OpenAI error shape. No model here: token-id prompts are checked for shape only, and
 * the engine tokenizes text prompts.
 */
import type { IncomingMessage } from 'node:http';
import type { ChatHistoryItem, Token } from 'node-llama-cpp';

const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_STOP_SEQUENCES = 16;

export type Json = Record<string, unknown>;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = status >= 500 ? 'server_error' : 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null): HttpError =>
  new HttpError(400, message, 'invalid_request_error', param, code);

export function errorBody(err: HttpError): { error: { message: string; type: string; param: string | null; code: string | null } } {
  return { error: { message: err.message, type: err.type, param: err.param, code: err.code } };
}

export interface SamplingParams {
  maxTokens: number | undefined;
  temperature: number;
  topP: number | undefined;
  topK: number;
  minP: number | undefined;
  seed: number | undefined;
  stop: string[];
  frequencyPenalty: number;
  presencePenalty: number;
  repeatPenalty: number;
  stream: boolean;
  includeUsage: boolean;
}

/** What to generate: a chat turn (rendered with the model's template) or a raw prompt continuation. */
export type GenerationRequest =
  | { kind: 'chat'; history: ChatHistoryItem[]; params: SamplingParams }
  | { kind: 'completion'; prompt: string | Token[]; params: SamplingParams };

/** The body of POST /v1/chat/completions or /v1/completions as a generation request. */
export function parseGenerationRequest(kind: GenerationRequest['kind'], body: Json): GenerationRequest {
  const params = parseSampling(body);
  return kind === 'chat' ? { kind, history: parseMessages(body), params } : { kind, prompt: parsePrompt(body['prompt']), params };
}

function isPresent(v: unknown): boolean {
  return v !== undefined && v !== null;
}

function optNumber(body: Json, key: string, min: number, max: number, integer = false): number | undefined {
  const v = body[key];
  if (!isPresent(v)) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(`'${key}' must be a number`, key);
  if (integer && !Number.isInteger(v)) throw badRequest(`'${key}' must be an integer`, key);
  if (v < min || v > max) throw badRequest(`'${key}' must be between ${min} and ${max}, got ${v}`, key);
  return v;
}

function optBoolean(body: Json, key: string): boolean | undefined {
  const v = body[key];
  if (!isPresent(v)) return undefined;
  if (typeof v !== 'boolean') throw badRequest(`'${key}' must be a boolean`, key);
  return v;
}

function rejectUnsupported(body: Json, key: string, allowed: (v: unknown) => boolean, what: string): void {
  const v = body[key];
  if (isPresent(v) && !allowed(v)) throw badRequest(`'${key}' ${what}`, key);
}

function parseSampling(body: Json): SamplingParams {
  if (isPresent(body['model']) && typeof body['model'] !== 'string') throw badRequest(`'model' must be a string`, 'model');
  const maxCompletion = optNumber(body, 'max_completion_tokens', 1, Number.MAX_SAFE_INTEGER, true);
  const maxTokens = maxCompletion ?? optNumber(body, 'max_tokens', 1, Number.MAX_SAFE_INTEGER, true);
  const n = optNumber(body, 'n', 1, 128, true);
  if (n !== undefined && n !== 1) throw badRequest(`only n=1 is supported`, 'n');
  rejectUnsupported(body, 'best_of', (v) => v === 1, 'must be 1');
  rejectUnsupported(body, 'echo', (v) => v === false, 'is not supported');
  rejectUnsupported(body, 'logprobs', (v) => v === false || v === 0, 'is not supported');
  rejectUnsupported(body, 'top_logprobs', (v) => v === 0, 'is not supported');
  rejectUnsupported(body, 'suffix', (v) => v === '', 'is not supported');
  rejectUnsupported(body, 'logit_bias', (v) => typeof v === 'object' && Object.keys(v as object).length === 0, 'is not supported');
  rejectUnsupported(body, 'tools', (v) => Array.isArray(v) && v.length === 0, 'are not supported by this server');
  rejectUnsupported(body, 'functions', (v) => Array.isArray(v) && v.length === 0, 'are not supported by this server');
  rejectUnsupported(body, 'response_format', (v) => typeof v === 'object' && (v as Json)['type'] === 'text', `is not supported (only {"type":"text"})`);

  let stop: string[] = [];
  const rawStop = body['stop'];
  if (typeof rawStop === 'string') stop = [rawStop];
  else if (Array.isArray(rawStop)) {
    if (!rawStop.every((s): s is string => typeof s === 'string')) throw badRequest(`'stop' must be a string or an array of strings`, 'stop');
    stop = rawStop;
  } else if (isPresent(rawStop)) throw badRequest(`'stop' must be a string or an array of strings`, 'stop');
  stop = stop.filter((s) => s !== '');
  if (stop.length > MAX_STOP_SEQUENCES) throw badRequest(`at most ${MAX_STOP_SEQUENCES} stop sequences are supported`, 'stop');

  const stream = optBoolean(body, 'stream') ?? false;
  let includeUsage = false;
  const so = body['stream_options'];
  if (isPresent(so)) {
    if (typeof so !== 'object' || Array.isArray(so)) throw badRequest(`'stream_options' must be an object`, 'stream_options');
    includeUsage = optBoolean(so as Json, 'include_usage') ?? false;
  }

  return {
    maxTokens,
    temperature: optNumber(body, 'temperature', 0, 2) ?? 1,
    topP: optNumber(body, 'top_p', 0, 1),
    topK: optNumber(body, 'top_k', 0, 1_000_000, true) ?? 0,
    minP: optNumber(body, 'min_p', 0, 1),
    seed: optNumber(body, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true),
    stop,
    frequencyPenalty: optNumber(body, 'frequency_penalty', -2, 2) ?? 0,
    presencePenalty: optNumber(body, 'presence_penalty', -2, 2) ?? 0,
    repeatPenalty: optNumber(body, 'repeat_penalty', 0, 10) ?? 1,
    stream,
    includeUsage,
  };
}

function messageText(content: unknown, index: number, role: string): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) {
    if (role === 'assistant') return '';
    throw badRequest(`'messages[${index}].content' is required`, `messages[${index}].content`);
  }
  if (Array.isArray(content)) {
    return content
      .map((part: unknown, j) => {
        const p = part as Json | null;
        if (typeof p !== 'object' || p === null || p['type'] !== 'text' || typeof p['text'] !== 'string') {
          throw badRequest(`'messages[${index}].content[${j}]' must be a text part ({"type":"text","text":...}); other content types are not supported`, `messages[${index}].content`);
        }
        return p['text'];
      })
      .join('');
  }
  throw badRequest(`'messages[${index}].content' must be a string or an array of text parts`, `messages[${index}].content`);
}

function parseMessages(body: Json): ChatHistoryItem[] {
  const messages = body['messages'];
  if (!isPresent(messages)) throw badRequest(`'messages' is a required property`, 'messages');
  if (!Array.isArray(messages)) throw badRequest(`'messages' must be an array`, 'messages');
  if (messages.length === 0) throw badRequest(`'messages' must contain at least one message`, 'messages');
  const history: ChatHistoryItem[] = messages.map((m: unknown, i): ChatHistoryItem => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw badRequest(`'messages[${i}]' must be an object`, `messages[${i}]`);
    const role = (m as Json)['role'];
    if (typeof role !== 'string') throw badRequest(`'messages[${i}].role' must be a string`, `messages[${i}].role`);
    const text = messageText((m as Json)['content'], i, role);
    switch (role) {
      case 'system':
      case 'developer':
        return { type: 'system', text };
      case 'user':
        return { type: 'user', text };
      case 'assistant':
        return { type: 'model', response: [text] };
      default:
        throw badRequest(`'messages[${i}].role' must be one of system, developer, user, assistant (got '${role}')`, `messages[${i}].role`);
    }
  });
  // A trailing assistant message is a prefill that the model continues (llama.cpp server semantics);
  // otherwise the model writes a new assistant turn.
  if (history[history.length - 1]?.type !== 'model') history.push({ type: 'model', response: [] });
  return history;
}

/** A single prompt: text (special tokens are parsed by the engine) or token ids. */
function parsePrompt(prompt: unknown): string | Token[] {
  if (!isPresent(prompt)) throw badRequest(`'prompt' is a required property`, 'prompt');
  const single = Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === 'string' ? prompt[0] : prompt;
  if (typeof single === 'string') return single;
  if (Array.isArray(single) && single.length > 0 && single.every((t) => typeof t === 'number' && Number.isInteger(t) && t >= 0)) return single as Token[];
  if (Array.isArray(single) && single.length > 1 && single.every((s) => typeof s === 'string')) throw badRequest(`only one prompt per request is supported`, 'prompt');
  throw badRequest(`'prompt' must be a string or an array of token ids`, 'prompt');
}

export async function readJsonBody(req: IncomingMessage): Promise<Json> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw badRequest('the request body is empty; expected a JSON object');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw badRequest(`We could not parse the JSON body of your request: ${err instanceof Error ? err.message : String(err)}`, null, 'invalid_json');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw badRequest('the request body must be a JSON object');
  return parsed as Json;
}
