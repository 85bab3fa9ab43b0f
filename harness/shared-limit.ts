/**
 * A per-endpoint concurrency limit shared by the harness processes of one invocation on one worker
 * (`execution.endpoint_parallelism`). The worker serves the limits on a unix socket (`EndpointLimitServer`, its path
 * in `EVALFLOW_ENDPOINT_LIMITS` of the harnesses it launches); each harness asks it for a slot per request attempt
 * (`SharedEndpointLimiter`). The shared limit adapts like a task's own (harness/limiter.ts): an overload seen by any
 * task shrinks it for all of them.
 *
 * Protocol: JSON lines. Harness → worker `{"op":"acquire","id":n,"key":k,"max":m}` and `{"op":"release","id":n,
 * "outcome":"ok|overload|other"}`; worker → harness `{"id":n}` when slot n is granted. A harness that goes away
 * releases what it held (its connection closes), so a killed task never leaks slots.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { AdaptiveLimiter, type LimiterStats, type RequestLimiter, type Slot, type SlotOutcome } from './limiter.js';

/** The environment variable that carries the socket path to the harness. */
export const ENDPOINT_LIMITS_ENV = 'EVALFLOW_ENDPOINT_LIMITS';

const OUTCOMES = new Set<SlotOutcome>(['ok', 'overload', 'other']);

const WORKER_SOCKET = /^evalflow-endpoint-limits-\d+-[0-9a-f]{8}\.sock$/;

/**
 * A fresh path for a worker's limit server in `dir`. The sockets left there by workers that died without closing
 * theirs (SIGKILL, OOM) are removed first: nothing answers on them any more.
 */
export async function workerSocketPath(dir: string): Promise<string> {
  const names = readdirSync(dir).filter((name) => WORKER_SOCKET.test(name));
  await Promise.all(
    names.map(async (name) => {
      const path = join(dir, name);
      if (await nobodyListens(path)) rmSync(path, { force: true });
    }),
  );
  return join(dir, `evalflow-endpoint-limits-${process.pid}-${randomUUID().slice(0, 8)}.sock`);
}

/** True when connecting to the unix socket at `path` is refused (its server is gone). */
function nobodyListens(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** Calls `onLine` for every complete line that arrives on `socket`. */
function readLines(socket: Socket, onLine: (line: string) => void): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line !== '') onLine(line);
    }
  });
}

export class EndpointLimitServer {
  private readonly limits = new Map<string, { limiter: AdaptiveLimiter; users: number }>();
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly socketPath: string,
    private readonly server: Server,
  ) {}

  /** Listens on `socketPath` (a stale socket file there is replaced). */
  static async start(socketPath: string): Promise<EndpointLimitServer> {
    rmSync(socketPath, { force: true });
    const server = createServer();
    const self = new EndpointLimitServer(socketPath, server);
    server.on('connection', (socket: Socket) => self.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    server.unref(); // serving limits never keeps a process alive
    return self;
  }

  /** The current state of a key's limit (tests, logs). */
  stats(key: string): LimiterStats | undefined {
    return this.limits.get(key)?.limiter.stats;
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    const held = new Map<number, Slot>();
    const pending = new Map<number, AbortController>();
    const keys = new Set<string>();
    readLines(socket, (line) => {
      let msg: { op?: unknown; id?: unknown; key?: unknown; max?: unknown; outcome?: unknown };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        socket.destroy();
        return;
      }
      const id = msg.id;
      if (typeof id !== 'number') return void socket.destroy();
      if (msg.op === 'acquire' && typeof msg.key === 'string' && Number.isInteger(msg.max) && (msg.max as number) >= 1) {
        const limiter = this.limiterFor(msg.key, msg.max as number, keys);
        const abort = new AbortController();
        pending.set(id, abort);
        limiter.acquire(abort.signal).then(
          (slot) => {
            pending.delete(id);
            held.set(id, slot);
            socket.write(`{"id":${id}}\n`);
          },
          () => pending.delete(id),
        );
      } else if (msg.op === 'release' && OUTCOMES.has(msg.outcome as SlotOutcome)) {
        held.get(id)?.release(msg.outcome as SlotOutcome);
        held.delete(id);
      } else {
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.sockets.delete(socket);
      for (const abort of pending.values()) abort.abort(new Error('harness gone'));
      for (const slot of held.values()) slot.release('other');
      held.clear();
      for (const key of keys) {
        const entry = this.limits.get(key);
        if (entry && --entry.users === 0) this.limits.delete(key);
      }
    });
  }

  private limiterFor(key: string, max: number, keys: Set<string>): AdaptiveLimiter {
    let entry = this.limits.get(key);
    if (!entry) this.limits.set(key, (entry = { limiter: new AdaptiveLimiter(max), users: 0 }));
    if (!keys.has(key)) {
      keys.add(key);
      entry.users++;
    }
    return entry.limiter;
  }

  /** Stops serving; harnesses still connected fall back to their own parallelism. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
    rmSync(this.socketPath, { force: true });
  }
}

/**
 * The harness's side: a slot of the shared limit `key` (at most `max`) per request attempt. If the worker cannot be
 * reached, it grants every slot at once (the task's own parallelism still applies) and says so once through `log`.
 */
export class SharedEndpointLimiter implements RequestLimiter {
  private socket: Socket | undefined;
  private broken = false;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (slot: Slot) => void; abandoned: boolean }>();

  constructor(
    private readonly socketPath: string,
    private readonly key: string,
    private readonly max: number,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  private connection(): Socket | undefined {
    if (this.broken) return undefined;
    if (!this.socket) {
      const socket = createConnection(this.socketPath);
      readLines(socket, (line) => this.granted(line));
      const fail = (why: string) => {
        if (this.broken) return;
        this.broken = true;
        this.log(`shared endpoint limit unavailable (${why}): only this task's parallelism applies`);
        for (const w of this.waiting.values()) if (!w.abandoned) w.resolve(NO_SLOT);
        this.waiting.clear();
      };
      socket.on('error', (err) => fail(err.message));
      socket.on('close', () => fail('the worker closed the connection'));
      this.socket = socket;
    }
    return this.socket;
  }

  private granted(line: string): void {
    const id = (JSON.parse(line) as { id: number }).id;
    const w = this.waiting.get(id);
    this.waiting.delete(id);
    const slot = this.slot(id);
    if (!w || w.abandoned) slot.release('other');
    else w.resolve(slot);
  }

  private slot(id: number): Slot {
    let released = false;
    return {
      release: (outcome) => {
        if (released || this.broken) return;
        released = true;
        this.socket?.write(`{"op":"release","id":${id},"outcome":"${outcome}"}\n`);
      },
    };
  }

  acquire(signal?: AbortSignal): Promise<Slot> {
    const socket = this.connection();
    if (!socket) return Promise.resolve(NO_SLOT);
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const entry = {
        abandoned: false,
        resolve: (slot: Slot) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(slot);
        },
      };
      const onAbort = () => {
        entry.abandoned = true; // released as soon as it is granted
        reject(signal?.reason as Error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.set(id, entry);
      socket.write(`${JSON.stringify({ op: 'acquire', id, key: this.key, max: this.max })}\n`);
    });
  }

  close(): void {
    this.broken = true;
    this.socket?.destroy();
  }
}

const NO_SLOT: Slot = { release: () => undefined };
