import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Native suites run in child processes: a crash or a leaked native thread
    // stays in its fork, and worker_threads tests get a real main thread.
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
