/**
 * Builds evalflow's images without a registry (`npm run images`), or writes an image's app tree for the
 * user-facing Dockerfiles (`node dist/docker/build.js context harness /ctx`). Needs Docker at DOCKER_HOST.
 *
 *   node dist/docker/build.js [harness|model-server]…     build (default: both), print tag and timing
 *   node dist/docker/build.js context IMAGE DIR           write the app files of IMAGE under DIR
 */
import { pathToFileURL } from 'node:url';
import { connectDocker, describeDockerHost } from '../backends/local/docker/client.js';
import { ensureLocalImage, IMAGES, writeAppContext, type ImageName } from './images.js';

const isImageName = (name: string): name is ImageName => Object.hasOwn(IMAGES, name);

export async function buildMain(argv: string[]): Promise<number> {
  if (argv[0] === 'context') {
    const [, name, dir] = argv;
    if (!name || !isImageName(name) || !dir) {
      process.stderr.write(`usage: build.js context ${Object.keys(IMAGES).join('|')} DIR\n`);
      return 2;
    }
    process.stdout.write(`${writeAppContext(name, dir)} files written under ${dir}\n`);
    return 0;
  }
  const names = argv.length ? argv : (Object.keys(IMAGES) as ImageName[]);
  const unknown = names.filter((n) => !isImageName(n));
  if (unknown.length) {
    process.stderr.write(`unknown image ${unknown.join(', ')} (expected: ${Object.keys(IMAGES).join(', ')})\n`);
    return 2;
  }
  const docker = connectDocker();
  for (const name of names as ImageName[]) {
    const image = await ensureLocalImage(docker, name, { log: (line) => process.stderr.write(`${line}\n`) });
    const size = image.bytes === undefined ? '' : `, ${(image.bytes / 1e6).toFixed(0)} MB`;
    process.stdout.write(`${image.tag} ${image.built ? `built in ${(image.ms / 1000).toFixed(2)} s${size}` : `up to date (checked in ${(image.ms / 1000).toFixed(2)} s)`}\n`);
  }
  process.stderr.write(`(Docker at ${describeDockerHost()})\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await buildMain(process.argv.slice(2));
}
