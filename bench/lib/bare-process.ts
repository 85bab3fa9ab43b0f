/**
 * The control client: a bare undici Pool (connections = c, keep-alive) sending the harness's own
 * request bodies, in its own process on the client core (started by `runBare`).
 *
 *   node dist/bench/lib/bare-process.js --url U --dataset-dir D --dataset-path P --c 64 --n 10000 --warmup 1000
 *
 * Prints `result <json>` (BareResult without the server's figures).
 */
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import type { BareResult } from './bare.js';
import { harnessBodies } from './datasets.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      'dataset-dir': { type: 'string' },
      'dataset-path': { type: 'string' },
      c: { type: 'string' },
      n: { type: 'string' },
      warmup: { type: 'string', default: '0' },
    },
    strict: true,
  });
  const [c, n, warmup] = [Number(values.c), Number(values.n), Number(values.warmup)];
  if (!values.url || !values['dataset-dir'] || !values['dataset-path'] || !(c >= 1) || !(n >= 1) || !(warmup >= 0)) {
    throw new Error('usage: bare-process.js --url U --dataset-dir D --dataset-path P --c C --n N [--warmup W]');
  }
  const dataset = { dir: values['dataset-dir'], path: values['dataset-path'], rows: Math.max(n, warmup) };
  const payloads = (await harnessBodies(dataset, Math.max(n, warmup))).map((b) => JSON.stringify(b));
  const target = new URL(`${values.url}/v1/chat/completions`);
  const pool = new Pool(target.origin, { connections: c, pipelining: 1, keepAliveTimeout: 30_000 });
  const headers = { 'content-type': 'application/json' };
  let errors = 0;
  const blast = async (count: number): Promise<number> => {
    let next = 0;
    const t0 = performance.now();
    const worker = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        const res = await pool.request({ method: 'POST', path: target.pathname, headers, body: payloads[i % payloads.length] });
        await res.body.text();
        if (res.statusCode !== 200) errors++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(c, count) }, worker));
    return (performance.now() - t0) / 1000;
  };
  const warmupS = warmup > 0 ? await blast(warmup) : 0;
  errors = 0;
  const cpu0 = process.cpuUsage();
  const seconds = await blast(n);
  const cpu = process.cpuUsage(cpu0);
  await pool.close();
  const result: BareResult = {
    c,
    n,
    warmupRps: warmup > 0 ? warmup / warmupS : null,
    rps: n / seconds,
    seconds,
    errors,
    cpuMsPerRequest: (cpu.user + cpu.system) / 1000 / n,
  };
  process.stdout.write(`result ${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bare-process: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
