/** Queries and signals of the evalflow workflows (names are part of the public interface). */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { InvocationStatus, TaskStageUpdate, TaskStatus } from './types.js';

/** `temporal workflow query --name status`: on an invocation, every task; on a task, that task. */
export const invocationStatusQuery = defineQuery<InvocationStatus>('status');
export const taskStatusQuery = defineQuery<TaskStatus>('status');

/** Sent by each EvaluationWorkflow to its invocation when its stage changes (never per progress tick). */
export const taskStageSignal = defineSignal<[TaskStageUpdate]>('taskStage');
