/** Which files go into an image: the dist modules an entry imports and the packages they need, resolved as Node does. */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { APP_DIR, appFiles, contentHash, distClosure, packageClosure, type ImageRecipe } from '../../docker/images.js';
import { BUNDLE_MARKER } from '../../common/bundle.js';

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'images-'));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

const pkg = (name: string, deps: Record<string, string> = {}, optional: Record<string, string> = {}) =>
  JSON.stringify({ name, version: '1.0.0', dependencies: { ...deps, ...optional }, optionalDependencies: optional });

const ROOT_FILES = {
  'package.json': JSON.stringify({ name: 'evalflow', version: '9.9.9', type: 'module', scripts: { build: 'tsc' } }),
  'dist/entry.js': `import { a } from './lib/a.js';\nimport 'side-effect';\nexport * from "./lib/b.js";\nconst lazy = await import('./lib/lazy.js');\nimport fs from 'node:fs';\n`,
  'dist/lib/a.js': `import { z } from 'zod/v4';\nimport x from '@scope/pkg/sub';\n`,
  'dist/lib/b.js': `export const b = 1;\n`,
  'dist/lib/lazy.js': `export const lazy = 1;\n`,
  'dist/unused.js': `import 'never-needed';\n`,
  'node_modules/zod/package.json': pkg('zod'),
  'node_modules/zod/index.js': '',
  'node_modules/side-effect/package.json': pkg('side-effect', { dep: '^1' }),
  'node_modules/side-effect/node_modules/dep/package.json': pkg('dep'),
  'node_modules/dep/package.json': pkg('dep'),
  'node_modules/@scope/pkg/package.json': pkg('@scope/pkg', {}, { '@scope/linux-x64': '1', '@scope/linux-x64-cuda': '1', '@scope/missing': '1' }),
  'node_modules/@scope/pkg/sub.js': '',
  'node_modules/@scope/linux-x64/package.json': pkg('@scope/linux-x64'),
  'node_modules/@scope/linux-x64/bin/lib.so': 'x',
  'node_modules/@scope/linux-x64-cuda/package.json': pkg('@scope/linux-x64-cuda'),
  'node_modules/never-needed/package.json': pkg('never-needed'),
};

describe('image file sets', () => {
  it('follow the imports of the entry point only', () => {
    const root = tree(ROOT_FILES);
    const { modules, packages } = distClosure(join(root, 'dist/entry.js'));
    expect(modules.map((m) => m.slice(root.length + 1))).toEqual(['dist/entry.js', 'dist/lib/a.js', 'dist/lib/b.js', 'dist/lib/lazy.js']);
    expect(packages).toEqual(['@scope/pkg', 'side-effect', 'zod']);
  });

  it('resolve dependencies as Node does (nested first) and keep only the chosen optional ones', () => {
    const root = tree(ROOT_FILES);
    const dirs = packageClosure(root, ['@scope/pkg', 'side-effect', 'zod'], (name) => name.endsWith('-x64') || name === '@scope/missing');
    expect(dirs.map((d) => d.slice(root.length + 1))).toEqual([
      'node_modules/@scope/linux-x64',
      'node_modules/@scope/pkg',
      'node_modules/side-effect',
      'node_modules/side-effect/node_modules/dep',
      'node_modules/zod',
    ]);
    expect(() => packageClosure(root, ['absent'], () => false)).toThrow(/package absent .* is not installed: run npm ci/);
  });

  it('put the app under APP_DIR with a minimal package.json and the data files, and hash to the same value for the same inputs', () => {
    const root = tree({ ...ROOT_FILES, 'data/profiles.json.gz': 'gz' });
    const recipe: ImageRecipe = { repository: 'x', entry: 'dist/entry.js', keepOptional: (n) => n === '@scope/linux-x64', data: ['data/profiles.json.gz'], entrypoint: ['node'], cmd: [], env: {} };
    const files = appFiles(recipe, root);
    expect(files.map((f) => f.target)).toEqual(
      [
        'data/profiles.json.gz', 'dist/entry.js', 'dist/lib/a.js', 'dist/lib/b.js', 'dist/lib/lazy.js',
        'node_modules/@scope/linux-x64/bin/lib.so', 'node_modules/@scope/linux-x64/package.json', 'node_modules/@scope/pkg/package.json', 'node_modules/@scope/pkg/sub.js',
        'node_modules/side-effect/node_modules/dep/package.json', 'node_modules/side-effect/package.json', 'node_modules/zod/index.js', 'node_modules/zod/package.json',
        'package.json',
      ].map((p) => `${APP_DIR}/${p}`).sort((a, b) => a.localeCompare(b)),
    );
    const manifest = JSON.parse(files.find((f) => f.target === `${APP_DIR}/package.json`)?.content?.toString() ?? '{}') as Record<string, unknown>;
    expect(manifest).toEqual({ name: 'evalflow', version: '9.9.9', type: 'module', private: true });
    const hash = contentHash(files, recipe);
    expect(contentHash(appFiles(recipe, root), recipe)).toBe(hash);
    expect(contentHash(files, { ...recipe, cmd: ['--other'] })).not.toBe(hash);
    writeFileSync(join(root, 'dist/lib/b.js'), 'export const b = 2;\n');
    expect(contentHash(appFiles(recipe, root), recipe)).not.toBe(hash);
  });

  it('take a bundled entry point alone, without parsing it for imports or adding packages', () => {
    const root = tree(ROOT_FILES);
    writeFileSync(join(root, 'dist/entry.js'), `${BUNDLE_MARKER}\n${readFileSync(join(root, 'dist/entry.js'), 'utf8')}`);
    const recipe: ImageRecipe = { repository: 'x', entry: 'dist/entry.js', keepOptional: () => true, data: [], entrypoint: ['node'], cmd: [], env: {} };
    expect(appFiles(recipe, root).map((f) => f.target)).toEqual([`${APP_DIR}/dist/entry.js`, `${APP_DIR}/package.json`]);
  });
});

describe('user-facing Dockerfiles', () => {
  it('declare the same entrypoint and command as the registry-free images', async () => {
    const { readFileSync } = await import('node:fs');
    const { packageRoot } = await import('../../common/paths.js');
    const { IMAGES } = await import('../../docker/images.js');
    const files: Array<[string, keyof typeof IMAGES]> = [['docker/Dockerfile', 'harness'], ['docker/model-server.Dockerfile', 'model-server']];
    for (const [file, name] of files) {
      const text = readFileSync(join(packageRoot(), file), 'utf8');
      const instruction = (key: string) => JSON.parse(new RegExp(`^${key} (.*)$`, 'm').exec(text)?.[1] ?? 'null') as unknown;
      expect(instruction('ENTRYPOINT'), file).toEqual(IMAGES[name].entrypoint);
      expect(instruction('CMD'), file).toEqual(IMAGES[name].cmd);
      expect(text, file).toContain(`node dist/docker/build.js context ${name} /image`);
    }
  });
});
