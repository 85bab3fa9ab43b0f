/**
 * The built-in harness's side of the stage files (`logs/stage.running`, `logs/stage.exit`; format in
 * core/harness-contract.ts). `stage.exit` must appear even when the disk is full, the very failure it may have to
 * report: the space is reserved at start (a file of RESERVED_BYTES), overwritten in place at exit and renamed into
 * place, which needs no free blocks.
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/files.js';
import { formatStageExit, STAGE_FILES, type StageFailure } from '../core/harness-contract.js';
import { writeFully } from './lines.js';

const RESERVED_BYTES = 8192;

export class StageFiles {
  private readonly reserved: string | undefined;

  constructor(private readonly dir: string | undefined) {
    if (!dir) return;
    mkdirSync(dir, { recursive: true });
    // Reservations left by harnesses that died before their exit.
    for (const name of readdirSync(dir)) if (/^\.stage\.exit\.\d+\.reserved$/.test(name)) rmSync(join(dir, name), { force: true });
    const reserved = join(dir, `.stage.exit.${process.pid}.reserved`);
    try {
      const fd = openSync(reserved, 'w');
      try {
        writeFully(fd, Buffer.alloc(RESERVED_BYTES, 0x20));
      } finally {
        closeSync(fd);
      }
      this.reserved = reserved;
    } catch {
      rmSync(reserved, { force: true });
      // No room even now: exit() falls back to an ordinary write.
    }
  }

  running(): void {
    if (this.dir) writeFileAtomic(join(this.dir, STAGE_FILES.running), `${new Date().toISOString()} ${process.pid}\n`);
  }

  /** Writes `stage.exit` (into the reserved space when there is one). Never throws: the exit code is returned anyway. */
  exit(exitCode: number, failure?: StageFailure): void {
    if (!this.dir) return;
    const text = formatStageExit(new Date(), exitCode, failure);
    const target = join(this.dir, STAGE_FILES.exit);
    try {
      if (this.reserved) {
        const data = Buffer.from(text);
        const fd = openSync(this.reserved, 'r+');
        try {
          writeFully(fd, data);
          ftruncateSync(fd, data.length);
        } finally {
          closeSync(fd);
        }
        renameSync(this.reserved, target);
      } else {
        writeFileAtomic(target, text);
      }
    } catch (err) {
      process.stderr.write(`run_eval: could not write ${target}: ${(err as Error).message}\n`);
    }
  }
}
