/**
 * Entrypoint of the harness image (`ENTRYPOINT ["node", ".../entrypoint.js"]`, command `run_eval --run_config …`).
 * Loads the job's secrets file when one is mounted at SECRETS_FILE_IN_CONTAINER, so that secrets reach the
 * harness without being part of the container's config (which `docker inspect` shows), then runs the CLI.
 */
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { readEnvFile, SECRETS_FILE_IN_CONTAINER } from '../common/env-file.js';
import { EXIT, runEvalCommand, tuneHarnessProcess } from './command.js';

export async function containerMain(argv: string[], secretsFile = SECRETS_FILE_IN_CONTAINER): Promise<number> {
  if (existsSync(secretsFile)) {
    try {
      Object.assign(process.env, readEnvFile(secretsFile));
    } catch (err) {
      process.stderr.write(`entrypoint: cannot read ${secretsFile}: ${(err as Error).message}\n`);
      return EXIT.config;
    }
  }
  const [verb, ...rest] = argv;
  if (verb !== 'run_eval') {
    process.stderr.write(`entrypoint: expected the command run_eval --run_config FILE, got ${JSON.stringify(verb ?? '')}\n`);
    return EXIT.config;
  }
  return runEvalCommand(rest);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  tuneHarnessProcess();
  process.exitCode = await containerMain(process.argv.slice(2));
}
