/**
 * evalflow's images, defined once: the files each one needs (the compiled entry point and the dist files it
 * imports, the npm packages those import, or one bundle; a package.json), its entrypoint and its tag. Two ways to build:
 *
 * - `docker/*.Dockerfile` (for users, normal Node base image): its build stage calls `writeAppContext`.
 * - `ensureLocalImage` (tests, CI, the demo; no registry needed): a rootfs of this host's node binary, the
 *   shared libraries `ldd` lists for it and for native addons, the CA bundle and the app files, imported
 *   through the Docker API (dockerode importImage, one layer).
 *
 * Tags are deterministic, `<repository>:<version>-<content hash>`: an image is rebuilt only when an input
 * file or the image config changes.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { copyFileSync, createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { pack } from 'tar-stream';
import { isBundle } from '../common/bundle.js';
import { evalflowVersion, packageRoot } from '../common/paths.js';

/** Where the app lives in every evalflow image. */
export const APP_DIR = '/opt/evalflow';

export interface ImageRecipe {
  /** Repository part of the tag, e.g. `evalflow/harness`. */
  repository: string;
  /** Compiled entry point, relative to the package root. */
  entry: string;
  /** Which optional dependencies (e.g. platform binaries) go in; all others are left out. */
  keepOptional: (packageName: string) => boolean;
  /** Data files the code reads at run time (relative to the package root), which no import reaches. */
  data: string[];
  entrypoint: string[];
  cmd: string[];
  env: Record<string, string>;
  /** Executables on PATH (`/usr/local/bin/<name>`) as scripts: name → script text (in every build). */
  commands?: Record<string, string>;
  /**
   * Host programs the registry-free build copies in, at their host path with their libraries (a Node base
   * image has them already): what the scripts above and upstream's container command need.
   */
  hostTools?: string[];
}

/**
 * The harness image also honours upstream's container contract: upstream's launcher runs a task container as
 * `bash -c '… nemo-evaluator run_eval --run_config config_ef.yaml …'` (eval-factory as the fallback name), so
 * the same command starts evalflow's harness (backends/container-job.ts).
 */
const HARNESS_COMMAND = `#!/usr/bin/bash\nexec node ${APP_DIR}/dist/harness/entrypoint.js "$@"\n`;

export const IMAGES = {
  harness: {
    repository: 'evalflow/harness',
    entry: 'dist/harness/entrypoint.js',
    keepOptional: () => false,
    data: ['harness/tasks/ifeval/langdetect-profiles.json.gz'],
    entrypoint: ['node', `${APP_DIR}/dist/harness/entrypoint.js`],
    cmd: ['run_eval', '--help'],
    env: { NODE_ENV: 'production' },
    commands: { 'nemo-evaluator': HARNESS_COMMAND, 'eval-factory': HARNESS_COMMAND },
    hostTools: ['bash', 'base64', 'chmod', 'ls', 'cat'],
  },
  'model-server': {
    repository: 'evalflow/model-server',
    entry: 'dist/model-server/main.js',
    // The CPU build of llama.cpp only: the CUDA/Vulkan variants are ~600 MB and unused here.
    keepOptional: (name) => name === `@node-llama-cpp/${process.platform}-${process.arch}`,
    data: [],
    entrypoint: ['node', `${APP_DIR}/dist/model-server/main.js`],
    cmd: ['--host', '0.0.0.0', '--port', '8000', '--model', '/model/model.gguf'],
    env: { NODE_ENV: 'production' },
  },
} satisfies Record<string, ImageRecipe>;
export type ImageName = keyof typeof IMAGES;

/** One file of an image: copied from `source`, or written from `content`. */
export interface ImageFile {
  /** Absolute path inside the image. */
  target: string;
  source?: string;
  content?: Buffer;
  mode: number;
}

/** The app files of an image, under APP_DIR, sorted. */
export function appFiles(recipe: ImageRecipe, root = packageRoot()): ImageFile[] {
  const files = new Map<string, ImageFile>();
  const add = (source: string) => {
    const rel = relative(root, source);
    files.set(rel, { target: `${APP_DIR}/${rel}`, source, mode: statSync(source).mode & 0o777 });
  };
  const entry = join(root, recipe.entry);
  // A bundle (scripts/bundle-harness.ts) is the one app file and imports no npm package.
  const { modules, packages } = isBundle(entry) ? { modules: [entry], packages: [] } : distClosure(entry);
  for (const file of modules) add(file);
  for (const file of recipe.data) add(join(root, file));
  for (const dir of packageClosure(root, packages, recipe.keepOptional)) {
    for (const file of filesUnder(dir, (name) => name !== 'node_modules')) add(file);
  }
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string; type: string };
  // Enough for ESM resolution and evalflowVersion(); the real manifest would drag in dev settings.
  const content = Buffer.from(`${JSON.stringify({ name: manifest.name, version: manifest.version, type: manifest.type, private: true }, null, 2)}\n`);
  files.set('package.json', { target: `${APP_DIR}/package.json`, content, mode: 0o644 });
  for (const [name, script] of Object.entries(recipe.commands ?? {})) {
    files.set(`bin/${name}`, { target: `/usr/local/bin/${name}`, content: Buffer.from(script), mode: 0o755 });
  }
  return [...files.values()].sort((a, b) => a.target.localeCompare(b.target));
}

/** The dist modules an entry point imports (transitively) and the npm packages they use. */
export function distClosure(entry: string): { modules: string[]; packages: string[] } {
  const modules = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (modules.has(file)) return;
    modules.add(file);
    const source = readFileSync(file, 'utf8');
    const specifiers = /(?:^|\s)(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|^\s*import\s*["']([^"']+)["']/gm;
    for (const match of source.matchAll(specifiers)) {
      const spec = (match[1] ?? match[2] ?? match[3]) as string;
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec));
      else if (!spec.startsWith('node:')) packages.add(packageNameOf(spec));
    }
  };
  visit(resolve(entry));
  return { modules: [...modules].sort(), packages: [...packages].sort() };
}

function packageNameOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
}

/** Package dirs needed at run time: the roots and their dependencies, resolved as Node resolves them. */
export function packageClosure(root: string, roots: string[], keepOptional: (name: string) => boolean): string[] {
  const dirs = new Set<string>();
  const visit = (name: string, fromDir: string, optional: boolean) => {
    const dir = resolvePackageDir(name, fromDir, root);
    if (!dir) {
      if (optional) return;
      throw new Error(`package ${name} (needed from ${relative(root, fromDir) || '.'}) is not installed: run npm ci`);
    }
    if (dirs.has(dir)) return;
    dirs.add(dir);
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    const optionalNames = new Set(Object.keys(manifest.optionalDependencies ?? {}));
    for (const dep of Object.keys(manifest.dependencies ?? {})) if (!optionalNames.has(dep)) visit(dep, dir, false);
    for (const dep of optionalNames) if (keepOptional(dep)) visit(dep, dir, true);
  };
  for (const name of roots) visit(name, root, false);
  return [...dirs].sort();
}

function resolvePackageDir(name: string, fromDir: string, root: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === root || dirname(dir) === dir) return undefined;
  }
}

function filesUnder(dir: string, keep: (name: string) => boolean): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => keep(entry.name))
    .flatMap((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return filesUnder(path, () => true);
      // Symlinked files are followed; dangling links and .bin shims are skipped.
      if (entry.isSymbolicLink()) return existsSync(path) && statSync(path).isFile() ? [path] : [];
      return entry.isFile() ? [path] : [];
    });
}

/** The Node runtime for a FROM-scratch image: this host's node, the libraries ldd lists, CA bundle, passwd. */
export function runtimeFiles(app: ImageFile[], nodeBinary = process.execPath, hostTools: readonly string[] = []): ImageFile[] {
  const node = realpathSync(nodeBinary);
  const shipped = new Set(app.flatMap((f) => (f.source ? [realpathSync(f.source)] : [])));
  const tools = hostTools.map(hostProgram);
  const binaries = [node, ...tools, ...app.filter((f) => f.source?.endsWith('.node')).map((f) => f.source as string)];
  const libraries = new Set<string>();
  for (const binary of binaries) {
    // Libraries of a native addon that sit in its own package (found through its RPATH) are app files already.
    for (const lib of sharedLibraries(binary)) if (!shipped.has(realpathSync(lib))) libraries.add(lib);
  }
  const files: ImageFile[] = [
    { target: '/usr/bin/node', source: node, mode: 0o755 },
    ...tools.map((tool) => ({ target: `/usr/bin/${tool.slice(tool.lastIndexOf('/') + 1)}`, source: realpathSync(tool), mode: 0o755 })),
    ...[...libraries].sort().map((lib) => ({ target: lib, source: realpathSync(lib), mode: 0o755 })),
    { target: '/etc/passwd', content: Buffer.from('root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n'), mode: 0o644 },
    { target: '/etc/group', content: Buffer.from('root:x:0:\nnogroup:x:65534:\n'), mode: 0o644 },
  ];
  const caBundle = '/etc/ssl/certs/ca-certificates.crt';
  if (existsSync(caBundle)) files.push({ target: caBundle, source: realpathSync(caBundle), mode: 0o644 });
  return files;
}

/** A program's path on this host (from PATH). */
function hostProgram(name: string): string {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const candidate = join(dir, name);
    if (dir && existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  throw new Error(`${name} is not installed on this host (the registry-free image build copies it in)`);
}

/** Absolute paths of the shared libraries (and the loader) a binary needs, as `ldd` reports them. */
function sharedLibraries(binary: string): string[] {
  let out: string;
  try {
    out = execFileSync('ldd', [binary], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    if (/not a dynamic executable/.test(String((err as { stderr?: string }).stderr))) return [];
    throw new Error(`ldd ${binary} failed (needed to build an image without a registry): ${(err as Error).message}`, { cause: err });
  }
  const missing = out.split('\n').filter((line) => line.includes('=> not found'));
  if (missing.length) throw new Error(`${binary} needs libraries this host lacks: ${missing.map((l) => l.trim()).join('; ')}`);
  return [...out.matchAll(/(?:=>\s*)?(\/[^\s)]+)\s+\(0x/g)].map((m) => m[1] as string);
}

export interface LocalImage {
  tag: string;
  /** False when an image with this tag (the same inputs) already existed. */
  built: boolean;
  /** Time spent: hashing the inputs, plus importing when built. */
  ms: number;
  /** Bytes in the rootfs (when built). */
  bytes?: number;
}

/** The image's config lines for `docker import` (Dockerfile syntax). */
function importChanges(recipe: ImageRecipe, hash: string): string[] {
  return [
    `ENV PATH=/usr/local/bin:/usr/bin:/bin`,
    ...Object.entries(recipe.env).map(([k, v]) => `ENV ${k}=${v}`),
    `WORKDIR /tmp`,
    `LABEL evalflow.image.content-hash=${hash}`,
    `ENTRYPOINT ${JSON.stringify(recipe.entrypoint)}`,
    `CMD ${JSON.stringify(recipe.cmd)}`,
  ];
}

/** Content hash of every file (path, mode, bytes) and the image config. */
export function contentHash(files: ImageFile[], recipe: ImageRecipe): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ entrypoint: recipe.entrypoint, cmd: recipe.cmd, env: recipe.env }));
  for (const file of files) {
    hash.update(`\0${file.target}\0${file.mode.toString(8)}\0`);
    hash.update(file.content ?? readFileSync(file.source as string));
  }
  return hash.digest('hex');
}

/** Builds the image through the Docker API unless an image with its content-hash tag exists. */
export async function ensureLocalImage(docker: Docker, name: ImageName, opts: { root?: string; log?: (line: string) => void } = {}): Promise<LocalImage> {
  const started = Date.now();
  const recipe: ImageRecipe = IMAGES[name];
  const app = appFiles(recipe, opts.root);
  const files = [...runtimeFiles(app, process.execPath, recipe.hostTools), ...app].sort((a, b) => a.target.localeCompare(b.target));
  const hash = contentHash(files, recipe);
  const tag = `${recipe.repository}:${evalflowVersion()}-${hash.slice(0, 12)}`;
  if (await imageExists(docker, tag)) return { tag, built: false, ms: Date.now() - started };

  opts.log?.(`building ${tag} (${files.length} files)`);
  const [repo, version] = tag.split(':') as [string, string];
  const bytes = files.reduce((sum, f) => sum + (f.content?.length ?? statSync(f.source as string).size), 0);
  const importOptions = { repo, tag: version, changes: importChanges(recipe, hash) };
  // @types/dockerode types only the callback form of importImage; the promise form resolves to the progress stream.
  const progress = (await docker.importImage(rootfsTar(files), importOptions as never)) as unknown as Readable;
  await followProgress(docker, progress);
  if (!(await imageExists(docker, tag))) {
    // Podman (4.3) ignores the tag of an import (it names the image `<repo>:latest`): tag it by its content label.
    const [imported] = await docker.listImages({ filters: { label: [`evalflow.image.content-hash=${hash}`] } });
    if (!imported) throw new Error(`the import of ${tag} reported success, but no image carries its content hash`);
    await docker.getImage(imported.Id).tag({ repo, tag: version });
    if (!(await imageExists(docker, tag))) throw new Error(`could not tag the imported image ${imported.Id} as ${tag}`);
  }
  return { tag, built: true, ms: Date.now() - started, bytes };
}

async function imageExists(docker: Docker, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

function followProgress(docker: Docker, stream: Readable): Promise<void> {
  return new Promise((done, fail) => {
    docker.modem.followProgress(stream, (err: Error | null, events: { error?: string; errorDetail?: { message?: string } }[]) => {
      const failed = events?.find((e) => e.error);
      if (err) fail(err);
      else if (failed) fail(new Error(failed.errorDetail?.message ?? failed.error));
      else done();
    });
  });
}

/** A tar stream of the files, parent directories first; fixed mtimes so the same inputs give the same bytes. */
function rootfsTar(files: ImageFile[]): Readable {
  const tar = pack();
  const mtime = new Date(0);
  const dirs = new Set<string>(['/tmp']);
  for (const file of files) for (let d = dirname(file.target); d !== '/'; d = dirname(d)) dirs.add(d);
  void (async () => {
    try {
      for (const dir of [...dirs].sort()) {
        await new Promise<void>((done, fail) => tar.entry({ name: dir.slice(1), type: 'directory', mode: dir === '/tmp' ? 0o1777 : 0o755, mtime }, (e) => (e ? fail(e) : done())));
      }
      for (const file of files) {
        const name = file.target.slice(1);
        const content = file.content;
        if (content) {
          await new Promise<void>((done, fail) => tar.entry({ name, mode: file.mode, mtime }, content, (e) => (e ? fail(e) : done())));
          continue;
        }
        const source = file.source as string;
        await new Promise<void>((done, fail) => {
          const entry = tar.entry({ name, mode: file.mode, mtime, size: statSync(source).size }, (e) => (e ? fail(e) : done()));
          createReadStream(source).on('error', fail).pipe(entry);
        });
      }
      tar.finalize();
    } catch (err) {
      tar.destroy(err as Error);
    }
  })();
  return tar as unknown as Readable;
}

/**
 * The app tree of an image (under `<outDir>/opt/evalflow`), for the user-facing Dockerfiles' build stage:
 * the same file set the local build uses.
 */
export function writeAppContext(name: ImageName, outDir: string, root?: string): number {
  const files = appFiles(IMAGES[name], root);
  for (const file of files) {
    const target = join(outDir, file.target);
    mkdirSync(dirname(target), { recursive: true });
    if (file.content) writeFileSync(target, file.content, { mode: file.mode });
    else copyFileSync(file.source as string, target);
  }
  return files.length;
}
