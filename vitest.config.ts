import { defineConfig } from 'vitest/config';
import { SlowestFirst } from './test/harness/sequencer.js';

/**
 * Two projects: `unit` (test/unit/: no server, no network; `npm run test:unit`, the inner loop) and
 * `integration` (everything else: real Mosquitto, InfluxDB, VictoriaMetrics, Chromium and a Docker
 * engine). `npm test` runs both. Test files run two at a time (a 2-core machine); nothing in one
 * depends on another: each starts its own servers on ports of its worker's own range
 * (test/harness/process.ts), and what a test leaves on a shared server is cleared after it
 * (test/harness/setup.ts).
 */
export default defineConfig({
  test: {
    globalSetup: ['test/harness/global-setup.ts'],
    setupFiles: ['test/harness/setup.ts'],
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
    sequence: { sequencer: SlowestFirst },
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'integration', include: ['test/**/*.test.ts'], exclude: ['test/unit/**'] } },
    ],
  },
});
