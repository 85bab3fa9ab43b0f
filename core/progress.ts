/** How far a harness is: samples done of total, of which answered from the cache or failed. */
import { z } from 'zod';

export const ProgressSchema = z.object({
  total: z.number().int().nonnegative(),
  done: z.number().int().nonnegative(),
  cached: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
});
export type Progress = z.infer<typeof ProgressSchema>;
