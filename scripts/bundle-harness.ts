/**
 * Bundles the harness program and the harness image's entrypoint, each into one file with its npm dependencies
 * (undici, zod, yaml, re2js): dist/harness/cli.js and dist/harness/entrypoint.js, replacing what tsc emitted for them.
 * Node 20 has no compile cache, and resolving and reading ~300 modules was most of a run's start-up; one file is
 * read once. Built from the TypeScript sources (not tsc's output, which an incremental build may not refresh), not
 * minified, so stack traces stay readable. Without esbuild (a dev dependency) the build keeps tsc's modules, which
 * work the same and start slower.
 */
import { statSync } from 'node:fs';
import { BUNDLE_MARKER } from '../common/bundle.js';
import { distPath, packageRoot } from '../common/paths.js';

const ENTRIES = ['cli', 'entrypoint'];

/** The part of esbuild's API used here. */
interface Esbuild {
  build(options: Record<string, unknown>): Promise<unknown>;
}

async function loadEsbuild(): Promise<Esbuild | undefined> {
  const name = 'esbuild'; // not a literal: the build compiles where esbuild is not installed
  try {
    return (await import(name)) as Esbuild;
  } catch {
    return undefined;
  }
}

const esbuild = await loadEsbuild();
if (!esbuild) {
  process.stderr.write('harness bundle: esbuild is not installed (npm install includes it): the harness runs from tsc\'s modules, with a slower start-up\n');
} else {
  const started = Date.now();
  await esbuild.build({
    absWorkingDir: packageRoot(),
    entryPoints: ENTRIES.map((name) => `harness/${name}.ts`),
    outdir: distPath('harness'),
    allowOverwrite: true,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // CommonJS dependencies (undici) call require() for node's built-in modules, which an ES module lacks.
    banner: { js: `${BUNDLE_MARKER}\nimport { createRequire as __evalflowCreateRequire } from 'node:module';\nconst require = __evalflowCreateRequire(import.meta.url);` },
    logLevel: 'warning',
  });
  const sizes = ENTRIES.map((name) => `${name}.js ${(statSync(distPath('harness', `${name}.js`)).size / 1024).toFixed(0)} KiB`);
  process.stdout.write(`harness bundle: ${distPath('harness')}/{${sizes.join(', ')}} (${Date.now() - started} ms)\n`);
}
