/**
 * The model server's engine: node-llama-cpp on CPU, one llama context with `parallel` sequences. A
 * generation takes a free sequence (cleared first, so every request starts from an empty KV cache and
 * greedy output does not depend on earlier requests) and waits in a FIFO queue when all are busy. Chat and
 * raw completions differ only in how the prompt is built and which node-llama-cpp generator runs it.
 */
import { randomInt } from 'node:crypto';
import {
  getLlama,
  JinjaTemplateChatWrapper,
  LlamaChat,
  LlamaCompletion,
  LlamaLogLevel,
  resolveChatWrapper,
  type ChatWrapper,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import { badRequest, HttpError, type GenerationRequest, type SamplingParams } from './requests.js';

const MAX_QUEUE = 4096;

export interface EngineOptions {
  modelPath: string;
  /** Context size of each sequence, in tokens. */
  contextSize: number;
  /** Requests decoded at once (sequences of the llama context); more are queued. */
  parallel: number;
  /** CPU threads for decoding. */
  threads: number;
  log: (line: string) => void;
}

export type FinishReason = 'stop' | 'length';

export interface Generation {
  text: string;
  promptTokens: number;
  completionTokens: number;
  finishReason: FinishReason;
  /** Milliseconds generating, and waiting for a free sequence before that. */
  ms: number;
  waitMs: number;
}

export interface GenerateOptions {
  /** Aborted when the client goes away (reason: HttpError 499) or the server shuts down. */
  signal: AbortSignal;
  /** Once a sequence is taken, before the first token (a stream sends its role chunk here). */
  onStart?: () => void;
  onText?: (text: string) => void;
}

export interface LlamaEngine {
  /** Context size each sequence really got. */
  readonly contextSize: number;
  readonly parallel: number;
  readonly threads: number;
  readonly trainContextSize: number | null;
  /** `llama.cpp cpu 2-core CPU, 1 thread(s), context 4096 x 2 sequences, chat template Jinja` */
  readonly description: string;
  /** The generated text; undefined when the client went away (nothing to send). */
  generate(request: GenerationRequest, opts: GenerateOptions): Promise<Generation | undefined>;
  /** Fails queued requests, waits (bounded) for running ones, frees the model. */
  close(): Promise<void>;
}

/** A prepared prompt: its length, and how to run it on a sequence with the common generation options. */
interface Prompt {
  tokens: number;
  run(seq: LlamaContextSequence, options: CommonOptions): Promise<{ text: string; stopReason: string }>;
}

type CommonOptions = ReturnType<typeof samplingOptions> & {
  maxTokens: number;
  customStopTriggers: string[];
  signal: AbortSignal;
  stopOnAbortSignal: true;
  onToken: (tokens: Token[]) => void;
  onTextChunk?: (text: string) => void;
};

export async function loadEngine(opts: EngineOptions): Promise<LlamaEngine> {
  let llama: Llama | undefined;
  let model: LlamaModel | undefined;
  let context: LlamaContext | undefined;
  const dispose = async () => {
    await context?.dispose().catch(() => undefined);
    await model?.dispose().catch(() => undefined);
    await llama?.dispose().catch(() => undefined);
  };
  try {
    llama = await getLlama({
      gpu: false,
      // Use the prebuilt binary shipped in @node-llama-cpp/<platform> (or a local build); never compile.
      build: 'never',
      maxThreads: opts.threads,
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trim();
        if (text !== '') opts.log(`llama.cpp ${level}: ${text}`);
      },
    });
    model = await llama.loadModel({ modelPath: opts.modelPath, gpuLayers: 0 });
    context = await model.createContext({ contextSize: opts.contextSize, sequences: opts.parallel, threads: opts.threads });
    const sequences: LlamaContextSequence[] = [];
    for (let i = 0; i < opts.parallel; i++) sequences.push(context.getSequence());
    return new Engine(llama, model, context.contextSize, new SequencePool(sequences), makeChatWrapper(model), opts, dispose);
  } catch (err) {
    await dispose();
    throw new Error(`model server: cannot load ${opts.modelPath}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

class Engine implements LlamaEngine {
  /** Generations holding a sequence; close() waits for them before disposing the context. */
  private readonly running = new Set<Promise<unknown>>();
  readonly parallel: number;
  readonly threads: number;
  readonly trainContextSize: number | null;
  readonly description: string;

  constructor(
    llama: Llama,
    private readonly model: LlamaModel,
    readonly contextSize: number,
    private readonly pool: SequencePool,
    private readonly chatWrapper: ChatWrapper,
    opts: EngineOptions,
    private readonly dispose: () => Promise<void>,
  ) {
    this.parallel = opts.parallel;
    this.threads = opts.threads;
    this.trainContextSize = model.trainContextSize ?? null;
    this.description = `llama.cpp ${llama.buildType} ${llama.cpuMathCores}-core CPU, ${opts.threads} thread(s), context ${contextSize} x ${opts.parallel} sequences, chat template ${chatWrapper.wrapperName}`;
  }

  async generate(request: GenerationRequest, opts: GenerateOptions): Promise<Generation | undefined> {
    const prompt = request.kind === 'chat' ? this.chatPrompt(request.history) : this.completionPrompt(request.prompt);
    const maxTokens = this.clampMaxTokens(request.params.maxTokens, prompt.tokens, request.kind === 'chat' ? 'messages' : 'prompt');
    const queuedAt = Date.now();
    const seq = await this.pool.acquire(opts.signal);
    const startedAt = Date.now();
    let completionTokens = 0;
    const work = (async () => {
      await seq.clearHistory();
      opts.onStart?.();
      return prompt.run(seq, {
        ...samplingOptions(request.params),
        maxTokens,
        customStopTriggers: request.params.stop,
        signal: opts.signal,
        stopOnAbortSignal: true,
        onToken: (tokens) => {
          completionTokens += tokens.length;
        },
        ...(opts.onText ? { onTextChunk: opts.onText } : {}),
      });
    })();
    this.running.add(work);
    try {
      const { text, stopReason } = await work;
      if (opts.signal.aborted) {
        // Client gone: nothing to send. Shutdown: fail the request (5xx) rather than return a cut-off text.
        const reason: unknown = opts.signal.reason;
        if (reason instanceof HttpError && reason.status === 499) return undefined;
        throw reason instanceof HttpError ? reason : new HttpError(503, 'generation aborted');
      }
      const finishReason: FinishReason = stopReason === 'maxTokens' ? 'length' : 'stop';
      return { text, promptTokens: prompt.tokens, completionTokens, finishReason, ms: Date.now() - startedAt, waitMs: startedAt - queuedAt };
    } finally {
      this.running.delete(work);
      this.pool.release(seq);
    }
  }

  async close(): Promise<void> {
    this.pool.close();
    await settledWithin([...this.running], 10_000);
    await this.dispose();
  }

  private chatPrompt(history: Extract<GenerationRequest, { kind: 'chat' }>['history']): Prompt {
    const wrapper = this.chatWrapper;
    return {
      tokens: wrapper.generateContextState({ chatHistory: history }).contextText.tokenize(this.model.tokenizer).length,
      run: async (seq, options) => {
        const chat = new LlamaChat({ contextSequence: seq, chatWrapper: wrapper });
        try {
          const r = await chat.generateResponse(history, options);
          return { text: r.response, stopReason: r.metadata.stopReason };
        } finally {
          chat.dispose({ disposeSequence: false });
        }
      },
    };
  }

  private completionPrompt(prompt: string | Token[]): Prompt {
    // Special tokens in the text (e.g. <|im_start|>) are parsed, as llama.cpp's server does for prompts.
    let tokens = typeof prompt === 'string' ? this.model.tokenize(prompt, true) : prompt;
    if (tokens.length === 0) {
      const bos = this.model.tokens.bos;
      if (bos === null) throw badRequest(`'prompt' must not be empty`, 'prompt');
      tokens = [bos];
    }
    const ids = tokens;
    return {
      tokens: ids.length,
      run: async (seq, options) => {
        const completion = new LlamaCompletion({ contextSequence: seq });
        try {
          const r = await completion.generateCompletionWithMeta(ids, { ...options, disableContextShift: true, contextShiftSize: 1 });
          return { text: r.response, stopReason: r.metadata.stopReason };
        } finally {
          completion.dispose({ disposeSequence: false });
        }
      },
    };
  }

  private clampMaxTokens(requested: number | undefined, promptTokens: number, param: string): number {
    if (promptTokens >= this.contextSize) {
      throw badRequest(
        `This model's maximum context length is ${this.contextSize} tokens. However, your request has ${promptTokens} prompt tokens. Please reduce the length of the prompt.`,
        param,
        'context_length_exceeded',
      );
    }
    return Math.min(requested ?? Number.MAX_SAFE_INTEGER, this.contextSize - promptTokens);
  }
}

function samplingOptions(p: SamplingParams): {
  temperature: number;
  topP?: number;
  topK: number;
  minP?: number;
  seed?: number;
  repeatPenalty: false | { penalty: number; frequencyPenalty: number; presencePenalty: number; lastTokens: number };
} {
  const penalties = p.frequencyPenalty !== 0 || p.presencePenalty !== 0 || p.repeatPenalty !== 1;
  return {
    temperature: p.temperature,
    ...(p.topP !== undefined ? { topP: p.topP } : {}),
    topK: p.topK,
    ...(p.minP !== undefined ? { minP: p.minP } : {}),
    // node-llama-cpp's default seed is the current second, which would make concurrent requests identical.
    ...(p.temperature > 0 ? { seed: p.seed !== undefined ? Math.abs(p.seed) % 2 ** 32 : randomInt(2 ** 32 - 1) } : {}),
    repeatPenalty: penalties ? { penalty: p.repeatPenalty, frequencyPenalty: p.frequencyPenalty, presencePenalty: p.presencePenalty, lastTokens: 64 } : false,
  };
}

/** The model's own Jinja chat template (as HF transformers / llama.cpp --jinja render it), else node-llama-cpp's pick. */
function makeChatWrapper(model: LlamaModel): ChatWrapper {
  const template = model.fileInfo.metadata.tokenizer.chat_template;
  if (typeof template === 'string' && template.trim() !== '') {
    return new JinjaTemplateChatWrapper({
      template,
      joinAdjacentMessagesOfTheSameType: false,
      trimLeadingWhitespaceInResponses: false,
      tokenizer: model.tokenizer,
    });
  }
  return resolveChatWrapper(model);
}

/** `parallel` sequences, FIFO waiters. */
class SequencePool {
  private readonly free: LlamaContextSequence[];
  private readonly waiters: { resolve: (s: LlamaContextSequence) => void; reject: (e: Error) => void }[] = [];
  private closed = false;

  constructor(sequences: LlamaContextSequence[]) {
    this.free = [...sequences];
  }

  acquire(signal: AbortSignal): Promise<LlamaContextSequence> {
    if (this.closed) return Promise.reject(new HttpError(503, 'the model server is shutting down', 'server_error'));
    const seq = this.free.pop();
    if (seq !== undefined) return Promise.resolve(seq);
    if (this.waiters.length >= MAX_QUEUE) return Promise.reject(new HttpError(503, 'too many queued requests', 'server_error'));
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (s: LlamaContextSequence): void => {
          signal.removeEventListener('abort', onAbort);
          resolve(s);
        },
        reject: (e: Error): void => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new HttpError(499, 'client closed the request', 'invalid_request_error'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(seq: LlamaContextSequence): void {
    const next = this.waiters.shift();
    if (next !== undefined) next.resolve(seq);
    else this.free.push(seq);
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(new HttpError(503, 'the model server is shutting down', 'server_error'));
  }
}

/** Waits for the promises to settle, at most `ms` (without a timer left behind to hold the process open). */
async function settledWithin(promises: Promise<unknown>[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([Promise.allSettled(promises), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
