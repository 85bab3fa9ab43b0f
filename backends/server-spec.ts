/**
 * A model server to start for a job: the workflow input's `task.deployment` (opaque to the workflow, validated
 * by the executor that deploys it), planned from the `deployment:` group as upstream's launcher plans its server
 * container. Pure: the planner builds it, executors read it back.
 */
import { z } from 'zod';
import { shellSplit } from '../common/shell.js';
import { deploymentHealthUrl, type ServerDeployment } from '../config/deployment.js';
import type { EnvRef } from '../config/env.js';
import { EnvRefsSchema } from '../core/env-refs.js';

/** Where the llama_cpp server container finds its model (the model-server image's convention). */
export const MODEL_IN_CONTAINER = '/model/model.gguf';

const MountSchema = z.object({ source: z.string().startsWith('/'), target: z.string().startsWith('/'), readOnly: z.boolean() }).strict();
export type ServerMount = z.infer<typeof MountSchema>;

const common = {
  port: z.number().int().min(1).max(65535),
  /** Answers 200 once the server is ready (upstream polls it with curl). */
  healthUrl: z.string().regex(/^http:\/\/\S+$/),
  servedModelName: z.string().min(1),
  /** `deployment.env_vars` over the top-level `env_vars` (upstream's order), resolved at deploy time. */
  env: EnvRefsSchema,
};

export const ContainerServerSpecSchema = z
  .object({
    type: z.enum(['vllm', 'sglang', 'nim', 'trtllm', 'generic']),
    image: z.string().min(1),
    /** The server command as words, run with the image's entrypoint reset (upstream: `docker run --entrypoint ''`). */
    argv: z.array(z.string()).min(1),
    /** checkpoint_path at /checkpoint (read-only), cache_path at /cache, execution.mounts.deployment. */
    mounts: z.array(MountSchema),
    ...common,
  })
  .strict();

export const LlamaCppServerSpecSchema = z
  .object({
    type: z.literal('llama_cpp'),
    /** Absent: evalflow's model-server image (runtime docker). */
    image: z.string().min(1).optional(),
    /** A GGUF on the worker host; absent: the default tiny model, fetched once where the server starts. */
    modelPath: z.string().startsWith('/').optional(),
    parallel: z.number().int().min(1),
    ...common,
  })
  .strict();

export const ServerSpecSchema = z.discriminatedUnion('type', [ContainerServerSpecSchema, LlamaCppServerSpecSchema]);
export type ServerSpec = z.infer<typeof ServerSpecSchema>;
export type LlamaCppServerSpec = z.infer<typeof LlamaCppServerSpecSchema>;

/**
 * The job's server from the resolved `deployment:` group. `mounts` are `execution.mounts.deployment`
 * (host path → container path, `:ro` allowed); `env` the refs of top-level and deployment env_vars.
 */
export function planServer(deployment: ServerDeployment, mounts: Record<string, string>, env: Record<string, EnvRef>): ServerSpec {
  const base = { port: deployment.port, healthUrl: deploymentHealthUrl(deployment), servedModelName: deployment.served_model_name, env };
  if (deployment.type === 'llama_cpp') {
    return {
      type: 'llama_cpp',
      ...(deployment.image ? { image: deployment.image } : {}),
      ...(deployment.model_path ? { modelPath: deployment.model_path } : {}),
      parallel: deployment.parallel,
      ...base,
    };
  }
  const checkpoint = 'checkpoint_path' in deployment ? deployment.checkpoint_path : undefined;
  return {
    type: deployment.type,
    image: deployment.image,
    argv: shellSplit(deployment.command),
    mounts: [
      ...(checkpoint ? [{ source: checkpoint, target: '/checkpoint', readOnly: true }] : []),
      ...(deployment.cache_path ? [{ source: deployment.cache_path, target: '/cache', readOnly: false }] : []),
      ...Object.entries(mounts).map(([source, target]) => ({ source, target: target.replace(/:(ro|rw)$/, ''), readOnly: target.endsWith(':ro') })),
    ],
    ...base,
  };
}

/** The model server's arguments (process runtime: after `node model-server/main.js`; docker: after the image's entrypoint). */
export function llamaCppArgs(spec: LlamaCppServerSpec, modelPath: string): string[] {
  return ['--host', '127.0.0.1', '--port', String(spec.port), '--model', modelPath, '--model-id', spec.servedModelName, '--parallel', String(spec.parallel)];
}
