import { configDefaults, defineConfig } from 'vitest/config';

// The fault suite (`*.faults.test.ts`: workers killed, Redis restarted, threads crashing; tens of
// seconds each, timing-sensitive) is left out of a plain run. LAYERTAP_FAULTS=only runs just
// those files, one at a time (`npm run test:faults`); LAYERTAP_FAULTS=1 runs everything.
const faults = process.env.LAYERTAP_FAULTS;
const FAULT_FILES = 'test/**/*.faults.test.ts';

export default defineConfig({
  test: {
    include: faults === 'only' ? [FAULT_FILES] : ['test/**/*.test.ts'],
    exclude: faults ? configDefaults.exclude : [...configDefaults.exclude, FAULT_FILES],
    // REDIS_URL, else 127.0.0.1:6379 if it answers, else a private redis-server for the run
    globalSetup: ['test/helpers/redis-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // model loading and worker processes are heavy on a 2-core machine: one file at a time per core
    maxWorkers: 2,
    // fault tests start several processes each and measure recovery times: alone, they measure the code, not the neighbours
    fileParallelism: faults !== 'only',
  },
});
