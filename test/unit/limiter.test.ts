import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AdaptiveLimiter, CombinedLimiter, Semaphore, type Slot } from '../../harness/limiter.js';
import { EndpointLimitServer, SharedEndpointLimiter, workerSocketPath } from '../../harness/shared-limit.js';

const dir = mkdtempSync(join(tmpdir(), 'evalflow-limiter-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let sockets = 0;
const socketPath = () => join(dir, `limits-${sockets++}.sock`);

/** Lets granted waiters run. */
const tick = () => new Promise((r) => setImmediate(r));

async function take(limiter: { acquire(): Promise<Slot> }, n: number): Promise<Slot[]> {
  const slots: Slot[] = [];
  for (let i = 0; i < n; i++) slots.push(await limiter.acquire());
  return slots;
}

describe('Semaphore', () => {
  it('holds at most `limit` and serves waiters in arrival order', async () => {
    const s = new Semaphore(2);
    const order: number[] = [];
    await Promise.all([1, 2, 3, 4].map((i) => s.run(async () => {
      order.push(i);
      await tick();
    })));
    expect(order).toEqual([1, 2, 3, 4]);
    expect(s.inUse).toBe(0);
  });
});

describe('AdaptiveLimiter (AIMD under the parallelism cap)', () => {
  it('grants up to max at once; the next waits for a release', async () => {
    const limiter = new AdaptiveLimiter(3);
    const slots = await take(limiter, 3);
    let fourth = false;
    void limiter.acquire().then(() => (fourth = true));
    await tick();
    expect(fourth).toBe(false);
    slots[0]?.release('ok');
    await tick();
    expect(fourth).toBe(true);
  });

  it('halves on an overload once per round, never below 1, and recovers by one per `limit` successes up to max', async () => {
    const changes: Array<[number, string]> = [];
    const limiter = new AdaptiveLimiter(8, (limit, why) => changes.push([limit, why]));
    const round1 = await take(limiter, 8);
    // Three 429s from the same round: one halving (the others saw the old limit).
    round1.slice(0, 3).forEach((s) => s.release('overload'));
    expect(limiter.limit).toBe(4);
    round1.slice(3).forEach((s) => s.release('other'));
    // A 429 of a request started after the decrease halves again; and again, down to 1 and no further.
    for (const expected of [2, 1, 1]) {
      (await limiter.acquire()).release('overload');
      expect(limiter.limit).toBe(expected);
    }
    expect(limiter.stats).toEqual({ max: 8, limit: 1, lowest: 1, overloads: 6 });
    // Recovery: `limit` successes in a row raise it by one (1 → 2 after 1, 2 → 3 after 2 more, …) up to max.
    let successes = 0;
    while (limiter.limit < 8) {
      (await limiter.acquire()).release('ok');
      successes++;
    }
    expect(successes).toBe(1 + 2 + 3 + 4 + 5 + 6 + 7);
    for (let i = 0; i < 50; i++) (await limiter.acquire()).release('ok');
    expect(limiter.limit).toBe(8);
    expect(changes.slice(0, 3)).toEqual([[4, 'overload'], [2, 'overload'], [1, 'overload']]);
    expect(changes.at(-1)).toEqual([8, 'recovered']);
  });

  it('lets waiters in as the limit grows, and keeps in-flight under a shrunk limit', async () => {
    const limiter = new AdaptiveLimiter(4);
    const slots = await take(limiter, 4);
    slots[0]?.release('overload'); // limit 2, 3 in flight
    let granted = 0;
    for (let i = 0; i < 3; i++) void limiter.acquire().then(() => granted++);
    slots[1]?.release('other');
    await tick();
    expect(granted).toBe(0); // 2 in flight = limit
    slots[2]?.release('ok');
    await tick();
    expect(granted).toBe(1);
  });

  it('rejects a waiter whose signal aborts, without losing its place to others', async () => {
    const limiter = new AdaptiveLimiter(1);
    const [slot] = await take(limiter, 1);
    const abort = new AbortController();
    const first = limiter.acquire(abort.signal);
    const second = limiter.acquire();
    abort.abort(new Error('stop'));
    await expect(first).rejects.toThrow('stop');
    slot?.release('ok');
    await expect(second).resolves.toBeDefined();
  });

  it('CombinedLimiter holds a slot of each and gives back the first when the second fails', async () => {
    const own = new AdaptiveLimiter(2);
    const shared = new AdaptiveLimiter(1);
    const both = new CombinedLimiter([own, shared]);
    const slot = await both.acquire();
    const abort = new AbortController();
    const waiting = both.acquire(abort.signal); // holds own's 2nd slot, waits on shared
    await tick();
    abort.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    slot.release('overload');
    expect(own.limit).toBe(1);
    expect(shared.limit).toBe(1);
    await expect(take(own, 1)).resolves.toHaveLength(1); // own's slot of the failed acquire came back
  });
});

describe('shared per-endpoint limit over the worker socket', () => {
  it('two harnesses share one limit per key; another key has its own', async () => {
    const server = await EndpointLimitServer.start(socketPath());
    const a = new SharedEndpointLimiter(server.socketPath, 'inv-1\nhttp://e/v1', 3);
    const b = new SharedEndpointLimiter(server.socketPath, 'inv-1\nhttp://e/v1', 3);
    const other = new SharedEndpointLimiter(server.socketPath, 'inv-2\nhttp://e/v1', 1);
    const held = [...(await take(a, 2)), ...(await take(b, 1))];
    let bGranted = false;
    const waiting = b.acquire().then((s) => ((bGranted = true), s));
    await expect(other.acquire()).resolves.toBeDefined(); // its own key
    await new Promise((r) => setTimeout(r, 50));
    expect(bGranted).toBe(false);
    held[0]?.release('ok');
    const slot = await waiting;
    expect(server.stats('inv-1\nhttp://e/v1')).toMatchObject({ max: 3, limit: 3 });
    // An overload seen by one harness shrinks the limit for both.
    slot.release('overload');
    await new Promise((r) => setTimeout(r, 50));
    expect(server.stats('inv-1\nhttp://e/v1')?.limit).toBe(1);
    for (const l of [a, b, other]) l.close();
    await server.close();
  });

  it('frees the slots of a harness that goes away, and forgets the key when nobody uses it', async () => {
    const server = await EndpointLimitServer.start(socketPath());
    const gone = new SharedEndpointLimiter(server.socketPath, 'k', 1);
    await gone.acquire();
    const stays = new SharedEndpointLimiter(server.socketPath, 'k', 1);
    const waiting = stays.acquire();
    gone.close(); // killed while holding its slot
    await expect(waiting).resolves.toBeDefined();
    stays.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(server.stats('k')).toBeUndefined();
    await server.close();
  });

  it('drops a client that speaks nonsense', async () => {
    const server = await EndpointLimitServer.start(socketPath());
    const socket = createConnection(server.socketPath);
    const closed = new Promise((r) => socket.on('close', r));
    socket.write('not json\n');
    await closed;
    await server.close();
  });

  it('without a reachable worker, grants at once and says so once', async () => {
    const lines: string[] = [];
    const limiter = new SharedEndpointLimiter(join(dir, 'nobody-listens.sock'), 'k', 1, (l) => lines.push(l));
    const slots = await Promise.all([limiter.acquire(), limiter.acquire(), limiter.acquire()]);
    expect(slots).toHaveLength(3);
    await limiter.acquire();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^shared endpoint limit unavailable \(.*\): only this task's parallelism applies$/);
    limiter.close();
  });
});

describe('worker socket paths', () => {
  it('remove the socket of a worker killed with SIGKILL and keep a live one', async () => {
    const own = mkdtempSync(join(tmpdir(), 'evalflow-limit-sockets-'));
    try {
      const stale = join(own, 'evalflow-endpoint-limits-999999-0badc0de.sock');
      // A real server in a process that then dies without closing it: its socket file stays behind.
      const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise((resolve) => child.stdout.once('data', resolve));
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      expect(existsSync(stale)).toBe(true);
      const live = await EndpointLimitServer.start(await workerSocketPath(own));
      const unrelated = join(own, 'other.sock');
      writeFileSync(unrelated, '');
      const next = await workerSocketPath(own);
      expect(existsSync(stale)).toBe(false);
      expect(existsSync(live.socketPath)).toBe(true);
      expect(existsSync(unrelated)).toBe(true);
      expect(next).toMatch(new RegExp(`^${own}/evalflow-endpoint-limits-${process.pid}-[0-9a-f]{8}\\.sock$`));
      await live.close();
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });
});
