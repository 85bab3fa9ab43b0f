/**
 * Workflow determinism: every stored history in test/fixtures/histories/ must replay against the
 * current workflow code. A failure here means a change to live workflow code needs `patched()`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../common/paths.js';
import { workflowCodeOptions } from '../../worker/main.js';
import '../support/temporal.js';

const dir = join(packageRoot(), 'test', 'fixtures', 'histories');

describe('replay of stored workflow histories', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

  it('has fixtures of both workflow types', () => {
    expect(files.some((f) => f.startsWith('InvocationWorkflow-'))).toBe(true);
    expect(files.some((f) => f.startsWith('EvaluationWorkflow-'))).toBe(true);
  });

  it('replays every stored history without a determinism error', async () => {
    const histories = files.map((file) => ({
      workflowId: file.replace(/\.json$/, ''),
      history: historyFromJSON(JSON.parse(readFileSync(join(dir, file), 'utf8'))),
    }));
    const results = [];
    for await (const result of Worker.runReplayHistories(workflowCodeOptions(), histories)) results.push(result);
    expect(results).toHaveLength(files.length);
    for (const r of results) expect(r.error, `${r.workflowId}: ${String(r.error)}`).toBeUndefined();
  });
});
