/**
 * vitest globalSetup: every temp dir of one run under one root (TMPDIR for the workers, which
 * inherit it), removed when the run ends. The servers' dirs, the CLI's queues and the Docker
 * engine's trees would otherwise stay in /tmp, a few hundred per run.
 */
import { chmodSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => Promise<void> {
  // Each vitest project runs its global setup: the first one makes the root.
  if (process.env['HOSTPULSE_TEST_TMPDIR']) return () => Promise.resolve();
  const root = mkdtempSync(join(tmpdir(), 'hostpulse-tests-'));
  // Traversable by the servers that drop root (Mosquitto runs as its own user).
  chmodSync(root, 0o755);
  process.env['TMPDIR'] = root;
  process.env['HOSTPULSE_TEST_TMPDIR'] = root;
  return () => rm(root, { recursive: true, force: true, maxRetries: 3 });
}
