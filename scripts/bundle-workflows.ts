/**
 * Pre-bundles the workflow code at build time, so a worker starts in well under a second instead of running
 * webpack at every start (the samples' "production" pattern): dist/workflow-bundle.js, and
 * dist/workflow-bundle-encrypted.js for workers with the payload codec (its failure converter encodes
 * failure messages, which only a bundle can change inside the workflow sandbox).
 */
import { writeFileSync } from 'node:fs';
import { bundleWorkflowCode } from '@temporalio/worker';
import { ENCRYPTED_FAILURE_CONVERTER_PATH } from '../common/codec.js';
import { distPath } from '../common/paths.js';

for (const [file, failureConverterPath] of [
  ['workflow-bundle.js', undefined],
  ['workflow-bundle-encrypted.js', ENCRYPTED_FAILURE_CONVERTER_PATH],
] as const) {
  const started = Date.now();
  const { code } = await bundleWorkflowCode({ workflowsPath: distPath('workflows', 'index.js'), failureConverterPath, logger: quietLogger() });
  writeFileSync(distPath(file), code);
  process.stdout.write(`workflow bundle: ${distPath(file)} (${(code.length / 1024).toFixed(0)} KiB, ${Date.now() - started} ms)\n`);
}

function quietLogger() {
  const noop = () => undefined;
  const warn = (message: string) => process.stderr.write(`${message}\n`);
  return { trace: noop, debug: noop, info: noop, warn, error: warn, log: noop };
}
