/**
 * The fleet stage: how the bridge, and Mosquitto in front of it, behave as hosts grow. For each
 * fleet size, a simulated fleet (bench/fleet.ts: one process holding every host's connection, each
 * host a round of 20 catalog metrics every 10 s, QoS 1, rounds spread over the interval) publishes
 * for a while once connected, through one bridge that runs the whole stage (the built CLI, durable
 * queue on, defaults, GET /metrics on) into a fresh database. Per size: connect time, offered and
 * stored rates (every acknowledged sample must be in InfluxDB), bridge CPU and peak RSS, Mosquitto's
 * CPU and RSS, the fleet process's own CPU, sample → queryable latency of a sample of hosts, and
 * the bridge's own counts of missing and rejected samples (they should stay 0).
 *
 * Environment (read here, not in run.ts's settings):
 *   BENCH_FLEET          fleet stage: comma-separated fleet sizes, hosts (default 1000,2500,5000);
 *                        above MAX_HOSTS (10000) the bridge is given MAX_HOSTS = the largest size
 *   BENCH_FLEET_SECONDS  fleet stage: seconds of publishing per size, once all hosts are connected (default 60)
 *   BENCH_FLEET_INTERVAL fleet stage: seconds between a host's rounds (default 10, the agent's default)
 */
import type { ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { cpuMicros, peakRssBytes, rssBytes } from '../test/harness/proc.js';
import { freePort } from '../test/harness/process.js';
import { parsePrometheus, rejectedByReason } from '../test/harness/bridge.js';
import type { Running } from '../test/harness/cli.js';
import { availabilityStorage, pipelineStorage } from '../protocol/index.js';
import { createDatabase, sleep, type BenchContext } from './context.js';
import type { FleetOptions } from './fleet.js';
import { spawnScript, type BenchChild, type ChildEvent } from './proc.js';
import { queueDir, startBridge } from './stages-bridge.js';

/** RSS in MB (10^6 bytes), as the targets are written. */
const MB = 1_000_000;
const CONNECT_RATE = 250;
/** The bridge's default MAX_HOSTS: a larger fleet would be refused by design, not measured. */
const DEFAULT_MAX_HOSTS = 10_000;
/** Hosts whose samples are read back for latency. */
const LATENCY_HOSTS = 100;

function fleetSettings(env: NodeJS.ProcessEnv): { sizes: number[]; seconds: number; intervalMs: number } {
  const sizes = (env['BENCH_FLEET'] ?? '1000,2500,5000').split(',').map((s) => Number(s.trim()));
  if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n <= 0))
    throw new Error(`BENCH_FLEET: comma-separated positive integers, got "${env['BENCH_FLEET']}"`);
  const positive = (name: string, fallback: number): number => {
    const value = Number(env[name] ?? fallback);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}: must be a positive number, got "${env[name]}"`);
    return value;
  };
  return { sizes, seconds: positive('BENCH_FLEET_SECONDS', 60), intervalMs: positive('BENCH_FLEET_INTERVAL', 10) * 1000 };
}

export async function fleet(ctx: BenchContext): Promise<void> {
  const { sizes, seconds, intervalMs } = fleetSettings(process.env);
  const db = 'bench_fleet';
  await createDatabase(ctx, db);
  const httpPort = await freePort();
  const largest = Math.max(...sizes);
  const extra = { HTTP_PORT: String(httpPort), ...(largest > DEFAULT_MAX_HOSTS ? { MAX_HOSTS: String(largest) } : {}) };
  const bridge = startBridge(ctx, db, 'bench-bridge-fleet', queueDir(), extra);
  try {
    await bridge.waitForLog((l) => l.msg === 'subscribed', 30_000);
    for (const hosts of sizes) {
      await fleetSize(ctx, { bridge, httpPort, db, hosts, seconds, intervalMs });
      // Let the broker and the bridge settle (the last size's offline messages, closed sockets).
      await sleep(3000);
    }
  } finally {
    await bridge.stop();
  }
}

interface SizeRun {
  readonly bridge: Running;
  readonly httpPort: number;
  readonly db: string;
  readonly hosts: number;
  readonly seconds: number;
  readonly intervalMs: number;
}

async function fleetSize(ctx: BenchContext, run: SizeRun): Promise<void> {
  const { bridge, hosts, seconds } = run;
  const broker = ctx.broker.child;
  const before = { counters: await bridgeCounters(run.httpPort), brokerRss: rssBytes(broker) };
  ctx.log(`fleet ${hosts}: connecting at ${CONNECT_RATE}/s`);
  const child = spawnScript('fleet.ts', { url: ctx.broker.url, hosts, seconds, intervalMs: run.intervalMs, connectRate: CONNECT_RATE } satisfies FleetOptions);
  let watch: { stop(): Peaks } | undefined;
  let latency: { stop(): Promise<number[]> } | undefined;
  try {
    const connected = await child.waitFor('connected', (hosts / CONNECT_RATE) * 1000 + 120_000);
    const startAt = (await child.waitFor('publishing', 10_000))['at'] as number;
    const cpu0 = { bridge: cpuMicros(bridge.child), broker: cpuMicros(broker), at: Date.now() };
    const bridgeRssConnected = rssBytes(bridge.child);
    watch = watchBacklog(run, broker, child, await bridgeCounters(run.httpPort));
    latency = pollLatency(ctx, run.db, hosts, startAt);
    const done = await child.waitFor('done', seconds * 1000 + 120_000);
    const brokerCpu = { micros: cpuMicros(broker) - cpu0.broker, ms: Date.now() - cpu0.at };
    const stored = await waitStoredWindow(ctx, run.db, done['firstTs'] as number, done['lastTs'] as number, done['acked'] as number);
    const bridgeCpu = { micros: cpuMicros(bridge.child) - cpu0.bridge, ms: stored.at - cpu0.at };
    await sleep(500);
    pushFigures(ctx, {
      run,
      connected,
      done,
      stored: stored.count,
      bridgeCpu,
      brokerCpu,
      bridgeRss: { connected: bridgeRssConnected, peak: peakRssBytes(bridge.child) },
      brokerRss: before.brokerRss,
      latency: await latency.stop(),
      backlog: watch.stop(),
      load: loadavg()[0] ?? Number.NaN,
      counters: diff(await bridgeCounters(run.httpPort), before.counters),
    });
    ctx.log(`fleet ${hosts}: ${stored.count} of ${done['acked'] as number} acked samples stored`);
    await child.waitFor('closed', 60_000).catch(() => undefined);
  } finally {
    watch?.stop();
    await latency?.stop();
    await child.stop();
  }
}

interface Peaks {
  brokerRss: number;
  /** Samples the broker acknowledged to the fleet and the bridge had not received yet (±1 s of traffic: progress is per second). */
  atBroker: number;
  /** Points the bridge holds unwritten (hostpulse_bridge_queue_points). */
  inBridge: number;
}

/**
 * Every second: Mosquitto's RSS and where samples wait, if they wait (queued at the broker for the
 * bridge, or in the bridge for InfluxDB), so that a latency or memory figure can be explained.
 */
function watchBacklog(run: SizeRun, broker: ChildProcess, child: BenchChild, start: BridgeCounters): { stop(): Peaks } {
  const peaks: Peaks = { brokerRss: rssBytes(broker), atBroker: 0, inBridge: 0 };
  const timer = setInterval(() => {
    // A process that died meanwhile fails the stage where it is next used, not in this timer.
    if (broker.exitCode === null && broker.signalCode === null) peaks.brokerRss = Math.max(peaks.brokerRss, rssBytes(broker));
    const acked = (child.last('progress')?.['acked'] as number | undefined) ?? 0;
    bridgeCounters(run.httpPort).then(
      (c) => {
        peaks.atBroker = Math.max(peaks.atBroker, acked - (c.received - start.received));
        peaks.inBridge = Math.max(peaks.inBridge, c.queued);
      },
      () => undefined,
    );
  }, 1000);
  return { stop: () => (clearInterval(timer), peaks) };
}

/** Points stored with sample times in [fromTs, toTs], every field counted, the bridge's own points left out. */
async function storedInWindow(ctx: BenchContext, db: string, fromTs: number, toTs: number): Promise<number> {
  const r = await ctx.influx.query(`SELECT count(*) FROM /.*/ WHERE time >= ${fromTs}ms AND time <= ${toTs}ms`, db);
  const skip = new Set<string>([availabilityStorage.measurement, pipelineStorage.measurement]);
  let total = 0;
  for (const s of r.series) if (!skip.has(s.name)) for (const v of s.values[0]?.slice(1) ?? []) total += Number(v ?? 0);
  return total;
}

/** Polls until `expected` points are stored in the window, or the count stops growing for 30 s. */
async function waitStoredWindow(ctx: BenchContext, db: string, fromTs: number, toTs: number, expected: number): Promise<{ count: number; at: number }> {
  let best = { count: -1, at: Date.now() };
  for (;;) {
    const count = await storedInWindow(ctx, db, fromTs, toTs);
    const at = Date.now();
    if (count > best.count) best = { count, at };
    if (count >= expected || at - best.at > 30_000) return best;
    await sleep(500);
  }
}

/**
 * Reads back `cpu_usage` of LATENCY_HOSTS hosts spread over the fleet every 100 ms, like the latency
 * stage: latency = first time a sample is answered − its sample time. `stop` gives them sorted.
 */
function pollLatency(ctx: BenchContext, db: string, hosts: number, fromTs: number): { stop(): Promise<number[]> } {
  const step = Math.max(1, Math.floor(hosts / LATENCY_HOSTS));
  const sampled = Array.from({ length: Math.ceil(hosts / step) }, (_, i) => `fleet-${i * step}`);
  const query = `SELECT "usage", "host" FROM "cpu" WHERE time > now() - 30s AND (${sampled.map((h) => `"host" = '${h}'`).join(' OR ')})`;
  const seen = new Map<string, number>();
  let polling = true;
  const poller = (async () => {
    while (polling) {
      // A slow or failed answer (InfluxDB busy) is a missed poll, not a failed stage.
      const r = await ctx.influx.query(query, db).catch(() => ({ series: [] }));
      const now = Date.now();
      for (const row of r.series[0]?.values ?? []) {
        const ts = row[0] as number;
        const key = `${row[2] as string}@${ts}`;
        if (ts >= fromTs && !seen.has(key)) seen.set(key, now - ts);
      }
      await sleep(100);
    }
  })();
  return {
    async stop() {
      polling = false;
      await poller;
      return [...seen.values()].sort((a, b) => a - b);
    },
  };
}

interface BridgeCounters {
  readonly received: number;
  readonly queued: number;
  readonly missing: number;
  readonly dropped: number;
  readonly rejected: Readonly<Record<string, number>>;
}

/** The bridge's own counts of lost and refused samples, from GET /metrics as Prometheus reads them. */
async function bridgeCounters(port: number): Promise<BridgeCounters> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (!res.ok) throw new Error(`bridge GET /metrics answered ${res.status}`);
  const m = parsePrometheus(await res.text());
  let dropped = 0;
  for (const [series, value] of m) if (series.startsWith('hostpulse_bridge_dropped_total')) dropped += value;
  const get = (series: string): number => m.get(series) ?? 0;
  return {
    received: get('hostpulse_bridge_received_total'),
    queued: get('hostpulse_bridge_queue_points'),
    missing: get('hostpulse_bridge_missing_total'),
    dropped,
    rejected: rejectedByReason(m),
  };
}

const diff = (a: BridgeCounters, b: BridgeCounters): BridgeCounters => ({
  received: a.received - b.received,
  queued: a.queued,
  missing: a.missing - b.missing,
  dropped: a.dropped - b.dropped,
  rejected: Object.fromEntries(
    Object.entries(a.rejected)
      .map(([k, v]): [string, number] => [k, v - (b.rejected[k] ?? 0)])
      .filter(([, v]) => v > 0),
  ),
});

interface SizeResult {
  readonly run: SizeRun;
  readonly connected: ChildEvent;
  readonly done: ChildEvent;
  readonly stored: number;
  readonly bridgeCpu: CpuUse;
  readonly brokerCpu: CpuUse;
  readonly bridgeRss: { readonly connected: number; readonly peak: number };
  /** Mosquitto's RSS before the fleet connected; the peak is in `backlog`. */
  readonly brokerRss: number;
  readonly latency: readonly number[];
  readonly backlog: Peaks;
  /** The machine's 1-minute load average at the end (it is shared: a busy machine explains a lot). */
  readonly load: number;
  readonly counters: BridgeCounters;
}

interface CpuUse {
  readonly micros: number;
  readonly ms: number;
}

const core = (c: CpuUse): number => (c.micros / 1000 / c.ms) * 100;
const count = (n: number): string => n.toLocaleString('en-US');

function pushFigures(ctx: BenchContext, r: SizeResult): void {
  const { hosts: n, seconds, intervalMs } = r.run;
  const id = (name: string): string => `fleet_${n}_${name}`;
  const num = (key: string): number => r.done[key] as number;
  const acked = num('acked');
  const pct = (p: number): number => r.latency[Math.min(r.latency.length - 1, Math.floor((p / 100) * r.latency.length))] ?? Number.NaN;
  const rejected = Object.values(r.counters.rejected).reduce((a, b) => a + b, 0);
  const rejectedText = Object.entries(r.counters.rejected)
    .map(([k, v]) => ` ${k} ${v}`)
    .join(',');
  const sampledHosts = Math.ceil(n / Math.max(1, Math.floor(n / LATENCY_HOSTS)));
  const label = `fleet of ${count(n)} hosts:`;
  ctx.figures.push(
    {
      id: id('connect'),
      label: `${label} all connected`,
      value: (r.connected['ms'] as number) / 1000,
      unit: 's',
      note: `${count(r.connected['connected'] as number)} connected, ${r.connected['failed'] as number} failed, at most ${CONNECT_RATE}/s; ${num('reconnects')} reconnects and ${num('disconnects')} dropped connections in the whole run`,
    },
    {
      id: id('offered'),
      label: `${label} offered, acknowledged by Mosquitto`,
      value: acked / seconds,
      unit: 'msg/s',
      note: `${count(num('published'))} published, ${count(acked)} acked, ${num('errors')} failed in ${seconds} s: rounds of ${count(num('published') / Math.max(1, Math.round((n * seconds * 1000) / intervalMs)))} samples every ${intervalMs / 1000} s per host`,
    },
    {
      id: id('stored'),
      label: `${label} stored in InfluxDB`,
      value: r.stored / seconds,
      unit: 'msg/s',
      ref: id('offered'),
      target: { op: '>=', bound: 1 },
      note: `${count(r.stored)} of ${count(acked)} acked samples stored`,
    },
    {
      id: id('bridge_cpu'),
      label: `${label} bridge CPU per message`,
      value: r.bridgeCpu.micros / Math.max(1, r.stored),
      unit: 'µs/msg',
      note: `${core(r.bridgeCpu).toFixed(1)} % of one core`,
    },
    {
      id: id('bridge_rss'),
      label: `${label} bridge peak RSS`,
      value: r.bridgeRss.peak / MB,
      unit: 'MB',
      target: { op: '<=', bound: 150 },
      note: `VmHWM since the stage started (sizes run smallest first); ${(r.bridgeRss.connected / MB).toFixed(0)} MB once the fleet was connected`,
    },
    { id: id('p50'), label: `${label} sample → queryable p50`, value: pct(50), unit: 'ms' },
    {
      id: id('p99'),
      label: `${label} sample → queryable p99`,
      value: pct(99),
      unit: 'ms',
      target: { op: '<=', bound: 2000 },
      note: `${count(r.latency.length)} of ~${count(Math.round(((seconds * 1000) / intervalMs) * sampledHosts))} samples of ${sampledHosts} hosts read back (polled every 100 ms); waiting at most ${count(r.backlog.atBroker)} samples at the broker, ${count(r.backlog.inBridge)} in the bridge; load average ${r.load.toFixed(1)} on ${cpus().length} cores`,
    },
    {
      id: id('broker_rss'),
      label: `${label} Mosquitto RSS`,
      value: r.backlog.brokerRss / MB,
      unit: 'MB',
      note: `peak while publishing; ${(r.brokerRss / MB).toFixed(0)} MB before the fleet connected, ${((r.backlog.brokerRss - r.brokerRss) / 1024 / n).toFixed(1)} KiB more per host`,
    },
    {
      id: id('broker_cpu'),
      label: `${label} Mosquitto CPU`,
      value: core(r.brokerCpu),
      unit: '% core',
      note: `${(r.brokerCpu.micros / Math.max(1, acked)).toFixed(1)} µs per message`,
    },
    {
      id: id('fleet_cpu'),
      label: `${label} the fleet process's CPU (load generator)`,
      value: core({ micros: num('cpuMicros'), ms: num('cpuMs') }),
      unit: '% core',
      note: `RSS ${(num('rss') / MB).toFixed(0)} MB`,
    },
    {
      id: id('bridge_losses'),
      label: `${label} bridge missing + rejected + dropped`,
      value: r.counters.missing + rejected + r.counters.dropped,
      unit: 'samples',
      target: { op: '<=', bound: 0 },
      note: `GET /metrics, this size: missing ${r.counters.missing}, rejected ${rejected}${rejectedText}, dropped ${r.counters.dropped}`,
    },
  );
}
