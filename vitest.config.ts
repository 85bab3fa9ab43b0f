import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Integration suites share one Temporal dev server and spawn real processes; on 2 cores,
    // running files in parallel only adds contention and flakiness.
    fileParallelism: false,
    pool: 'forks',
  },
});
