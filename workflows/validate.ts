import { ApplicationFailure } from '@temporalio/workflow';
import type { z } from 'zod';

/** Validates a workflow input; invalid input fails the workflow at once (retrying cannot fix it). */
export function parseWorkflowInput<S extends z.ZodType>(schema: S, raw: unknown): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  throw ApplicationFailure.nonRetryable(`invalid workflow input: ${issues.join('; ')}`, 'InvalidWorkflowInput');
}
