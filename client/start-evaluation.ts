/**
 * The small client script: start an evaluation from your own TypeScript, without the CLI.
 *
 *   node dist/client/start-evaluation.js examples/local_process.yaml [key=value …]
 *
 * It loads and validates a config exactly as `evalflow run` does, starts the InvocationWorkflow on
 * the server named by TEMPORAL_ADDRESS, waits for it and prints the per-task metrics as JSON.
 * Copy it as a starting point: every step is a public function.
 */
import { pathToFileURL } from 'node:url';
import { WorkflowFailedError } from '@temporalio/client';
import { connectClient } from '../common/temporal.js';
import { runWarnings } from '../config/inert-keys.js';
import { loadRunConfig } from '../config/load.js';
import { planTasks } from '../config/plan.js';
import type { InvocationResult } from '../workflows/invocation.js';
import { assertRunnable, buildInvocationInput, newInvocationId } from './invocation.js';
import { startInvocation } from './start-invocation.js';

export async function startEvaluation(configPath: string, overrides: string[] = []): Promise<InvocationResult> {
  const config = loadRunConfig({ configPath, overrides });
  const plans = planTasks(config);
  for (const warning of runWarnings(config, plans)) process.stderr.write(`warning: ${warning}\n`);
  const invocationId = newInvocationId();
  const input = buildInvocationInput(config, plans, { invocationId, now: new Date() });
  assertRunnable(config, input);
  const client = await connectClient();
  try {
    const handle = await startInvocation(client, input);
    process.stderr.write(`started ${handle.workflowId}; waiting for it to finish\n`);
    return await handle.result();
  } finally {
    await client.connection.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [configPath, ...overrides] = process.argv.slice(2);
  if (!configPath) {
    process.stderr.write('usage: start-evaluation CONFIG.yaml [key=value …]\n');
    process.exit(2);
  }
  try {
    const result = await startEvaluation(configPath, overrides);
    process.stdout.write(`${JSON.stringify(result.tasks.map((t) => ({ job: t.jobId, task: t.taskName, metrics: t.metrics })), null, 2)}\n`);
  } catch (err) {
    const cause = err instanceof WorkflowFailedError ? (err.cause?.message ?? err.message) : (err as Error).message;
    process.stderr.write(`error: ${cause}\n`);
    process.exitCode = err instanceof WorkflowFailedError ? 1 : 2;
  }
}
