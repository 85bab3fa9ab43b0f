/**
 * Pre-bundles the workflow code at build time (dist/workflow-bundle.js), so a worker starts in well
 * under a second instead of running webpack at every start (the samples' "production" pattern).
 */
import { writeFileSync } from 'node:fs';
import { bundleWorkflowCode } from '@temporalio/worker';
import { distPath } from '../common/paths.js';

const started = Date.now();
const { code } = await bundleWorkflowCode({ workflowsPath: distPath('workflows', 'index.js'), logger: quietLogger() });
writeFileSync(distPath('workflow-bundle.js'), code);
process.stdout.write(`workflow bundle: ${distPath('workflow-bundle.js')} (${(code.length / 1024).toFixed(0)} KiB, ${Date.now() - started} ms)\n`);

function quietLogger() {
  const noop = () => undefined;
  const warn = (message: string) => process.stderr.write(`${message}\n`);
  return { trace: noop, debug: noop, info: noop, warn, error: warn, log: noop };
}
