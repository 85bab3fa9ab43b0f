/**
 * A container's state → what happened to the process in it. Pure. Docker's `OOMKilled` flag is trusted
 * when set; Podman never sets it, so exit 137 under a memory limit counts as an OOM kill there too
 * (`memoryLimited`). 137/143 otherwise mean SIGKILL/SIGTERM from outside (docker stop/kill, a restart of
 * the engine); whether that was a cancel or a loss is for the caller, who knows if it asked for a stop.
 */
export type ContainerOutcome =
  | { state: 'created' }
  | { state: 'running' }
  | { state: 'succeeded' }
  | { state: 'oomKilled'; exitCode: number; reason: string }
  | { state: 'signalled'; signal: 'SIGKILL' | 'SIGTERM'; exitCode: number; reason: string }
  | { state: 'failed'; exitCode: number; reason: string }
  /** No such container: removed, or never created. */
  | { state: 'missing' };

/** The fields of `docker inspect`'s State this needs. */
export interface ContainerStateInfo {
  Status: string;
  ExitCode: number;
  OOMKilled: boolean;
  Error?: string;
}

const SIGNAL_EXITS: Record<number, 'SIGKILL' | 'SIGTERM'> = { 137: 'SIGKILL', 143: 'SIGTERM' };

export function classifyContainer(
  name: string,
  state: ContainerStateInfo | undefined,
  opts: { memoryLimited?: boolean; logTail?: string } = {},
): ContainerOutcome {
  if (!state) return { state: 'missing' };
  switch (state.Status) {
    case 'created':
      return { state: 'created' };
    case 'running':
    case 'paused':
    case 'restarting':
      return { state: 'running' };
  }
  const code = state.ExitCode;
  const tail = opts.logTail?.trim() ? `; last output:\n${opts.logTail.trimEnd()}` : '';
  if (state.OOMKilled || (code === 137 && opts.memoryLimited)) {
    return { state: 'oomKilled', exitCode: code, reason: `container ${name} was killed for exceeding its memory limit (exit ${code})` };
  }
  if (code === 0 && !state.Error) return { state: 'succeeded' };
  const signal = SIGNAL_EXITS[code];
  if (signal) return { state: 'signalled', signal, exitCode: code, reason: `container ${name} ended by ${signal} (exit ${code})` };
  const error = state.Error ? ` (${state.Error})` : '';
  return { state: 'failed', exitCode: code, reason: `container ${name} exited with code ${code}${error}${tail}` };
}
