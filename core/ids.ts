/**
 * Names and ids every part of evalflow agrees on: task queue, workflow types and ids, job ids and the
 * deterministic name of one launch. Pure: imported by workflows, activities, executors and the CLI.
 */

export const TASK_QUEUE = 'evalflow';
export const INVOCATION_WORKFLOW = 'InvocationWorkflow';
export const EVALUATION_WORKFLOW = 'EvaluationWorkflow';

/** 16 lowercase hex digits, as upstream's `secrets.token_hex(8)`. */
export const INVOCATION_ID_PATTERN = /^[0-9a-f]{16}$/;
/** `<task>.<index>`: the job's directory name; safe on command lines and in container/Slurm names. */
export const JOB_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export const invocationWorkflowId = (invocationId: string): string => `evalflow-${invocationId}`;
export const evaluationWorkflowId = (jobId: string): string => `evalflow-${jobId}`;

export function jobIdOf(invocationId: string, taskIndex: number): string {
  return `${invocationId}.${taskIndex}`;
}

/** The deterministic name of one launch of a job: container name, Slurm job name, marker files. */
export function launchName(jobId: string, attempt: number): string {
  return `evalflow-${jobId}-a${attempt}`;
}

/** Task queue of the workers on one host: activities that must run where a local harness runs. */
export function hostTaskQueue(hostId: string): string {
  return `${TASK_QUEUE}@${hostId}`;
}
