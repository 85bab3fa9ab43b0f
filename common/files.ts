/** Small file helpers shared by the harness, the launcher and the exporters. */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { stringify } from 'yaml';

/** Writes via a temp file + rename so readers never see a half-written file. */
export function writeFileAtomic(file: string, content: string | Buffer, mode?: number): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content, mode === undefined ? undefined : { mode });
  renameSync(tmp, file);
}

export function writeYamlAtomic(file: string, data: unknown): void {
  writeFileAtomic(file, stringify(data, { lineWidth: 0, aliasDuplicateObjects: false }));
}

export function writeJsonAtomic(file: string, data: unknown): void {
  writeFileAtomic(file, `${JSON.stringify(data, null, 2)}\n`);
}
