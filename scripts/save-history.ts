/**
 * Saves workflow histories as replay fixtures (test/fixtures/histories/), for the CI replay test that
 * guards workflow determinism: `node dist/scripts/save-history.js <workflowId>…` (TEMPORAL_ADDRESS).
 * Uses `temporal workflow show --output json`, the format Temporal's own tools read back.
 * Re-record after an intended, patched() change to the workflows, and keep the old files too.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../common/paths.js';
import { temporalTarget } from '../common/temporal.js';
import { findTemporalCli } from './temporal-dev-server.js';

const ids = process.argv.slice(2);
if (ids.length === 0) {
  process.stderr.write('usage: save-history WORKFLOW_ID…\n');
  process.exit(2);
}
const { address, namespace } = temporalTarget();
const cli = findTemporalCli();
for (const workflowId of ids) {
  const json = execFileSync(cli, ['workflow', 'show', '--workflow-id', workflowId, '--output', 'json', '--address', address, '--namespace', namespace], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  const history = JSON.parse(json) as { events: Array<{ eventType: string; workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } } }> };
  const type = history.events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? 'Workflow';
  const file = join(packageRoot(), 'test', 'fixtures', 'histories', `${type}-${workflowId.replace(/^evalflow-/, '').replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
  writeFileSync(file, json);
  process.stdout.write(`${file} (${history.events.length} events)\n`);
}
