/**
 * Sample-to-queryable latency through the real pipeline, on this machine:
 * agent (real collectors, and a recorded 2-GPU workstation) → Mosquitto → bridge → InfluxDB 1.6,
 * with the bridge's default batching (BATCH_SIZE 5000, FLUSH_INTERVAL 1s) unless overridden.
 *
 *   npm run bench:latency                 # 20 s at SAMPLE_INTERVAL=1s
 *   BENCH_SECONDS=60 FLUSH_INTERVAL=100ms npm run bench:latency
 */
import { runCli, stopAllCli } from '../test/harness/cli.js';
import { startInfluxDB } from '../test/harness/influxdb.js';
import { startMosquitto } from '../test/harness/mosquitto.js';
import { capture } from '../test/harness/mqtt.js';

const seconds = Number(process.env['BENCH_SECONDS'] ?? 20);
const flush = process.env['FLUSH_INTERVAL'] ?? '1s';
const fixture = new URL('../test/fixtures/machines/linux-2gpu-workstation.json', import.meta.url).pathname;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const [broker, influx] = await Promise.all([startMosquitto(), startInfluxDB(['bench'])]);
try {
  const watch = await capture(broker.url);
  const bridge = runCli(['bridge'], { MQTT_URL: broker.url, INFLUX_API: '1', INFLUX_URL: influx.url, INFLUX_DATABASE: 'bench', FLUSH_INTERVAL: flush });
  await bridge.waitForLog((l) => l.msg === 'subscribed');
  const agents = [
    runCli(['agent', '--host', 'bench-real'], { MQTT_URL: broker.url, SAMPLE_INTERVAL: '1s', LOG_LEVEL: 'warn' }),
    runCli(['agent', '--host', 'bench-replay', '--replay', fixture], { MQTT_URL: broker.url, SAMPLE_INTERVAL: '1s', LOG_LEVEL: 'warn' }),
  ];
  // First time each round (host, sample time) is answered by InfluxQL, polled every 20 ms.
  const seen = new Map<string, number>();
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    const result = await influx.query('SELECT "uptime", "host" FROM "system" WHERE time > now() - 1m', 'bench');
    const now = Date.now();
    for (const row of result.series[0]?.values ?? []) {
      const key = `${row[2] as string}@${row[0] as number}`;
      if (!seen.has(key)) seen.set(key, now);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  await Promise.all(agents.map((a) => a.stop()));
  await bridge.stop();
  await watch.close();

  const arrivals = new Map<string, number>();
  const perRound = new Map<string, number>();
  for (const m of watch.messages) {
    if (m.topic.endsWith('/availability')) continue;
    const host = m.topic.split('/')[1] as string;
    const { ts } = JSON.parse(m.payload) as { ts: number };
    const key = `${host}@${ts}`;
    perRound.set(key, (perRound.get(key) ?? 0) + 1);
    if (m.topic.endsWith('/uptime')) arrivals.set(key, m.at);
  }
  const rounds = [...seen.entries()].filter(([key]) => arrivals.has(key));
  const toQueryable = rounds.map(([key, at]) => at - Number(key.split('@')[1])).sort((a, b) => a - b);
  const toBroker = rounds.map(([key]) => (arrivals.get(key) as number) - Number(key.split('@')[1])).sort((a, b) => a - b);
  const samples = (host: string): number => Math.max(0, ...[...perRound].filter(([k]) => k.startsWith(`${host}@`)).map(([, n]) => n));
  console.log(`rounds measured: ${rounds.length} over ${seconds} s, FLUSH_INTERVAL=${flush}, SAMPLE_INTERVAL=1s`);
  console.log(`samples per round: this machine ${samples('bench-real')}, recorded 2-GPU workstation ${samples('bench-replay')}`);
  console.log('| ms from sample time to … | p50 | p95 | max |');
  console.log('|---|---|---|---|');
  for (const [what, list] of [
    ['delivered by the broker', toBroker],
    ['queryable in InfluxDB', toQueryable],
  ] as const) {
    console.log(`| ${what} | ${percentile(list, 50)} | ${percentile(list, 95)} | ${list.at(-1)} |`);
  }
} finally {
  await stopAllCli();
  await Promise.all([broker.stop(), influx.stop()]);
}
