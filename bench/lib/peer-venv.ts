/**
 * The bench-only Python venv with the peers (lm-eval, Inspect AI) at pinned versions, under .tools/
 * (never in CI, never committed). Installed from PyPI with pip on first use.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { toolsDir } from '../../scripts/temporal-dev-server.js';
import { print } from './format.js';

/** The versions DESIGN.md §6 describes (lm-eval's local-chat-completions, Inspect's openai-api provider). */
export const PEER_PACKAGES = ['lm-eval[api]==0.4.13', 'inspect-ai==0.3.285', 'openai'];

export interface PeerVenv {
  dir: string;
  python: string;
  lmEval: string;
  inspect: string;
  versions: { lmEval: string; inspectAi: string; openai: string; python: string };
}

function installedVersions(python: string): PeerVenv['versions'] | null {
  const script = "import importlib.metadata as m, platform; print(m.version('lm-eval'), m.version('inspect-ai'), m.version('openai'), platform.python_version())";
  const r = spawnSync(python, ['-c', script], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const [lmEval, inspectAi, openai, py] = r.stdout.trim().split(/\s+/);
  return lmEval && inspectAi && openai && py ? { lmEval, inspectAi, openai, python: py } : null;
}

function pinnedVersion(spec: string): string | undefined {
  return spec.split('==')[1];
}

/** The venv (default `.tools/peers-venv`), installing or upgrading the pinned packages unless `install` is false. */
export function peerVenv(opts: { dir?: string; install: boolean }): PeerVenv {
  const dir = opts.dir ?? join(toolsDir(), 'peers-venv');
  const python = join(dir, 'bin', 'python');
  const want = { lmEval: pinnedVersion(PEER_PACKAGES[0] as string), inspectAi: pinnedVersion(PEER_PACKAGES[1] as string) };
  let versions = existsSync(python) ? installedVersions(python) : null;
  if (versions === null || versions.lmEval !== want.lmEval || versions.inspectAi !== want.inspectAi) {
    if (!opts.install) throw new Error(`${dir} lacks ${PEER_PACKAGES.join(' ')} (run without --no-install to install them from PyPI)`);
    print(`installing ${PEER_PACKAGES.join(' ')} into ${dir} (once; a few minutes)`);
    mkdirSync(dir, { recursive: true });
    if (!existsSync(python)) run(process.env.PYTHON || 'python3', ['-m', 'venv', dir]);
    run(join(dir, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', ...PEER_PACKAGES]);
    versions = installedVersions(python);
    if (versions === null) throw new Error(`installed ${PEER_PACKAGES.join(' ')}, but ${python} cannot read their versions`);
  }
  return { dir, python, lmEval: join(dir, 'bin', 'lm_eval'), inspect: join(dir, 'bin', 'inspect'), versions };
}

function run(cmd: string, args: string[]): void {
  const res = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${res.status ?? res.signal})`);
}
