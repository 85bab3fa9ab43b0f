/**
 * Bundles the harness program and the harness image's entrypoint, each into one file with its npm dependencies
 * (undici, zod, yaml, re2js): dist/harness/cli.js and dist/harness/entrypoint.js, replacing what tsc emitted for them.
 * Node 20 has no compile cache, and resolving and reading ~300 modules was most of a run's start-up; one file is
 * read once. Built from the TypeScript sources (not tsc's output, which an incremental build may not refresh), not
 * minified, so stack traces stay readable.
 */
import { build } from 'esbuild';
import { statSync } from 'node:fs';
import { distPath, packageRoot } from '../common/paths.js';

const ENTRIES = ['cli', 'entrypoint'];

const started = Date.now();
await build({
  absWorkingDir: packageRoot(),
  entryPoints: ENTRIES.map((name) => `harness/${name}.ts`),
  outdir: distPath('harness'),
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // CommonJS dependencies (undici) call require() for node's built-in modules, which an ES module lacks.
  banner: { js: "import { createRequire as __evalflowCreateRequire } from 'node:module';\nconst require = __evalflowCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
const sizes = ENTRIES.map((name) => `${name}.js ${(statSync(distPath('harness', `${name}.js`)).size / 1024).toFixed(0)} KiB`);
process.stdout.write(`harness bundle: ${distPath('harness')}/{${sizes.join(', ')}} (${Date.now() - started} ms)\n`);
