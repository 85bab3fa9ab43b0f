/**
 * Deterministic container identity: the same (invocation, job, attempt, role) always gives the same name and
 * labels, so a retried launch finds its container instead of creating a second one, and everything of an
 * invocation can be listed (and removed) by label.
 */
import { launchName } from '../../../core/ids.js';

export type ContainerRole = 'harness' | 'server';

export interface ContainerIdentity {
  /** 16-hex invocation id. */
  invocationId: string;
  /** `<inv>.<n>`; for a server shared by the whole invocation, the invocation id. */
  jobId: string;
  attempt: number;
  role: ContainerRole;
}

export const LABEL = {
  invocation: 'evalflow.invocation',
  job: 'evalflow.job',
  attempt: 'evalflow.attempt',
  role: 'evalflow.role',
} as const;

const ID_RE = /^[0-9a-f]{16}(\.\d+)?$/;

/**
 * The launch's name (`evalflow-<jobId>-a<attempt>`, as every executor names it), `-server` appended for a
 * model server; within Docker's name alphabet `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
 */
export function containerName(id: ContainerIdentity): string {
  if (!ID_RE.test(id.invocationId) || !ID_RE.test(id.jobId) || !id.jobId.startsWith(id.invocationId)) {
    throw new Error(`invalid container identity: invocation ${JSON.stringify(id.invocationId)}, job ${JSON.stringify(id.jobId)}`);
  }
  if (!Number.isInteger(id.attempt) || id.attempt < 0) throw new Error(`invalid attempt ${id.attempt}`);
  const name = launchName(id.jobId, id.attempt);
  return id.role === 'server' ? `${name}-server` : name;
}

export function containerLabels(id: ContainerIdentity): Record<string, string> {
  return {
    [LABEL.invocation]: id.invocationId,
    [LABEL.job]: id.jobId,
    [LABEL.attempt]: String(id.attempt),
    [LABEL.role]: id.role,
  };
}

/** Docker `filters` for the containers of an invocation (optionally one job or one role of it). */
export function labelFilters(scope: { invocationId: string; jobId?: string; role?: ContainerRole }): { label: string[] } {
  return {
    label: [
      `${LABEL.invocation}=${scope.invocationId}`,
      ...(scope.jobId ? [`${LABEL.job}=${scope.jobId}`] : []),
      ...(scope.role ? [`${LABEL.role}=${scope.role}`] : []),
    ],
  };
}
