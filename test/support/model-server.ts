/**
 * The real tiny model (SmolLM2-135M-Instruct Q4_1 on CPU via node-llama-cpp) behind the
 * OpenAI-compatible model server, on a random local port. The model file is fetched once into
 * .tools/models (or EVALFLOW_MODEL_CACHE / EVALFLOW_MODEL_PATH).
 */
import { ensureModel } from '../../model-server/model-file.js';
import { startModelServer } from '../../model-server/server.js';

export interface TestModelServer {
  /** http://127.0.0.1:port (append /v1/chat/completions etc.) */
  url: string;
  modelId: string;
  /** Milliseconds the server spent loading the model. */
  loadMs: number;
  close(): Promise<void>;
}

export async function startTestModelServer(opts: { parallel?: number; log?: (line: string) => void } = {}): Promise<TestModelServer> {
  const log = opts.log ?? (() => undefined);
  const modelPath = await ensureModel({ log });
  const server = await startModelServer({ modelPath, host: '127.0.0.1', port: 0, log, ...(opts.parallel !== undefined ? { parallel: opts.parallel } : {}) });
  return { url: server.url, modelId: server.modelId, loadMs: server.loadMs, close: () => server.close() };
}
