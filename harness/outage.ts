/**
 * Endpoint outages pause a run instead of burning it. When a request fails beyond its retries with an endpoint
 * fault (transport error, timeout, 5xx), the engine asks the gate whether the endpoint is down: one probe (shared by
 * every sample that asks meanwhile) decides. Down: the gate closes, nothing is sent, the endpoint is re-probed with
 * backoff, and the waiting samples are sent again once it answers; if it stays down for the outage limit, every
 * waiter fails with an EndpointOutageError naming the URL and the last error. Up: the failure was the sample's own.
 */

import { sleep } from './client.js';

/** The endpoint did not answer for longer than the outage limit. */
export class EndpointOutageError extends Error {
  override name = 'EndpointOutageError';
}

export type GateState = 'up' | 'checking' | 'down' | 'failed';

export interface OutageGateOptions {
  /** Shown in messages: the URL requests go to. */
  url: string;
  /** How long the endpoint may stay down before the run fails (ms). */
  limitMs: number;
  /** Where the limit comes from, for the message (`config.params.extra.endpoint_outage_timeout`). */
  limitSource: string;
  /** One probe: null when the endpoint answers, else what went wrong. Must settle (own timeout). */
  probe: () => Promise<string | null>;
  /** First delay between probes while down; doubles up to `maxDelayMs`. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  signal?: AbortSignal;
  /** Called on every state change (for the log). */
  onChange?: (state: GateState, detail: string) => void;
  /** Test hooks: clock and sleep. */
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface OutageStats {
  /** How many times the endpoint went down. */
  outages: number;
  /** Time spent waiting for it, in ms (the current outage included). */
  downMs: number;
}

export class OutageGate {
  private state: GateState = 'up';
  private checking: Promise<'up' | 'down'> | undefined;
  private waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private failure: Error | undefined;
  private downSince = 0;
  private downMsBefore = 0;
  private outages = 0;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(private readonly opts: OutageGateOptions) {
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? sleep;
    opts.signal?.addEventListener('abort', () => this.rejectWaiters(opts.signal?.reason as Error), { once: true });
  }

  /** True while requests may be sent (the fast path: no promise when the endpoint is up). */
  get isUp(): boolean {
    return this.state === 'up';
  }

  get stats(): OutageStats {
    const current = this.state === 'down' || (this.state === 'failed' && this.downSince > 0) ? this.now() - this.downSince : 0;
    return { outages: this.outages, downMs: this.downMsBefore + current };
  }

  /** Resolves when requests may be sent; rejects with the EndpointOutageError once the limit has passed. */
  whenUp(): Promise<void> {
    if (this.state === 'up') return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    if (this.opts.signal?.aborted) return Promise.reject(this.opts.signal.reason as Error);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /**
   * A request failed beyond its retries with an endpoint fault. Resolves 'down' when the endpoint does not answer a
   * probe (the gate is now closed: wait with whenUp() and send again) or 'up' when it does.
   */
  async check(): Promise<'up' | 'down'> {
    if (this.failure) throw this.failure;
    if (this.state === 'down') return 'down';
    if (this.checking) return this.checking;
    this.state = 'checking';
    this.checking = this.probe().then((problem) => {
      this.checking = undefined;
      if (problem === null) {
        this.open();
        return 'up';
      }
      this.close(problem);
      return 'down';
    });
    return this.checking;
  }

  private probe(): Promise<string | null> {
    return this.opts.probe().catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
  }

  private open(): void {
    this.state = 'up';
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve();
  }

  private close(firstError: string): void {
    this.state = 'down';
    this.downSince = this.now();
    this.outages++;
    this.opts.onChange?.(
      'down',
      `endpoint ${this.opts.url} is not answering (${firstError}); sending paused, probing with backoff for up to ${formatSeconds(this.opts.limitMs)} (${this.opts.limitSource})`,
    );
    void this.probeUntilUp(firstError);
  }

  private async probeUntilUp(firstError: string): Promise<void> {
    const deadline = this.downSince + this.opts.limitMs;
    let delay = this.opts.initialDelayMs ?? 1000;
    const maxDelay = this.opts.maxDelayMs ?? 10_000;
    let lastError = firstError;
    for (;;) {
      const left = deadline - this.now();
      if (left <= 0) break;
      try {
        await this.sleep(Math.min(delay, left), this.opts.signal);
      } catch {
        return; // aborted: the waiters were rejected with the abort reason
      }
      delay = Math.min(delay * 2, maxDelay);
      const problem = await this.probe();
      if (this.opts.signal?.aborted) return;
      if (problem === null) {
        const downMs = this.now() - this.downSince;
        this.downMsBefore += downMs;
        this.opts.onChange?.('up', `endpoint ${this.opts.url} answers again after ${formatSeconds(downMs)}; resuming`);
        this.open();
        return;
      }
      lastError = problem;
    }
    this.state = 'failed';
    this.failure = new EndpointOutageError(
      `endpoint ${this.opts.url} did not answer for ${formatSeconds(this.now() - this.downSince)} (limit ${formatSeconds(this.opts.limitMs)}, ${this.opts.limitSource}); last error: ${lastError}`,
    );
    this.opts.onChange?.('failed', this.failure.message);
    this.rejectWaiters(this.failure);
  }

  private rejectWaiters(err: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
  }
}

function formatSeconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}
