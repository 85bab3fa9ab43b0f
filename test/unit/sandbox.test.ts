import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { networkIsolationAvailable, runPython } from '../../harness/sandbox.js';
import { passAtK } from '../../harness/tasks/pass-at-k.js';

const HUMANEVAL = fileURLToPath(new URL('../../../shared/datasets/humaneval/HumanEval.jsonl.gz', import.meta.url));

interface HumanEvalRow {
  task_id: string;
  prompt: string;
  canonical_solution: string;
  test: string;
  entry_point: string;
}

function humanEval(): HumanEvalRow[] {
  return gunzipSync(readFileSync(HUMANEVAL)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as HumanEvalRow);
}

function program(row: HumanEvalRow, completion: string): string {
  return `${row.prompt}${completion}\n\n${row.test}\n\ncheck(${row.entry_point})\n`;
}

/** The sandbox dirs under `root` (the sandbox makes them in os.tmpdir(), which follows TMPDIR). */
async function sandboxDirs(root: string): Promise<string[]> {
  return (await readdir(root)).filter((n) => n.startsWith('evalflow-sandbox-'));
}

describe('pass@k', () => {
  it('matches the closed form 1 - C(n-c,k)/C(n,k)', () => {
    expect(passAtK(1, 1, 1)).toBe(1);
    expect(passAtK(1, 0, 1)).toBe(0);
    expect(passAtK(10, 3, 1)).toBeCloseTo(0.3, 12);
    expect(passAtK(10, 3, 5)).toBeCloseTo(1 - 21 / 252, 12); // C(7,5)=21, C(10,5)=252
    expect(passAtK(20, 0, 10)).toBe(0);
    expect(passAtK(200, 199, 100)).toBe(1);
    expect(() => passAtK(5, 6, 1)).toThrow(RangeError);
  });
});

describe('python sandbox', () => {
  it('uses a network namespace when running as root', () => {
    expect(networkIsolationAvailable()).toBe(process.getuid?.() === 0);
  });

  it('passes all 164 canonical HumanEval solutions and fails known wrong ones', async () => {
    const rows = humanEval();
    expect(rows).toHaveLength(164);
    // A private TMPDIR, so that sandboxes run by other test files at the same time are not counted.
    const root = mkdtempSync(join(tmpdir(), 'evalflow-sandbox-test-'));
    chmodSync(root, 0o711); // nobody (the sandbox's user) must reach its own dir inside
    const savedTmpdir = process.env.TMPDIR;
    process.env.TMPDIR = root;
    try {
      const where = await runPython('import os\nprint(os.getcwd())\n');
      expect(where.stdout.trim().startsWith(`${root}/evalflow-sandbox-`)).toBe(true); // the count below is meaningful
      const failures: string[] = [];
      for (let i = 0; i < rows.length; i += 4) {
        const batch = rows.slice(i, i + 4);
        const results = await Promise.all(batch.map((row) => runPython(program(row, row.canonical_solution), { timeoutMs: 20_000 })));
        results.forEach((r, j) => {
          if (r.status !== 'passed') failures.push(`${batch[j]?.task_id}: ${r.status} ${r.stderr.slice(-300)}`);
        });
      }
      expect(failures).toEqual([]);
      // Wrong: a body that returns None, and one off by a constant.
      const [first, second] = rows;
      if (!first || !second) throw new Error('no rows');
      expect((await runPython(program(first, '    return None\n'))).status).toBe('failed');
      expect((await runPython(program(second, '    return []\n'))).status).toBe('failed');
      expect(await sandboxDirs(root)).toEqual([]); // every temp dir removed
    } finally {
      if (savedTmpdir === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmpdir;
      rmSync(root, { recursive: true, force: true });
    }
  }, 240_000);

  it('contains escape attempts and scores them as failures', async () => {
    const loop = await runPython('while True:\n    pass\n', { timeoutMs: 1500 });
    expect(loop.status).toBe('timeout');
    const fork = await runPython('import os\nfor _ in range(1000):\n    os.fork()\n');
    expect(fork.status).toBe('failed');
    expect(fork.stderr).toMatch(/BlockingIOError|Resource temporarily unavailable|PermissionError/);
    const memory = await runPython('x = bytearray(4 * 1024 ** 3)\n', { memoryMb: 256 });
    expect(memory.status).toBe('failed');
    expect(memory.stderr).toContain('MemoryError');
    const output = await runPython("import sys\nsys.stdout.write('x' * 50_000_000)\n", { maxOutputBytes: 1024 });
    expect(output.stdout.length).toBe(1024);
    const bigFile = await runPython("open('big.bin', 'wb').write(b'0' * (64 * 1024 * 1024))\n", { maxFileMb: 1 });
    expect(bigFile.status).toBe('failed');
    const network = await runPython("import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=2)\n");
    if (networkIsolationAvailable()) {
      expect(network.status).toBe('failed');
      expect(network.stderr).toMatch(/Network is unreachable|Connection refused|OSError/);
    }
    const passing = await runPython('print(sum(range(10)))\n');
    expect(passing).toMatchObject({ status: 'passed', exitCode: 0, stdout: '45\n' });
  }, 60_000);
});
