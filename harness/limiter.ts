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
