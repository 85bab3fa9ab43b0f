/**
 * The harness program: `node dist/harness/cli.js run_eval --run_config FILE …` (the library is command.ts). The build
 * bundles it with its dependencies into that one file (scripts/bundle-harness.ts), so a run starts without
 * resolving and loading hundreds of modules.
 */
import { setFlagsFromString } from 'node:v8';
import { harnessMain } from './command.js';

// undici parses HTTP with llhttp compiled to WebAssembly; V8's optimising compiler spends ~0.15 s of CPU on it in a
// run of any size, more than its faster code saves even over 10,000 responses (bench/). Baseline code (Liftoff)
// only. Set here, in the program, never in the library: V8 flags are process-wide. llhttp is compiled at the first
// connection, after this line.
setFlagsFromString('--liftoff-only');

process.exitCode = await harnessMain(process.argv.slice(2));
