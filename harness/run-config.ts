/**
 * The harness run config (nemo-evaluator `run_eval --run_config` format): what to evaluate, against which
 * endpoint, with which parameters. The launcher writes it as `artifacts/run_config.yml`; `evaluate()` takes
 * the same shape. It never contains secrets: the API key is read from the env var named by `api_key_name`.
 */
import { z } from 'zod';

export const ENDPOINT_TYPES = ['chat', 'completions'] as const;
export const EndpointTypeSchema = z.enum(ENDPOINT_TYPES);

/** `config.params`: unknown keys are errors (typos must not be silently ignored). */
export const ParamsSchema = z
  .object({
    /** An integer count, or a fraction of the dataset when in (0, 1). */
    limit_samples: z
      .number()
      .positive()
      .refine((n) => n < 1 || Number.isInteger(n), { error: (issue) => `expected a whole number of samples or a fraction below 1, got ${String(issue.input)}` })
      .nullish(),
    parallelism: z.number().int().min(1).max(4096).nullish(),
    max_new_tokens: z.number().int().positive().nullish(),
    /** The OpenAI-compatible API's range. */
    temperature: z.number().min(0).max(2).nullish(),
    top_p: z.number().gt(0).max(1).nullish(),
    /** Retries after the first attempt of a request (backoff honours Retry-After); 0 turns retries off. */
    max_retries: z.number().int().min(0).nullish(),
    /** Seconds per request attempt. */
    request_timeout: z.number().positive().nullish(),
    /** Task name inside the harness (upstream harnesses use it to pick a variant). */
    task: z.string().nullish(),
    extra: z.record(z.string(), z.unknown()).nullish(),
  })
  .strict();
export type Params = z.infer<typeof ParamsSchema>;

export const ApiEndpointSchema = z
  .object({
    url: z.url({ protocol: /^https?$/ }),
    model_id: z.string().min(1),
    type: EndpointTypeSchema.optional(),
    /** Name of the environment variable holding the API key (never the key itself). */
    api_key_name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name').nullish(),
    stream: z.boolean().nullish(),
    adapter_config: z.record(z.string(), z.unknown()).nullish(),
  })
  .strict();
export type ApiEndpoint = z.infer<typeof ApiEndpointSchema>;

export const HarnessRunConfigSchema = z
  .object({
    config: z
      .object({
        /** Task to run: `gsm8k` or `evalflow.gsm8k`. */
        type: z.string().min(1),
        output_dir: z.string().min(1),
        params: ParamsSchema.default({}),
        supported_endpoint_types: z.array(EndpointTypeSchema).nullish(),
      })
      .strict(),
    target: z.object({ api_endpoint: ApiEndpointSchema }).strict(),
    /** Free-form provenance (launcher config, versions) copied into metadata.yaml. */
    metadata: z.record(z.string(), z.unknown()).nullish(),
  })
  .strict();
export type HarnessRunConfig = z.input<typeof HarnessRunConfigSchema>;
export type ResolvedHarnessRunConfig = z.output<typeof HarnessRunConfigSchema>;
