/**
 * The `deployment:` group: a model server the launcher starts for each task, with upstream's keys and
 * defaults (config/defaults/deployment/<type>.yaml: none, vllm, sglang, nim, trtllm, generic) plus evalflow's
 * own `llama_cpp` (the CPU model server of model-server/). Strict per type: a key another type has is an
 * unknown key here. With a deployment, each task's endpoint is derived from it as upstream does:
 * `http://127.0.0.1:<port><endpoints[chat|completions]>`, the model id is `served_model_name`.
 */
import { z } from 'zod';
import { shellSplit } from '../common/shell.js';
import { EnvVarsSchema } from './env.js';

/** Image references end up on command lines: allow only what they need (DESIGN §3.8). */
export const ImageRefSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$/, 'must be a container image reference');
const Image = ImageRefSchema;
const Port = z.number().int().min(1).max(65535);
const UrlPath = z.string().regex(/^\/[^\s?#]*$/, 'must be a URL path like /v1/chat/completions');
const HostPath = z.string().startsWith('/', 'must be an absolute path');
const EnvVars = EnvVarsSchema;
/** The server command, run without a shell (as upstream's launcher passes it to `docker run`): split into words here. */
const Command = z.string().superRefine((value, ctx) => {
  try {
    if (shellSplit(value).length === 0) ctx.addIssue({ code: 'custom', message: 'must not be empty' });
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `${(err as Error).message}; evalflow runs the server command without a shell (write \`bash -c '…'\` for a script)` });
  }
});
const Parallelism = z.number().int().min(1);

const endpoints = (extra: Record<string, z.ZodType> = {}) =>
  z.object({ chat: UrlPath, completions: UrlPath, health: UrlPath, ...extra }).strict();

/** Keys every upstream server type has. */
const server = {
  image: Image,
  served_model_name: z.string().min(1),
  port: Port.default(8000),
  command: Command,
  env_vars: EnvVars.default({}),
  /** Mounted read-write at /cache in the server container (upstream). */
  cache_path: HostPath.nullish(),
};

const NoneSchema = z.object({ type: z.literal('none') }).strict();

const VllmSchema = z
  .object({
    type: z.literal('vllm'),
    ...server,
    /** Mounted read-only at /checkpoint; null when the model comes from `hf_model_handle`. */
    checkpoint_path: HostPath.nullable(),
    hf_model_handle: z.string().min(1).nullish(),
    tensor_parallel_size: Parallelism,
    pipeline_parallel_size: Parallelism,
    data_parallel_size: Parallelism,
    gpu_memory_utilization: z.number().gt(0).max(1),
    extra_args: z.string(),
    endpoints: endpoints({ embedding: UrlPath.optional(), ranking: UrlPath.optional() }),
    /** Upstream composes `command` from it (`command: ${deployment.base_command}`). */
    base_command: z.string(),
  })
  .strict();

const SglangSchema = z
  .object({
    type: z.literal('sglang'),
    ...server,
    checkpoint_path: HostPath.nullable(),
    hf_model_handle: z.string().min(1).nullish(),
    tensor_parallel_size: Parallelism,
    pipeline_parallel_size: Parallelism,
    data_parallel_size: Parallelism,
    extra_args: z.string(),
    endpoints: endpoints(),
  })
  .strict();

const NimSchema = z
  .object({
    type: z.literal('nim'),
    ...server,
    endpoints: endpoints({ embedding: UrlPath.optional(), ranking: UrlPath.optional() }),
  })
  .strict();

const TrtllmSchema = z
  .object({
    type: z.literal('trtllm'),
    ...server,
    checkpoint_path: HostPath.nullable(),
    tensor_parallel_size: Parallelism,
    pipeline_parallel_size: Parallelism,
    extra_args: z.string(),
    endpoints: endpoints(),
  })
  .strict();

const GenericSchema = z
  .object({
    type: z.literal('generic'),
    ...server,
    checkpoint_path: HostPath.nullish(),
    extra_args: z.string(),
    endpoints: endpoints(),
  })
  .strict();

/** Ours: the CPU model server (node-llama-cpp) as a container (runtime docker) or a host process (runtime process). */
const LlamaCppSchema = z
  .object({
    type: z.literal('llama_cpp'),
    /** null: evalflow's model-server image, built from this installation (`npm run images`). */
    image: Image.nullable(),
    /** A GGUF file on the worker host; null: SmolLM2-135M-Instruct Q4_1, fetched once into .tools/models. */
    model_path: HostPath.nullable(),
    served_model_name: z.string().min(1),
    port: Port,
    /** Requests decoded at once; more wait in the server's queue. */
    parallel: Parallelism,
    env_vars: EnvVars.default({}),
    endpoints: endpoints(),
  })
  .strict();

export const DeploymentSchema = z.discriminatedUnion('type', [NoneSchema, VllmSchema, SglangSchema, NimSchema, TrtllmSchema, GenericSchema, LlamaCppSchema]);
export type Deployment = z.infer<typeof DeploymentSchema>;
export type ServerDeployment = Exclude<Deployment, { type: 'none' }>;

/** Types whose server runs from a container image (all but llama_cpp, which can also run as a process). */
export function needsContainer(deployment: ServerDeployment): boolean {
  return deployment.type !== 'llama_cpp';
}

/** Where a task reaches a deployed server: upstream's `http://127.0.0.1:<port><endpoints[type]>`. */
export function deploymentEndpointUrl(deployment: ServerDeployment, endpointType: 'chat' | 'completions'): string {
  return `http://127.0.0.1:${deployment.port}${deployment.endpoints[endpointType]}`;
}

export function deploymentHealthUrl(deployment: ServerDeployment): string {
  return `http://127.0.0.1:${deployment.port}${deployment.endpoints.health}`;
}
