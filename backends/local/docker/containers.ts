/**
 * evalflow's containers on a Docker engine (dockerode): create-or-adopt by deterministic name, inspect and
 * classify, copy logs, stop, remove, and list/remove everything of an invocation by label. Every method is
 * idempotent and works from the name alone, so any worker can pick up where another left off.
 */
import { rmSync } from 'node:fs';
import type Docker from 'dockerode';
import { SECRETS_FILE_IN_CONTAINER } from '../../../common/env-file.js';
import { containerLogTail, syncContainerLogs } from './logs.js';
import { LABEL, labelFilters, type ContainerIdentity, type ContainerRole } from './names.js';
import { classifyContainer, type ContainerOutcome } from './outcome.js';
import { createOptions, type ContainerSpec } from './spec.js';

export interface LaunchedContainer {
  id: string;
  name: string;
  /** True when the container already existed (a retried launch) and was taken over. */
  adopted: boolean;
}

export interface ContainerSummary {
  id: string;
  name: string;
  state: string;
  identity: ContainerIdentity;
}

const statusOf = (err: unknown): number | undefined => (err as { statusCode?: number }).statusCode;

export class ContainerRuntime {
  constructor(readonly docker: Docker) {}

  /**
   * Starts the container of `spec`, or adopts the one a previous try created under the same name (starting
   * it if that try died between create and start; an exited container is left as it is: its exit is the outcome).
   */
  async createOrAdopt(spec: ContainerSpec): Promise<LaunchedContainer> {
    const options = createOptions(spec);
    const name = options.name as string;
    let adopted = true;
    let info = await this.inspect(name);
    if (!info) {
      try {
        await this.docker.createContainer(options);
        adopted = false;
      } catch (err) {
        if (statusOf(err) !== 409) throw err; // 409: another worker created it meanwhile
      }
      info = await this.inspect(name);
      if (!info) throw new Error(`container ${name} vanished right after it was created`);
    }
    const labels = info.Config.Labels ?? {};
    const expected = options.Labels ?? {};
    for (const key of Object.values(LABEL)) {
      if (labels[key] !== expected[key]) throw new Error(`a container named ${name} exists but is not this job's (label ${key}=${labels[key] ?? '<none>'}, expected ${expected[key]})`);
    }
    if (info.State.Status === 'created') {
      try {
        await this.docker.getContainer(name).start();
      } catch (err) {
        if (statusOf(err) !== 304) throw err; // 304: already started
      }
    }
    return { id: info.Id, name, adopted };
  }

  async inspect(name: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.docker.getContainer(name).inspect();
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  /** The container's state, classified; a failure carries the last lines of its output. */
  async outcome(name: string): Promise<ContainerOutcome> {
    const info = await this.inspect(name);
    if (!info) return classifyContainer(name, undefined);
    const memoryLimited = (info.HostConfig.Memory ?? 0) > 0;
    const first = classifyContainer(name, info.State, { memoryLimited });
    if (first.state !== 'failed') return first;
    const logTail = await containerLogTail(this.docker.getContainer(name)).catch(() => '');
    return classifyContainer(name, info.State, { memoryLimited, logTail });
  }

  /**
   * Until the container's next exit (the engine's wait), or `maxWaitMs`. `next-exit`, not `not-running`: a container
   * created but not yet started is "not running", and would end every wait at once. Never throws: if the engine
   * cannot wait (the container is gone, the engine is away), it waits out `maxWaitMs` and the caller's next inspect tells.
   */
  async untilExited(name: string, maxWaitMs: number): Promise<void> {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), maxWaitMs);
    try {
      await this.docker.getContainer(name).wait({ condition: 'next-exit', abortSignal: timeout.signal });
    } catch {
      if (!timeout.signal.aborted) await new Promise((resolve) => timeout.signal.addEventListener('abort', resolve, { once: true }));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Copies new output of the container to `logFile` (see logs.ts); 0 when the container is gone. */
  async syncLogs(name: string, logFile: string): Promise<number> {
    try {
      return await syncContainerLogs(this.docker.getContainer(name), name, logFile);
    } catch (err) {
      if (statusOf(err) === 404) return 0;
      throw err;
    }
  }

  /** SIGTERM (through the container's init), SIGKILL after `graceS`; true if it was running. */
  async stop(name: string, graceS = 10): Promise<boolean> {
    try {
      await this.docker.getContainer(name).stop({ t: graceS });
      return true;
    } catch (err) {
      if (statusOf(err) === 304 || statusOf(err) === 404) return false;
      throw err;
    }
  }

  /**
   * Removes the container (killing it if it still runs) and the secrets file mounted into it; true if
   * there was a container.
   */
  async remove(name: string): Promise<boolean> {
    const info = await this.inspect(name);
    if (!info) return false;
    try {
      await this.docker.getContainer(name).remove({ force: true, v: true });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    const secrets = info.Mounts.find((m) => m.Destination === SECRETS_FILE_IN_CONTAINER);
    if (secrets?.Source) rmSync(secrets.Source, { force: true });
    return true;
  }

  /** Containers of an invocation (or of one job or role of it), running or not. */
  async list(scope: { invocationId: string; jobId?: string; role?: ContainerRole }): Promise<ContainerSummary[]> {
    const found = await this.docker.listContainers({ all: true, filters: labelFilters(scope) });
    return found
      .map((c) => ({
        id: c.Id,
        name: (c.Names[0] ?? c.Id).replace(/^\//, ''),
        state: c.State,
        identity: {
          invocationId: c.Labels[LABEL.invocation] ?? '',
          jobId: c.Labels[LABEL.job] ?? '',
          attempt: Number(c.Labels[LABEL.attempt]),
          role: c.Labels[LABEL.role] === 'server' ? ('server' as const) : ('harness' as const),
        },
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Stops and removes every container of the scope, harnesses before servers; returns their names. */
  async removeAll(scope: { invocationId: string; jobId?: string }, graceS = 10): Promise<string[]> {
    const containers = await this.list(scope);
    for (const role of ['harness', 'server'] as const) {
      const group = containers.filter((c) => c.identity.role === role);
      await Promise.all(group.map(async (c) => (await this.stop(c.name, graceS), await this.remove(c.name))));
    }
    return containers.map((c) => c.name);
  }
}
