/** `evalflow codec-server`: serves the payload codec to the Temporal Web UI and CLI until Ctrl-C. */
import { CODEC_KEY_FILE_ENV, CodecKeyError, codecFromEnv, readSecretFile } from '../../common/codec.js';
import { ConfigError } from '../../config/errors.js';
import { createCodecServer, DEFAULT_UI_ORIGINS } from '../../common/codec-server.js';
import type { Output } from '../output.js';

export interface CodecServerCommandOptions {
  host: string;
  port: number;
  corsOrigin: string[];
  tokenFile?: string;
}

export async function codecServerCommand(opts: CodecServerCommandOptions, io: Output, until?: Promise<void>): Promise<number> {
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new ConfigError('--port: expected a port number (0-65535)', '--port');
  const codec = codecFromEnv();
  if (!codec) throw new CodecKeyError(`${CODEC_KEY_FILE_ENV} is not set: name the key file the workers and clients use`);
  const token = opts.tokenFile === undefined ? undefined : readSecretFile(opts.tokenFile, '--token-file').trim();
  if (token === '') throw new CodecKeyError(`--token-file ${opts.tokenFile} is empty`);
  const corsOrigins = opts.corsOrigin.length > 0 ? opts.corsOrigin : DEFAULT_UI_ORIGINS;
  const server = createCodecServer({ codec, corsOrigins, token, log: (line) => io.err(`codec-server: ${line}\n`) });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const address = server.address();
  const url = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${typeof address === 'object' && address ? address.port : opts.port}`;
  io.err(
    `codec server at ${url} (keys ${[...codec.keyring.keys.keys()].join(', ')} from ${codec.keyring.file}; ` +
      `CORS for ${corsOrigins.join(', ')}; ${token ? 'bearer token required' : 'no auth'}); Ctrl-C to stop\n` +
      `  temporal workflow show --workflow-id evalflow-<inv> --codec-endpoint ${url}${token ? " --codec-auth 'Bearer <token>'" : ''}\n`,
  );
  await (until ??
    new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    }));
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return 0;
}
