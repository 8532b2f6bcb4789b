import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // model loading and worker processes are heavy on a 2-core machine: one file at a time per core
    maxWorkers: 2,
    fileParallelism: true,
  },
});
