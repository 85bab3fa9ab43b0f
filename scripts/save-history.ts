/**
 * Saves workflow histories as replay fixtures (test/fixtures/histories/), for the CI replay test that
 * guards workflow determinism: `node dist/scripts/save-history.js <workflowId>… ` (TEMPORAL_ADDRESS).
 * Re-record after an intended, patched() change to the workflows, and keep the old files too.
 */
import { writeFileSync } from 'node:fs';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { join } from 'node:path';
import { connectClient } from '../common/temporal.js';
import { packageRoot } from '../common/paths.js';

const ids = process.argv.slice(2);
if (ids.length === 0) {
  process.stderr.write('usage: save-history WORKFLOW_ID…\n');
  process.exit(2);
}
const client = await connectClient();
try {
  for (const workflowId of ids) {
    const handle = client.workflow.getHandle(workflowId);
    const { type } = await handle.describe();
    const history = await handle.fetchHistory();
    const file = join(packageRoot(), 'test', 'fixtures', 'histories', `${type}-${workflowId.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
    writeFileSync(file, `${historyToJSON(history)}\n`);
    process.stdout.write(`${file} (${history.events?.length ?? 0} events)\n`);
  }
} finally {
  await client.connection.close();
}
