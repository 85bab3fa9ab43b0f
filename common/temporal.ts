/** Connecting to Temporal, shared by the CLI, the worker and the client script. */
import { Client, Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { TASK_QUEUE } from '../core/ids.js';
import { SEARCH_ATTRIBUTES } from '../core/search-attributes.js';
import { dataConverterFromEnv } from './codec.js';

export interface TemporalTarget {
  address: string;
  namespace: string;
}

/** TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE, as the Temporal CLI reads them. */
export function temporalTarget(env: Record<string, string | undefined> = process.env): TemporalTarget {
  return { address: env.TEMPORAL_ADDRESS || '127.0.0.1:7233', namespace: env.TEMPORAL_NAMESPACE || 'default' };
}

export class TemporalUnavailableError extends Error {
  override name = 'TemporalUnavailableError';
}

/** A client with evalflow's data converter (encrypting when EVALFLOW_CODEC_KEY_FILE is set). */
export async function connectClient(target: TemporalTarget = temporalTarget()): Promise<Client> {
  // The key file is checked first: a bad one is bad input, whether or not the server is up.
  const dataConverter = dataConverterFromEnv();
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: target.address, connectTimeout: '5 seconds' });
  } catch (err) {
    throw new TemporalUnavailableError(
      `cannot reach the Temporal server at ${target.address} (${(err as Error).message}). Start one with ` +
        '`npx evalflow server start-dev`, or set TEMPORAL_ADDRESS.',
    );
  }
  return new Client({ connection, namespace: target.namespace, dataConverter });
}

/** Registers evalflow's search attributes on the namespace if missing (the dev server gets them as flags). */
export async function ensureSearchAttributes(client: Client, namespace: string): Promise<void> {
  const { customAttributes } = await client.connection.operatorService.listSearchAttributes({ namespace });
  const missing = Object.values(SEARCH_ATTRIBUTES)
    .map((key) => key.name)
    .filter((name) => !(customAttributes && name in customAttributes));
  if (missing.length === 0) return;
  const keyword = proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
  await client.connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((name) => [name, keyword])),
  });
}

/** `--search-attribute` flags for `temporal server start-dev`. */
export function devServerSearchAttributeFlags(): string[] {
  return Object.values(SEARCH_ATTRIBUTES).flatMap((key) => ['--search-attribute', `${key.name}=Keyword`]);
}

/** Whether a worker has polled the evalflow workflow task queue in the last minute. */
export async function workerIsPolling(client: Client, namespace: string): Promise<boolean> {
  const res = await client.workflowService.describeTaskQueue({
    namespace,
    taskQueue: { name: TASK_QUEUE },
    taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  return (res.pollers ?? []).some((p) => (p.lastAccessTime?.seconds?.toNumber() ?? 0) * 1000 > Date.now() - 60_000);
}
