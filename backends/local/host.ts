/**
 * The identity of the host a local executor runs things on: hostname, boot and PID namespace. Pids and
 * containers mean something only there, so handles carry it and the worker on that host serves them.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

export interface HostIdentity {
  /** `<hostname>-<8 hex>`: stable for the host's uptime and PID namespace, usable in a task queue name. */
  id: string;
  hostname: string;
}

export function localHostIdentity(): HostIdentity {
  const name = hostname();
  const read = (fn: () => string) => {
    try {
      return fn();
    } catch {
      return '';
    }
  };
  const boot = read(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
  const pidNamespace = read(() => readlinkSync('/proc/self/ns/pid'));
  const digest = createHash('sha256').update(`${name}\0${boot}\0${pidNamespace}`).digest('hex').slice(0, 8);
  return { id: `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}-${digest}`, hostname: name };
}
