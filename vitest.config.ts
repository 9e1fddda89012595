import { defineConfig } from 'vitest/config';

// unit: pure functions and fakes, no privileges needed.
// integration: the real kube-apiserver (started once per run by test/setup/global.ts),
// real gobgpd / FRR / kernel routes in network namespaces prefixed "pf-".
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 10_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          globalSetup: ['test/setup/global.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // Namespaces, daemons and the shared apiserver: keep files from trampling each other on 2 cores.
          fileParallelism: false,
        },
      },
    ],
  },
});
