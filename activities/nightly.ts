/**
 * Activities of NightlyRegressionWorkflow (workflows/nightly.ts). planNightly derives tonight's ids and
 * directories from the night's own workflow id and run, so each night is a new invocation with new
 * directories and its own response cache, while the schedule repeats the same input; gateNightly judges the
 * night (nightly/gate.ts); notifyNightly calls the webhook. They run on the shared task queue and read and
 * write the run and nightly directories, so the worker needs the executors' local output directories.
 */
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { assertEnvAllowed, assertPathAllowed, type WorkerPolicy } from '../common/worker-policy.js';
import { ConfigError } from '../config/errors.js';
import { NightlyConfigSchema, type NightlyConfig } from '../config/nightly.js';
import { planTasks } from '../config/plan.js';
import { validateRunConfig, type RunConfig } from '../config/schema.js';
import { requireEnv } from '../core/env-refs.js';
import type { BaselineRef, NightlyGate, NightlyResult } from '../core/nightly.js';
import { assertRunnable, buildInvocationInput, writeLauncherConfig } from '../client/invocation.js';
import { BaselineMissingError, gateNight, type Tonight } from '../nightly/gate.js';
import { postWebhook, WebhookError, webhookBody } from '../nightly/webhook.js';
import type { InvocationInput } from '../workflows/types.js';

export interface NightlyPlan {
  invocation: InvocationInput;
  nightlyDir: string;
  nightly: NightlyConfig;
}

/** 16 hex digits from the night's workflow id and run: the same on every retry, new every night. */
export function nightlyInvocationId(workflowId: string, runId: string): string {
  return createHash('sha256').update(`${workflowId}\n${runId}`).digest('hex').slice(0, 16);
}

/** `nightly.output_dir`, or `nightly-<schedule>` next to the run directories. */
export function nightlyDirOf(cfg: RunConfig, nightly: NightlyConfig, schedule: string, runDir: string): string {
  return nightly.output_dir ?? join(dirname(runDir), `nightly-${schedule}`);
}

export function createNightlyActivities(deps: { env: Record<string, string | undefined>; policy: WorkerPolicy; hostname: string }) {
  const configOf = (raw: Record<string, unknown>): RunConfig => {
    try {
      return validateRunConfig(raw);
    } catch (err) {
      if (err instanceof ConfigError) throw ApplicationFailure.nonRetryable(`the schedule's config: ${err.message}`, 'InvalidConfig');
      throw err;
    }
  };

  return {
    async planNightly(input: { schedule: string; config: Record<string, unknown>; workflowId: string; runId: string; startedAt: string }): Promise<NightlyPlan> {
      const cfg = configOf(input.config);
      const invocationId = nightlyInvocationId(input.workflowId, input.runId);
      let invocation: InvocationInput;
      try {
        invocation = buildInvocationInput(cfg, planTasks(cfg), { invocationId, now: new Date(input.startedAt) });
        // pre_cmd/post_cmd need NEMO_EVALUATOR_TRUST_PRE_CMD=1 where the night is planned (the worker), too.
        assertRunnable(cfg, invocation, deps.env);
      } catch (err) {
        if (err instanceof ConfigError) throw ApplicationFailure.nonRetryable(`the schedule's config: ${err.message}`, 'InvalidConfig');
        throw err;
      }
      const nightly = cfg.nightly ?? NightlyConfigSchema.parse({});
      const nightlyDir = nightlyDirOf(cfg, nightly, input.schedule, invocation.runDir);
      assertPathAllowed(deps.policy, 'output', invocation.runDir, 'execution.output_dir');
      assertPathAllowed(deps.policy, 'output', nightlyDir, nightly.output_dir ? 'nightly.output_dir' : 'execution.output_dir');
      writeLauncherConfig(invocation.runDir, cfg);
      return { invocation, nightlyDir, nightly };
    },

    async gateNightly(input: { nightly: NightlyConfig; nightlyDir: string; baseline?: BaselineRef; tonight: Tonight }): Promise<NightlyGate> {
      const nightly = NightlyConfigSchema.parse(input.nightly);
      assertPathAllowed(deps.policy, 'output', input.nightlyDir, 'nightly.output_dir');
      try {
        return await gateNight(nightly, input.nightlyDir, input.baseline, input.tonight);
      } catch (err) {
        if (err instanceof BaselineMissingError) throw ApplicationFailure.nonRetryable(err.message, 'BaselineMissing');
        throw err;
      }
    },

    async notifyNightly(input: { webhook: NonNullable<NightlyConfig['webhook']>; night: NightlyResult }): Promise<{ status: number }> {
      const { url: ref, format } = input.webhook;
      let url: string;
      if (ref.startsWith('lit:')) url = ref.slice('lit:'.length);
      else {
        const name = ref.slice('host:'.length);
        assertEnvAllowed(deps.policy, name, `nightly.webhook.url = ${ref}`);
        try {
          url = requireEnv(deps.env, name, `nightly.webhook.url = ${ref}`, `worker host ${deps.hostname}`);
        } catch (err) {
          throw ApplicationFailure.nonRetryable((err as Error).message, 'MissingEnvVar');
        }
      }
      try {
        return { status: await postWebhook(url, webhookBody(format, input.night)) };
      } catch (err) {
        if (err instanceof WebhookError && err.permanent) throw ApplicationFailure.nonRetryable(err.message, 'WebhookRefused');
        throw err;
      }
    },
  };
}
