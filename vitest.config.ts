import { defineConfig } from 'vitest/config';

// Tests import each package through its public entry (`@bulwark/<name>`). The
// `bulwark-source` export condition points that entry at src/, so the suite runs
// from source without a prior build.
export default defineConfig({
  resolve: { conditions: ['bulwark-source'] },
  ssr: { resolve: { conditions: ['bulwark-source'], externalConditions: ['bulwark-source'] } },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    testTimeout: 20_000,
    hookTimeout: 30_000,
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
    fakeTimers: { toFake: [] },
    // A test that asserts nothing fails, rather than passing by default.
    expect: { requireAssertions: true },
  },
});
