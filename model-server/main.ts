/**
 * Entrypoint of the model-server image: `node dist/model-server/main.js --model /model/file.gguf [--port 8000]`.
 * The same options as `evalflow serve-model`, without the launcher CLI's imports (Temporal, commander).
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { serveModelCommand } from './cli.js';

export async function modelServerMain(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8000' },
      model: { type: 'string' },
      'model-id': { type: 'string' },
      parallel: { type: 'string' },
    },
    strict: true,
  });
  await serveModelCommand({
    host: values.host,
    port: Number(values.port),
    ...(values.model !== undefined ? { model: values.model } : {}),
    ...(values['model-id'] !== undefined ? { modelId: values['model-id'] } : {}),
    ...(values.parallel !== undefined ? { parallel: Number(values.parallel) } : {}),
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await modelServerMain(process.argv.slice(2));
}
