/**
 * The harness program: `node dist/harness/cli.js run_eval --run_config FILE …` (the library is command.ts). The build
 * bundles it with its dependencies into that one file (scripts/bundle-harness.ts), so a run starts without
 * resolving and loading hundreds of modules.
 */
import { harnessMain, tuneHarnessProcess } from './command.js';

tuneHarnessProcess();
process.exitCode = await harnessMain(process.argv.slice(2));
