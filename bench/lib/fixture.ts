/** The bench's side of the fixture endpoint process (fixture-process.ts): start, counters, request arrival times. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Pool } from 'undici';
import { FIXTURE_MODEL } from '../../common/fixture-endpoint.js';
import { distPath } from '../../common/paths.js';
import type { Pinning } from './machine.js';
import { killGroup } from './processes.js';

export interface FixtureMark {
  id: string;
  /** When the server took the mark (ms, comparable with `now()`). */
  at: number;
  requests: number;
  connections: number;
  /** The server process's own CPU so far, µs. */
  cpuUs: number;
}

export class Fixture {
  private readonly pending = new Map<string, (fields: string[]) => void>();
  /** Arrival times of `first`/`last` events, keyed `kind id`. */
  private readonly events = new Map<string, number>();
  private readonly eventWaiters = new Map<string, (t: number) => void>();
  private seq = 0;

  private constructor(
    readonly url: string,
    readonly latencyMs: number,
    private readonly child: ChildProcess,
  ) {}

  /** Starts the fixture endpoint in its own process on the endpoint core. */
  static async start(pinning: Pinning, latencyMs: number): Promise<Fixture> {
    const [cmd, args] = pinning.command('endpoint', [process.execPath, distPath('bench', 'lib', 'fixture-process.js'), '--latency-ms', String(latencyMs)]);
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const sink: { fixture?: Fixture } = {};
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('fixture endpoint did not start in 20 s')), 20_000);
      child.once('exit', (code) => reject(new Error(`fixture endpoint exited (${code})`)));
      lines.on('line', (line) => {
        if (line.startsWith('listening ')) {
          clearTimeout(timer);
          resolve(line.slice('listening '.length).trim());
        } else sink.fixture?.onLine(line);
      });
    });
    sink.fixture = new Fixture(url, latencyMs, child);
    return sink.fixture;
  }

  private onLine(line: string): void {
    const fields = line.trim().split(' ');
    const [kind, id] = fields;
    if (id === undefined) return;
    if (kind === 'mark') {
      this.pending.get(id)?.(fields);
      this.pending.delete(id);
    } else if (kind === 'first' || kind === 'last') {
      const t = Number(fields[2]);
      const key = `${kind} ${id}`;
      this.events.set(key, t);
      this.eventWaiters.get(key)?.(t);
      this.eventWaiters.delete(key);
    }
  }

  /**
   * Snapshot of the server's counters. `event(mark, 'first')` then gives the arrival of the next
   * request and, when `expect` is given, `event(mark, 'last')` the arrival of the expect-th one.
   */
  async mark(expect?: number): Promise<FixtureMark> {
    const id = String(++this.seq);
    const fields = await new Promise<string[]>((resolve) => {
      this.pending.set(id, resolve);
      this.child.stdin?.write(`mark ${id}${expect === undefined ? '' : ` ${expect}`}\n`);
    });
    return { id, at: Number(fields[2]), requests: Number(fields[3]), connections: Number(fields[4]), cpuUs: Number(fields[5]) };
  }

  /** Arrival time of a mark's first / last request, or null if it does not come within `waitMs`. */
  async event(mark: FixtureMark, kind: 'first' | 'last', waitMs = 500): Promise<number | null> {
    const key = `${kind} ${mark.id}`;
    const known = this.events.get(key);
    if (known !== undefined) return known;
    return new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        this.eventWaiters.delete(key);
        resolve(null);
      }, waitMs);
      this.eventWaiters.set(key, (t) => {
        clearTimeout(timer);
        resolve(t);
      });
    });
  }

  /** 3,000 requests over 16 connections, so the server's JIT is warm before the first measured run. */
  async warm(): Promise<void> {
    const pool = new Pool(this.url, { connections: 16 });
    const body = JSON.stringify({ model: FIXTURE_MODEL, messages: [{ role: 'user', content: 'warm-up' }] });
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next++ < 3_000) {
        const res = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body });
        await res.body.text();
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    await pool.close();
  }

  stop(): void {
    this.child.stdin?.end();
    const child = this.child;
    setTimeout(() => killGroup(child), 2_000).unref();
  }
}
