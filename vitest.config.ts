import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // tfjs backends are process-global state; one fork per file keeps them apart,
    // and two forks use both cores.
    pool: 'forks',
    // Two forks already use both cores; XNNPACK or onnxruntime threads inside each would only contend (the
    // threaded build has its own tests, in child processes: tests/backend/wasm_threads.test.ts).
    env: { ADVKIT_WASM_THREADS: '1', ADVKIT_ORT_THREADS: '1' },
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
