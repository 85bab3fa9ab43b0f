/**
 * The harness as a library: `import { evaluate } from 'evalflow'` resolves through package.json `exports` (Node's
 * self-reference, as an installed package resolves), runs against the fixture endpoint, and type-checks with the
 * published declarations.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../common/paths.js';
import { answerFromTable, startFixtureServer, type FixtureServer } from '../../common/fixture-endpoint.js';
import { DATASETS, gsm8kHead, tempDir } from '../support/run-helpers.js';

const run = promisify(execFile);

const CONSUMER = `import { evaluate, EvaluationFailedError, type ResultsFile } from 'evalflow';

const results: ResultsFile = await evaluate({
  target: { api_endpoint: { url: process.argv[2] as string, model_id: 'fixture-model', type: 'chat' } },
  config: { type: 'gsm8k', output_dir: process.argv[3] as string, params: { limit_samples: 3, extra: { dataset_dir: process.argv[4] } } },
});
console.log(JSON.stringify(results.results.tasks.gsm8k?.metrics.accuracy?.scores.accuracy?.value));
void EvaluationFailedError;
`;

describe("import { evaluate } from 'evalflow'", () => {
  let fixture: FixtureServer;
  // Inside the package, so that Node and tsc resolve 'evalflow' by self-reference, as a dependency would.
  const dir = mkdtempSync(join(packageRoot(), 'test', '.library-consumer-'));
  beforeAll(async () => {
    const questions = gsm8kHead(3);
    fixture = await startFixtureServer({ answer: answerFromTable(Object.fromEntries(questions.map((q, i) => [q.question, `The final answer is ${i === 0 ? q.answer : 'none'}`]))) });
    writeFileSync(join(dir, 'consumer.mts'), CONSUMER);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] }, files: ['consumer.mts'] }),
    );
  });
  afterAll(async () => {
    await fixture?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('type-checks against the published declarations', async () => {
    const tsc = join(packageRoot(), 'node_modules', '.bin', 'tsc');
    await expect(run(tsc, ['-p', join(dir, 'tsconfig.json')], { cwd: dir })).resolves.toBeDefined();
  }, 120_000);

  it('runs an evaluation from a plain ES module', async () => {
    writeFileSync(join(dir, 'consumer.mjs'), CONSUMER.replace(', type ResultsFile', '').replace(': ResultsFile', '').replaceAll(' as string', ''));
    const { stdout } = await run(process.execPath, [join(dir, 'consumer.mjs'), `${fixture.url}/v1/chat/completions`, tempDir(), DATASETS], { cwd: dir });
    expect(Number(stdout.trim())).toBeCloseTo(1 / 3, 12);
  }, 60_000);
});
