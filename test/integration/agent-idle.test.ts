/**
 * An idle agent sleeps between rounds: nothing polls. Seen as a user would see it with strace (or
 * powertop): the times the agent's main thread wakes from its event loop's wait, per round, over
 * whole rounds at a 5 s interval. A round itself wakes it a few times (its timer, the answers of the
 * file reads done off the main thread, the broker's acknowledgements), and between rounds the
 * queue's fsync (once per round) and MQTT.js's keepalive timer. A timer polling every second (as the
 * outbox and the queue's fsync did) adds 5 per round each.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../harness/cli.js';
import { capture, waitFor } from '../harness/mqtt.js';
import { tempDir } from '../harness/process.js';
import { useBroker } from '../harness/servers.js';

const hasStrace = ((): boolean => {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** Blocking waits of thread `pid`'s event loop (epoll with a timeout other than 0) during `seconds`, traced by strace. */
async function loopWakeups(pid: number, seconds: number): Promise<number> {
  const file = join(await tempDir('idle-strace'), 'trace');
  const tracer = spawn('strace', ['-tt', '-e', 'trace=epoll_pwait,epoll_wait', '-o', file, '-p', String(pid)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  tracer.kill('SIGINT');
  await new Promise((r) => tracer.once('exit', r));
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => /^([\d:.]+ )?epoll_p?wait\(/.test(l) && !/, 0(, NULL, 8)?\) = /.test(l)).length;
}

describe('an idle agent', () => {
  const servers = useBroker();

  it.skipIf(!hasStrace)(
    'wakes a few times per round, not every second (strace of the event loop over whole rounds)',
    async () => {
      const seen = await capture(servers.broker.url, 'sensors/idle-pc/uptime');
      const agent = runCli(['agent'], { MQTT_URL: servers.broker.url, SENSORS_HOST: 'idle-pc', SAMPLE_INTERVAL: '5s' });
      // Past start-up (discovery's settling, V8's first clean-ups): 4 rounds.
      await waitFor('4 rounds', () => (seen.messages.length >= 4 ? true : undefined), 60_000);
      const before = seen.messages.length;
      const wakeups = await loopWakeups(agent.child.pid as number, 20);
      const rounds = seen.messages.length - before;
      expect(rounds).toBeGreaterThanOrEqual(3);
      // 3 to 4 per round here; with the one-second polls it was 16.
      expect(wakeups / rounds).toBeLessThanOrEqual(6);
      expect(await agent.stop()).toBe(0);
      await seen.close();
    },
    90_000,
  );
});
