/**
 * NightlyRegressionWorkflow: one night of a schedule (`evalflow schedule create`). The schedule starts it
 * with the same input every night, so nothing in the input names a run: the planning activity derives
 * tonight's invocation id, run and job directories from this workflow's own id and run. The suite runs as
 * a child InvocationWorkflow; whatever way it ends, the gate activity compares it with the baseline and
 * writes the report (a failed or cancelled suite never passes); the verdict goes to search attributes
 * (EvalVerdict) and memo, and the webhook is called when the config asks for this verdict.
 */
import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowCancellationType,
  isCancellation,
  ParentClosePolicy,
  proxyActivities,
  setCurrentDetails,
  startChild,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createNightlyActivities } from '../activities/nightly.js';
import { NightlyInputSchema, type NightlyResult } from '../core/nightly.js';
import { SEARCH_ATTRIBUTES } from '../core/search-attributes.js';
import type { InvocationResult, InvocationWorkflow } from './invocation.js';
import { invocationStartOptions } from './start-options.js';
import { INVOCATION_WORKFLOW, type EvaluationResult, type InvocationInput } from './types.js';
import { parseWorkflowInput } from './validate.js';

type Activities = ReturnType<typeof createNightlyActivities>;

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 5, initialInterval: '5 seconds', maximumInterval: '1 minute' },
});

export async function NightlyRegressionWorkflow(rawInput: unknown): Promise<NightlyResult> {
  const input = parseWorkflowInput(NightlyInputSchema, rawInput);
  const { workflowId, runId, startTime } = workflowInfo();
  const startedAt = startTime.toISOString();
  const plan = await acts.planNightly({ schedule: input.schedule, config: input.config, workflowId, runId, startedAt });
  const { invocation } = plan;
  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.invocation, value: invocation.invocationId },
    { key: SEARCH_ATTRIBUTES.stage, value: 'running' },
  ]);
  upsertMemo({ schedule: input.schedule, invocationId: invocation.invocationId, runDir: invocation.runDir });
  setCurrentDetails(`**${input.schedule}**: running invocation ${invocation.invocationId}`);

  const suite = await runSuite(input.confidential, plan.invocation, workflowId);
  const gate = await acts.gateNightly({
    nightly: plan.nightly,
    nightlyDir: plan.nightlyDir,
    ...(input.baseline ? { baseline: input.baseline } : {}),
    tonight: {
      schedule: input.schedule,
      nightlyWorkflowId: workflowId,
      invocationId: invocation.invocationId,
      runDir: invocation.runDir,
      startedAt,
      suite,
      jobs: invocation.tasks.map((t) => ({ jobName: t.jobName, taskName: t.taskName, jobDir: t.jobDir })),
    },
  });
  const result: NightlyResult = { ...gate, schedule: input.schedule, invocationId: invocation.invocationId, runDir: invocation.runDir };
  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.verdict, value: gate.verdict },
    { key: SEARCH_ATTRIBUTES.stage, value: 'succeeded' },
  ]);
  upsertMemo({ verdict: gate.verdict, report: gate.reportHtml, baseline: gate.baseline?.label ?? null });
  setCurrentDetails(gate.text);
  if (gate.notify && plan.nightly.webhook) await acts.notifyNightly({ webhook: plan.nightly.webhook, night: result });
  return result;
}

type SuiteOutcome = { state: 'succeeded' | 'failed' | 'cancelled'; error?: string; succeededJobs: string[] };

/** Runs tonight's invocation as a child and reports how it ended (its failure is the gate's to judge, not this workflow's). */
async function runSuite(confidential: boolean, invocation: InvocationInput, nightlyWorkflowId: string): Promise<SuiteOutcome> {
  try {
    const child = await startChild<typeof InvocationWorkflow>(INVOCATION_WORKFLOW, {
      ...invocationStartOptions({ ...invocation, confidential }, { nightly: nightlyWorkflowId }),
      // Ending the night (terminate, cancel) cancels its suite, which stops its harnesses.
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
    });
    const result = await child.result();
    return { state: 'succeeded', succeededJobs: result.tasks.map((t) => t.jobName) };
  } catch (err) {
    if (CancellationScope.current().consideredCancelled) throw err;
    return { state: isCancellation(err) ? 'cancelled' : 'failed', error: innermostMessage(err), succeededJobs: succeededJobsOf(err) };
  }
}

/** The jobs that succeeded in a failed invocation (its failure details carry their results). */
function succeededJobsOf(err: unknown): string[] {
  for (let e: unknown = err; e instanceof Error; e = (e as { cause?: unknown }).cause) {
    const details = e instanceof ApplicationFailure ? (e.details?.[0] as Partial<InvocationResult> | undefined) : undefined;
    if (details && Array.isArray(details.tasks)) return (details.tasks as EvaluationResult[]).map((t) => t.jobName);
  }
  return [];
}

function innermostMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && (e as { cause?: unknown }).cause instanceof Error) e = (e as { cause: Error }).cause;
  return e instanceof Error ? e.message : String(err);
}
