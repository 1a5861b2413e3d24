/**
 * Memory bounds (issue 12): what a client can make `hostpulse up` (and the bridge, which serves
 * the same code) hold for it. Each scenario runs the built CLI and reads what a user sees: GET
 * /metrics, the log, the live view's stream. Memory itself is measured by the bench
 * (`BENCH_STAGES=live-slow-clients npm run bench`), not here.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Socket } from 'node:net';
import { parsePrometheus } from '../harness/bridge.js';
import { runCli, stopAllCli } from '../harness/cli.js';
import { slowStreamClient, sparklineFleet, streamReader } from '../harness/live.js';
import { connect, waitFor } from '../harness/mqtt.js';
import { freePort } from '../harness/process.js';

afterAll(() => stopAllCli());

describe('live view clients that never read', () => {
  it('are disconnected once far behind and counted on /metrics, while a client that reads keeps its updates', async () => {
    const [mqttPort, httpPort] = [await freePort(), await freePort()];
    const up = runCli(['up'], { MQTT_PORT: String(mqttPort), MQTT_WS_PORT: '0', HTTP_PORT: String(httpPort), LOCAL_AGENT: 'false', QUEUE_DIR: 'off' });
    await waitFor('hostpulse up', () => (up.stderr().includes('hostpulse is up.') ? true : undefined), 20_000);
    const publisher = connect(`mqtt://127.0.0.1:${mqttPort}`);
    await publisher.waitConnected(5000);
    const metrics = async (): Promise<ReadonlyMap<string, number>> => parsePrometheus(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
    const reader = streamReader(`http://127.0.0.1:${httpPort}/api/stream`);
    const slow: Socket[] = [];
    let publishing = true;
    try {
      // 20 hosts with full sparklines: every update carries ~300 KB, a round a second.
      const fleet = await sparklineFleet(
        publisher,
        Array.from({ length: 20 }, (_, i) => `mem-${i}`),
      );
      const rounds = (async () => {
        while (publishing) {
          await fleet.round();
          await new Promise((r) => setTimeout(r, 1000));
        }
      })();
      for (let i = 0; i < 20; i++) slow.push(slowStreamClient(httpPort));
      await waitFor('the streams open', async () => ((await metrics()).get('hostpulse_bridge_live_streams') === 21 ? true : undefined));
      // Each falls more than 1 MiB behind within seconds; unbounded, they would be held for ever.
      await waitFor(
        'the slow clients disconnected',
        async () => ((await metrics()).get('hostpulse_bridge_live_dropped_total{reason="slow_client"}') === 20 ? true : undefined),
        60_000,
      );
      const m = await metrics();
      expect(m.get('hostpulse_bridge_live_streams')).toBe(1);
      expect(m.get('hostpulse_bridge_live_dropped_total{reason="memory_bound"}')).toBe(0);
      // Logged without flooding: one line for the 20 (the rest are counted in the next one).
      const logged = up.logs().filter((l) => l.msg.startsWith('live view client disconnected'));
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({ reason: 'slow_client' });
      // The reader was not disconnected and still gets every round.
      const seen = reader.updates();
      await waitFor('updates after the drops', () => (reader.updates() >= seen + 3 ? true : undefined), 20_000);
      expect(reader.ended()).toBe(false);
      publishing = false;
      await rounds;
    } finally {
      publishing = false;
      reader.close();
      for (const s of slow) s.destroy();
      await publisher.close(true);
    }
    expect(await up.stop()).toBe(0);
  }, 120_000);
});
