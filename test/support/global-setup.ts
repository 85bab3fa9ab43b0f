/**
 * Integration suites share one real Temporal dev server (headless, its own port and SQLite file).
 * The compiled harness and workflow bundle must exist: `npm test` builds first.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { distPath } from '../../common/paths.js';
import { startDevServer, type DevServer } from '../../scripts/temporal-dev-server.js';
import { freePort } from '../../common/ports.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
  }
}

let server: DevServer | undefined;
let dir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  for (const file of [distPath('harness', 'cli.js'), distPath('workflow-bundle.js')]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (npm test does)`);
  }
  dir = mkdtempSync(join(tmpdir(), 'evalflow-temporal-'));
  const port = await freePort();
  server = await startDevServer({ port, uiPort: null, dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'server.log'), startTimeoutS: 120 });
  project.provide('temporalAddress', server.address);
}

export async function teardown(): Promise<void> {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}
