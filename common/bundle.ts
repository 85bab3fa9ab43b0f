/** The first line of a file that scripts/bundle-harness.ts wrote: one file holding its npm dependencies. */
import { closeSync, openSync, readSync } from 'node:fs';

export const BUNDLE_MARKER = '// evalflow bundle: one file, no npm package imported at run time (scripts/bundle-harness.ts)';

/** Whether `file` is such a bundle (an unbundled build, without esbuild, keeps tsc's modules). */
export function isBundle(file: string): boolean {
  const head = Buffer.alloc(BUNDLE_MARKER.length);
  const fd = openSync(file, 'r');
  try {
    return readSync(fd, head, 0, head.length, 0) === head.length && head.toString('utf8') === BUNDLE_MARKER;
  } finally {
    closeSync(fd);
  }
}
