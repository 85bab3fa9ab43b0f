/**
 * The nightly webhook: one POST of JSON. `json`: the night's verdict, regressions and report paths, with a
 * Slack-compatible `text`; `slack`: `{text}` only (what a Slack incoming webhook expects). A refused
 * request (4xx other than 408/429) is permanent; anything else may pass on a retry.
 */
import type { NightlyResult } from '../core/nightly.js';

export class WebhookError extends Error {
  override name = 'WebhookError';
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

export function webhookBody(format: 'json' | 'slack', night: NightlyResult): unknown {
  if (format === 'slack') return { text: night.text };
  return {
    text: night.text,
    schedule: night.schedule,
    verdict: night.verdict,
    invocation_id: night.invocationId,
    run_dir: night.runDir,
    baseline: night.baseline,
    regressions: night.regressions,
    report: { json: night.reportJson, html: night.reportHtml },
  };
}

/** POSTs the body; the URL is never part of an error message (webhook URLs carry their secret). */
export async function postWebhook(url: string, body: unknown, timeoutMs = 15_000): Promise<number> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new WebhookError(`webhook request failed: ${(err as Error).name === 'TimeoutError' ? `no answer in ${timeoutMs / 1000} s` : ((err as { cause?: Error }).cause?.message ?? (err as Error).message)}`, false);
  }
  await res.arrayBuffer().catch(() => undefined);
  if (!res.ok) throw new WebhookError(`webhook answered HTTP ${res.status}`, res.status < 500 && res.status !== 408 && res.status !== 429);
  return res.status;
}
