/** `evalflow kill ID`: cancels an invocation (all its tasks) or one job; teardown stops the harness. */
import type { Client } from '@temporalio/client';
import { evaluationWorkflowId, invocationWorkflowId } from '../../workflows/types.js';
import { resolveId } from '../ids.js';
import type { Output } from '../output.js';

export async function killCommand(client: Client, id: string, io: Output): Promise<number> {
  const { invocationId, taskIndex } = await resolveId(client, id);
  const workflowId = taskIndex === undefined ? invocationWorkflowId(invocationId) : evaluationWorkflowId(`${invocationId}.${taskIndex}`);
  const handle = client.workflow.getHandle(workflowId);
  const { status } = await handle.describe();
  if (status.name !== 'RUNNING') {
    io.out(`${workflowId} is already ${status.name.toLowerCase()}; nothing to kill\n`);
    return 0;
  }
  await handle.cancel();
  io.out(`cancellation requested for ${workflowId}; running harnesses are being stopped\n`);
  // Wait briefly so the user sees the outcome; teardown continues server-side regardless.
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const { status: now } = await handle.describe();
    if (now.name !== 'RUNNING') {
      io.out(`${workflowId}: ${now.name.toLowerCase()}\n`);
      return 0;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  io.out(`${workflowId} is still stopping; check with \`npx evalflow status ${invocationId}\`\n`);
  return 0;
}
