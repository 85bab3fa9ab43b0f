/**
 * `evalflow serve-model`: fetch the tiny default model if needed and serve it until SIGINT/SIGTERM.
 */
import { resolve } from 'node:path';
import { ensureModel } from './model-file.js';
import { DEFAULT_MODEL_ID, startModelServer } from './server.js';

export interface ServeModelOptions {
  host: string;
  port: number;
  /** GGUF file; default: the SmolLM2-135M-Instruct Q4_1 model from ensureModel(). */
  model?: string;
  modelId?: string;
  parallel?: number;
}

export async function serveModelCommand(opts: ServeModelOptions): Promise<void> {
  const log = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error(`invalid --port ${String(opts.port)}`);
  if (opts.parallel !== undefined && (!Number.isInteger(opts.parallel) || opts.parallel < 1)) {
    throw new Error(`invalid --parallel ${String(opts.parallel)}: expected a positive integer`);
  }
  const modelPath = opts.model !== undefined ? resolve(opts.model) : await ensureModel({ log });
  const modelId = opts.modelId ?? DEFAULT_MODEL_ID;
  const server = await startModelServer({
    modelPath,
    host: opts.host,
    port: opts.port,
    modelId,
    ...(opts.parallel !== undefined ? { parallel: opts.parallel } : {}),
    log,
    logRequests: true,
  });
  process.stdout.write(`model server ready at ${server.url} (model ${modelId})\n`);

  await new Promise<void>((done) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log(`${signal} again: exiting now`);
        process.exit(130);
      }
      stopping = true;
      log(`${signal}: stopping the model server`);
      server.close().then(
        () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          done();
        },
        (err: unknown) => {
          log(`error while stopping: ${String(err)}`);
          process.exitCode = 1;
          done();
        },
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
