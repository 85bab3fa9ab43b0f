/**
 * The fixture endpoint in its own process for the benches (started by `startFixture`, pinned to the
 * endpoint core): `startFixtureServer` with records off, and a line protocol on stdin/stdout so the
 * bench learns when the first and the last request of a run arrive at the server.
 *
 *   node dist/bench/lib/fixture-process.js [--latency-ms 50]
 *
 * stdout: `listening <url>` once, then for each `mark <id> [expect]` line on stdin:
 * `mark <id> <ms> <requests> <connections> <cpuUs>` at once (the server's counters and its own CPU),
 * `first <id> <ms>` when the next request arrives, and `last <id> <ms>` when the expect-th one does.
 * Closing stdin stops it.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { startFixtureServer } from '../../common/fixture-endpoint.js';
import { now } from './machine.js';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'latency-ms': { type: 'string', default: '0' } }, strict: true });
  const latencyMs = Number(values['latency-ms']);
  if (!Number.isFinite(latencyMs) || latencyMs < 0) throw new Error(`bad --latency-ms ${values['latency-ms']}`);
  const server = await startFixtureServer({ latencyMs, record: false });
  process.stdout.write(`listening ${server.url}\n`);
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const [cmd, id, expect] = line.trim().split(/\s+/);
    if (cmd !== 'mark' || id === undefined) return;
    const cpu = process.cpuUsage();
    const total = server.totalRequests();
    process.stdout.write(`mark ${id} ${now()} ${total} ${server.totalConnections()} ${cpu.user + cpu.system}\n`);
    void server.waitForRequests(total + 1).then(() => process.stdout.write(`first ${id} ${now()}\n`));
    const n = Number(expect);
    if (Number.isInteger(n) && n > 1) void server.waitForRequests(total + n).then(() => process.stdout.write(`last ${id} ${now()}\n`));
  });
  lines.on('close', () => void server.close().then(() => process.exit(0)));
}

main().catch((err: unknown) => {
  process.stderr.write(`fixture-process: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
