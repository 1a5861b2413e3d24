/**
 * Live view clients that never read (issue 12, item 2): `hostpulse up` (its own broker, no
 * InfluxDB, no local agent) with LIVE_HOSTS hosts whose sparklines are full (an hour of cpu_temp,
 * cpu_usage and mem_usage), each sending a round every second, so that every `update` event of
 * GET /api/stream carries every host. LIVE_SLOW_CLIENTS raw TCP clients send the GET and never read
 * (paused sockets: the kernel's buffers fill, then the server's); one client reads throughout. RSS of
 * `up` is read from /proc every second for BENCH_LIVE_SECONDS (default 50).
 *
 * Figures: the peak RSS and its growth over the run, the slow clients disconnected
 * (hostpulse_bridge_live_dropped_total), and the updates the reading client received in the last
 * 10 s (it must keep receiving them).
 */
import { parsePrometheus } from '../test/harness/bridge.js';
import { runCli } from '../test/harness/cli.js';
import { slowStreamClient, sparklineFleet, streamReader, type StreamReader } from '../test/harness/live.js';
import { connect, waitFor } from '../test/harness/mqtt.js';
import { freePort } from '../test/harness/process.js';
import { rssBytes } from '../test/harness/proc.js';
import { sleep, type BenchContext } from './context.js';
import type { Socket } from 'node:net';

const MB = 1_000_000;
const LIVE_HOSTS = 20;
/** With the reading client, the live view's 100 streams (its bound, as when the issue measured). */
const LIVE_SLOW_CLIENTS = 99;

export async function liveSlowClients(ctx: BenchContext): Promise<void> {
  const seconds = Number(process.env['BENCH_LIVE_SECONDS'] ?? 50);
  const [mqttPort, httpPort] = [await freePort(), await freePort()];
  const up = runCli(['up'], {
    MQTT_PORT: String(mqttPort),
    MQTT_WS_PORT: '0',
    HTTP_PORT: String(httpPort),
    LOCAL_AGENT: 'false',
    QUEUE_DIR: 'off',
    LOG_LEVEL: 'warn',
  });
  const slow: Socket[] = [];
  let publishing = true;
  let publisher: ReturnType<typeof connect> | undefined;
  let reader: StreamReader | undefined;
  try {
    await waitFor('hostpulse up', () => (up.stderr().includes('hostpulse is up.') ? true : undefined), 30_000);
    const mqtt = connect(`mqtt://127.0.0.1:${mqttPort}`);
    publisher = mqtt;
    await mqtt.waitConnected(10_000);
    reader = streamReader(`http://127.0.0.1:${httpPort}/api/stream`);
    const stream = reader;
    // An hour of sparklines for every host, then a round a second each.
    const fleet = await sparklineFleet(
      mqtt,
      Array.from({ length: LIVE_HOSTS }, (_, i) => `live-${i}`),
    );
    const rounds = (async () => {
      while (publishing) {
        await fleet.round();
        await sleep(1000);
      }
    })();
    await sleep(2000);
    const before = rssBytes(up.child) / MB;
    for (let i = 0; i < LIVE_SLOW_CLIENTS; i++) slow.push(slowStreamClient(httpPort));
    let peak = before;
    let updatesAtEnd = 0;
    for (let s = 0; s < seconds; s++) {
      await sleep(1000);
      peak = Math.max(peak, rssBytes(up.child) / MB);
      if (s === seconds - 10) updatesAtEnd = stream.updates();
    }
    const lastTen = stream.updates() - updatesAtEnd;
    const metrics = parsePrometheus(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
    const dropped =
      (metrics.get('hostpulse_bridge_live_dropped_total{reason="slow_client"}') ?? 0) +
      (metrics.get('hostpulse_bridge_live_dropped_total{reason="memory_bound"}') ?? 0);
    publishing = false;
    await rounds;
    const note = `${LIVE_SLOW_CLIENTS} paused clients, ${LIVE_HOSTS} hosts with full sparklines, a round a second, ${seconds} s; RSS ${before.toFixed(0)} MB before the clients, peak ${peak.toFixed(0)} MB`;
    ctx.figures.push(
      {
        id: 'live_slow_rss_peak',
        label: `up peak RSS with ${LIVE_SLOW_CLIENTS} live view clients that never read`,
        value: peak,
        unit: 'MB',
        target: { op: '<=', bound: 250 },
        note,
      },
      { id: 'live_slow_rss_growth', label: 'up RSS growth under those clients', value: peak - before, unit: 'MB' },
      {
        id: 'live_slow_dropped',
        label: 'slow live view clients disconnected',
        value: dropped,
        unit: 'clients',
        target: { op: '>=', bound: LIVE_SLOW_CLIENTS },
      },
      {
        id: 'live_reader_updates',
        label: 'updates the reading client received in the last 10 s',
        value: lastTen,
        unit: 'events',
        target: { op: '>=', bound: 5 },
      },
    );
  } finally {
    publishing = false;
    reader?.close();
    for (const s of slow) s.destroy();
    await publisher?.close(true);
    await up.stop();
  }
}
