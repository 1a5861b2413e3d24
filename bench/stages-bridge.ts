/**
 * The bridge end to end (the built CLI, durable queue on, INFLUX_API=1), counting only points that
 * are in InfluxDB: live throughput, backlog catch-up, sample-to-queryable latency.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type Running } from '../test/harness/cli.js';
import { createDatabase, publish, sleep, waitStored, type BenchContext } from './context.js';
import { cpuMicros, peakRssBytes } from '../test/harness/proc.js';

const HOUR = 3_600_000;
/** RSS in MB (10^6 bytes), as the targets are written. */
const MB = 1_000_000;

/** The built bridge (durable queue in `queueDir`, InfluxDB v1 API to `db`), profiled when BENCH_PROFILE is set. */
export function startBridge(ctx: BenchContext, db: string, clientId: string, queueDir: string, extraEnv: Record<string, string> = {}): Running {
  const dir = ctx.settings.profileDir;
  // BENCH_BRIDGE_NODE_OPTIONS: Node/V8 options for the bridge, to try e.g. heap sizes.
  const nodeOptions = [dir ? `--require ${profilerHook(dir)}` : '', process.env['BENCH_BRIDGE_NODE_OPTIONS'] ?? ''].join(' ').trim();
  const profile: Record<string, string> = {
    ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
    ...(dir ? { BENCH_PROFILE_FILE: join(dir, `${db}-${Date.now()}.cpuprofile`) } : {}),
  };
  return runCli(['bridge'], {
    MQTT_URL: ctx.broker.url,
    MQTT_CLIENT_ID: clientId,
    INFLUX_API: '1',
    INFLUX_URL: ctx.influx.url,
    INFLUX_DATABASE: db,
    QUEUE_DIR: queueDir,
    ...extraEnv,
    ...profile,
  });
}

/**
 * Node 20 refuses --cpu-prof in NODE_OPTIONS, and the CLI is started without extra flags: a hook
 * loaded with --require runs the V8 profiler through node:inspector and saves it at exit.
 */
function profilerHook(dir: string): string {
  const path = join(dir, 'cpu-profile-hook.cjs');
  writeFileSync(
    path,
    `const { Session } = require('node:inspector');
const session = new Session();
session.connect();
session.post('Profiler.enable', () => session.post('Profiler.start'));
process.on('exit', () => session.post('Profiler.stop', (error, result) => error || require('node:fs').writeFileSync(process.env.BENCH_PROFILE_FILE, JSON.stringify(result.profile))));
`,
  );
  return path;
}

export const queueDir = (): string => mkdtempSync(join(tmpdir(), 'hostpulse-bench-queue-'));
const mb = (bytes: number): number => bytes / MB;

export async function bridgeLive(ctx: BenchContext): Promise<void> {
  const db = 'bench_bridge_live';
  await createDatabase(ctx, db);
  const bridge = startBridge(ctx, db, 'bench-bridge-live', queueDir());
  try {
    await bridge.waitForLog((l) => l.msg === 'subscribed', 30_000);
    await sleep(500);
    const cpu0 = cpuMicros(bridge.child);
    const pub = await publish(ctx, { prefix: 'blive', mode: 'max', seconds: ctx.settings.seconds, t0: Date.now() - HOUR });
    const stored = await waitStored(ctx, db, pub.acked);
    const cpu = cpuMicros(bridge.child) - cpu0;
    const ms = stored.at - pub.firstAt;
    ctx.log(`bridge live: ${stored.count} of ${pub.acked} stored in ${ms} ms`);
    ctx.figures.push(
      {
        id: 'bridge_live',
        label: 'bridge live, QoS 1, stored in InfluxDB',
        value: (stored.count * 1000) / ms,
        unit: 'msg/s',
        ref: 'R_live_qos1',
        target: { op: '>=', bound: 0.9 },
        note: `${stored.count.toLocaleString('en-US')} of ${pub.acked.toLocaleString('en-US')} published; publisher acked ${((pub.acked * 1000) / (pub.lastAckAt - pub.firstAt)).toFixed(0)} msg/s`,
      },
      {
        id: 'bridge_cpu',
        label: 'bridge CPU per message, live',
        value: cpu / stored.count,
        unit: 'µs/msg',
        ref: 'raw_cpu_qos1',
        target: { op: '<=', bound: 2 },
      },
      { id: 'bridge_rss_live', label: 'bridge peak RSS, live', value: mb(peakRssBytes(bridge.child)), unit: 'MB', target: { op: '<=', bound: 150 } },
    );
  } finally {
    await bridge.stop();
  }
}

export async function bridgeCatchUp(ctx: BenchContext): Promise<void> {
  const db = 'bench_bridge_catchup';
  const clientId = 'bench-bridge-catchup';
  const dir = queueDir();
  await createDatabase(ctx, db);
  const first = startBridge(ctx, db, clientId, dir);
  await first.waitForLog((l) => l.msg === 'subscribed', 30_000);
  await first.stop();
  const pub = await publish(ctx, { prefix: 'backlog', mode: 'max', count: ctx.settings.backlog, t0: Date.now() - HOUR });
  ctx.log(`bridge catch-up: ${pub.acked} queued at ${((pub.acked * 1000) / (pub.lastAckAt - pub.firstAt)).toFixed(0)} msg/s`);
  const bridge = startBridge(ctx, db, clientId, dir);
  try {
    const connected = await bridge.waitForLog((l) => l.msg === 'connected to broker', 30_000);
    const stored = await waitStored(ctx, db, pub.acked);
    const ms = stored.at - (connected['time'] as number);
    ctx.log(`bridge catch-up: ${stored.count} of ${pub.acked} stored in ${ms} ms`);
    ctx.figures.push(
      {
        id: 'bridge_catchup',
        label: 'bridge backlog catch-up, stored in InfluxDB',
        value: (stored.count * 1000) / ms,
        unit: 'msg/s',
        ref: 'R_drain_qos1',
        target: { op: '>=', bound: 0.45 },
        note: `${stored.count.toLocaleString('en-US')} of ${pub.acked.toLocaleString('en-US')} queued, ${(ms / 1000).toFixed(1)} s from CONNACK`,
      },
      {
        id: 'bridge_cpu_catchup',
        label: 'bridge CPU per message, catch-up (start-up included)',
        value: cpuMicros(bridge.child) / stored.count,
        unit: 'µs/msg',
        ref: 'raw_cpu_qos1',
      },
      { id: 'bridge_rss_catchup', label: 'bridge peak RSS, catch-up', value: mb(peakRssBytes(bridge.child)), unit: 'MB', target: { op: '<=', bound: 150 } },
    );
  } finally {
    await bridge.stop();
  }
}

/**
 * Hosts × 10 samples/s, paced, each stamped with its publish time; a poller reads back the points
 * of every 50th host every 100 ms: latency = first time a point is answered − its timestamp.
 */
export async function latency(ctx: BenchContext): Promise<void> {
  const db = 'bench_latency';
  await createDatabase(ctx, db);
  const bridge = startBridge(ctx, db, 'bench-bridge-latency', queueDir());
  const { hosts, latencyRate: rate, latencySeconds: seconds } = ctx.settings;
  const sampled = Array.from({ length: Math.ceil(hosts / 50) }, (_, i) => `lat-${i * 50}`);
  const query = `SELECT "usage", "host" FROM "cpu" WHERE time > now() - 10s AND (${sampled.map((h) => `"host" = '${h}'`).join(' OR ')})`;
  const seen = new Map<string, number>();
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const r = await ctx.influx.query(query, db);
      const now = Date.now();
      for (const row of r.series[0]?.values ?? []) {
        const key = `${row[2] as string}@${row[0] as number}`;
        if (!seen.has(key)) seen.set(key, now);
      }
      await sleep(100);
    }
  })();
  try {
    await bridge.waitForLog((l) => l.msg === 'subscribed', 30_000);
    const pub = await publish(ctx, { prefix: 'lat', mode: 'paced', rate, seconds, tsNow: true, t0: 0 });
    await waitStored(ctx, db, pub.acked, 15_000, 500);
    await sleep(500);
    polling = false;
    await poller;
    const expected = sampled.length * Math.floor(pub.acked / hosts);
    const lat = [...seen].map(([key, at]) => at - Number(key.split('@')[1])).sort((a, b) => a - b);
    const pct = (p: number): number => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] ?? Number.NaN;
    const note = `${lat.length.toLocaleString('en-US')} of ~${expected.toLocaleString('en-US')} samples of ${sampled.length} hosts read back (polled every 100 ms); ${hosts} hosts at ${rate} msg/s for ${seconds} s, publisher reached ${((pub.acked * 1000) / (pub.lastAckAt - pub.firstAt)).toFixed(0)} msg/s`;
    ctx.figures.push(
      { id: 'latency_p50', label: `sample → queryable p50 at ${rate} samples/s`, value: pct(50), unit: 'ms' },
      { id: 'latency_p99', label: `sample → queryable p99 at ${rate} samples/s`, value: pct(99), unit: 'ms', target: { op: '<=', bound: 2000 }, note },
      {
        id: 'bridge_rss_latency',
        label: 'bridge peak RSS, latency stage',
        value: mb(peakRssBytes(bridge.child)),
        unit: 'MB',
        target: { op: '<=', bound: 150 },
      },
    );
  } finally {
    polling = false;
    await poller.catch(() => undefined);
    await bridge.stop();
  }
}
