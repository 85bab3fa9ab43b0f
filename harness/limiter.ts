/**
 * A counting semaphore: at most `limit` holders at once, waiters served in arrival order. The engine bounds
 * sandboxed scoring with it (a process per call).
 */
export class Semaphore {
  private held = 0;
  private waiters: Array<() => void> = [];

  constructor(private readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError(`semaphore limit must be at least 1, got ${limit}`);
  }

  get inUse(): number {
    return this.held;
  }

  /** Resolves once a slot is held; rejects with the signal's reason if it aborts first. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (this.held < this.limit && this.waiters.length === 0) {
      this.held++;
      return Promise.resolve();
    }
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== grant);
        reject(signal?.reason as Error);
      };
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        this.held++;
        resolve();
      };
      this.waiters.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  release(): void {
    this.held--;
    const next = this.waiters.shift();
    if (next) next();
  }

  /** Runs `fn` holding a slot. */
  async run<T>(fn: () => Promise<T> | T, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}

/** How a request held under a limiter ended: `overload` (429/503: the endpoint is saturated) shrinks the limit. */
export type SlotOutcome = 'ok' | 'overload' | 'other';

/** One request's permission to be in flight; released exactly once with its outcome. */
export interface Slot {
  release(outcome: SlotOutcome): void;
}

/** Grants request slots (in-process, or shared with other harnesses through the worker: harness/shared-limit.ts). */
export interface RequestLimiter {
  acquire(signal?: AbortSignal): Promise<Slot>;
}

export interface LimiterStats {
  /** The hard cap (`parallelism`, or the shared per-endpoint limit). */
  max: number;
  /** The current limit. */
  limit: number;
  /** The lowest limit reached. */
  lowest: number;
  /** Overload answers seen (each shrinks the limit at most once per round, see below). */
  overloads: number;
}

/**
 * Adaptive concurrency (AIMD, as TCP congestion control): starts at `max`; an overload answer halves the limit (never
 * below 1) once per round: overloads of requests that started before the last decrease are ignored, since they saw
 * the old limit. Every `limit` successes in a row without an overload raise it by one, up to `max`.
 */
export class AdaptiveLimiter implements RequestLimiter {
  private current: number;
  private inFlight = 0;
  private epoch = 0;
  private successes = 0;
  private waiters: Array<() => void> = [];
  private readonly counters: { lowest: number; overloads: number };

  constructor(
    readonly max: number,
    private readonly onChange?: (limit: number, reason: 'overload' | 'recovered') => void,
  ) {
    if (!(Number.isInteger(max) && max >= 1)) throw new RangeError(`limiter max must be an integer of at least 1, got ${max}`);
    this.current = max;
    this.counters = { lowest: max, overloads: 0 };
  }

  get limit(): number {
    return this.current;
  }

  get stats(): LimiterStats {
    return { max: this.max, limit: this.current, ...this.counters };
  }

  acquire(signal?: AbortSignal): Promise<Slot> {
    if (this.inFlight < this.current && this.waiters.length === 0) return Promise.resolve(this.grant());
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(signal?.reason as Error);
      };
      const waiter = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(this.grant());
      };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private grant(): Slot {
    this.inFlight++;
    const epoch = this.epoch;
    let released = false;
    return {
      release: (outcome) => {
        if (released) return;
        released = true;
        this.inFlight--;
        this.settle(outcome, epoch);
        this.wake();
      },
    };
  }

  private settle(outcome: SlotOutcome, epoch: number): void {
    if (outcome === 'overload') {
      this.counters.overloads++;
      this.successes = 0;
      if (epoch !== this.epoch) return;
      this.epoch++;
      const next = Math.max(1, Math.floor(this.current / 2));
      if (next !== this.current) {
        this.current = next;
        this.counters.lowest = Math.min(this.counters.lowest, next);
        this.onChange?.(next, 'overload');
      }
    } else if (outcome === 'ok' && this.current < this.max && ++this.successes >= this.current) {
      this.successes = 0;
      this.current++;
      this.onChange?.(this.current, 'recovered');
    }
  }

  private wake(): void {
    while (this.inFlight < this.current && this.waiters.length > 0) (this.waiters.shift() as () => void)();
  }
}

/** Holds a slot of every limiter (in order) for one request: the task's own and the endpoint's shared one. */
export class CombinedLimiter implements RequestLimiter {
  constructor(private readonly limiters: readonly RequestLimiter[]) {}

  async acquire(signal?: AbortSignal): Promise<Slot> {
    const held: Slot[] = [];
    try {
      for (const limiter of this.limiters) held.push(await limiter.acquire(signal));
    } catch (err) {
      for (const slot of held) slot.release('other');
      throw err;
    }
    return { release: (outcome) => held.forEach((slot) => slot.release(outcome)) };
  }
}
