/** Frozen v1 queries and signals (see evaluation-v1.ts). */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { InvocationStatus, TaskStatus, TaskUpdate } from './types-v1.js';

/** `temporal workflow query --name status`: on an invocation, every task; on a task, that task. */
export const invocationStatusQuery = defineQuery<InvocationStatus>('status');
export const taskStatusQuery = defineQuery<TaskStatus>('status');

/** Sent by each EvaluationWorkflow to its invocation when its stage, progress or outcome changes. */
export const taskUpdateSignal = defineSignal<[TaskUpdate]>('taskUpdate');
