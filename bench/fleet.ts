/**
 * A simulated fleet: every host's MQTT connection held by one process (run through bench/proc.ts
 * `spawnScript`), for the fleet stage (bench/stages-fleet.ts). It imports mqtt directly, as
 * raw-subscriber.ts does: the agent's wrapper (common/mqtt.ts) adds logging and back-off per
 * connection that a load generator holding thousands of them does not need.
 *
 * Host i is `fleet-<i>` and connects as the agent does (client id `fleet-<i>`, clean session,
 * keepalive 15 s, last will `offline` retained, `online` retained once connected), at most
 * `connectRate` new connections a second and as many waiting for their CONNACK. Once all are
 * connected (or 60 s after the last was opened) it publishes for `seconds`: each host a round
 * every `intervalMs` of the first `metricsPerRound` metrics of ROUND, QoS 1, with the agent's
 * payload (ts: the round's time, seq: per host, one count per sample). Host i's rounds are offset
 * by i/hosts of the interval, so the load is smooth; one timer ticking every 50 ms opens the
 * connections and sends the rounds that are due (no timer of ours per connection).
 *
 * Reports `connected` {ms, connected, failed}, `publishing` {at}, `progress` every second,
 * `done` {published, acked, errors, reconnects, disconnects, firstTs, lastTs, cpuMicros and cpuMs
 * (its own CPU time while publishing, and that time), rss},
 * then `closed` once every host said `offline` and disconnected.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { OFFLINE, ONLINE, availabilityTopic, encodePayload, resolveMetric, sampleTopic } from '../protocol/index.js';
import { childOptions, report } from './proc.js';

export interface FleetOptions {
  readonly url: string;
  readonly hosts: number;
  /** Seconds of publishing once connected. */
  readonly seconds: number;
  readonly intervalMs?: number;
  readonly metricsPerRound?: number;
  /** New connections per second (and CONNACKs awaited at once). */
  readonly connectRate?: number;
}

/** A typical PC's round, in the agent's order, with plausible values (the agent's own two counts included). */
const ROUND: readonly (readonly [metric: string, typical: number])[] = [
  ['cpu_usage', 35],
  ['cpu_temp', 55],
  ['cpu_temp_max', 62],
  ['load1', 1.2],
  ['load5', 1],
  ['load15', 0.9],
  ['mem_usage', 48],
  ['mem_used', 8e9],
  ['mem_available', 8e9],
  ['swap_usage', 3],
  ['swap_used', 2.5e8],
  ['disk_root_usage', 61],
  ['disk_root_used', 3e11],
  ['disk_root_free', 2e11],
  ['net_eth0_rx', 1.2e5],
  ['net_eth0_tx', 4e4],
  ['gpu0_temp', 48],
  ['uptime', 86_400],
  ['agent_queue', 0],
  ['agent_dropped', 0],
  ['gpu0_usage', 12],
  ['gpu0_mem_usage', 20],
  ['gpu0_power', 35],
  ['gpu0_fan', 30],
];
const TICK_MS = 50;
/** How long stragglers may take to connect, and acknowledgements to come after the last round. */
const GRACE_MS = 60_000;

const o = childOptions<FleetOptions>();
const intervalMs = o.intervalMs ?? 10_000;
const connectRate = o.connectRate ?? 250;
const metrics = roundMetrics(o.metricsPerRound ?? 20);

interface Metric {
  readonly name: string;
  readonly unit: string;
  readonly typical: number;
  readonly min: number;
  readonly max: number;
}

/** The round's metrics, checked against the catalog now rather than rejected by the bridge later. */
function roundMetrics(count: number): Metric[] {
  if (count < 1 || count > ROUND.length) throw new Error(`metricsPerRound: 1 to ${ROUND.length}, got ${count}`);
  return ROUND.slice(0, count).map(([name, typical]) => {
    const spec = resolveMetric(name)?.spec;
    if (!spec) throw new Error(`${name} is not in the catalog`);
    return { name, unit: spec.unit, typical, min: spec.min, max: spec.max };
  });
}

/** Within ±20 % of typical, two decimals, inside the catalog's range. */
const sampleValue = (m: Metric): number => Math.min(m.max, Math.max(m.min, Math.round(m.typical * (0.8 + 0.4 * Math.random()) * 100) / 100));

const clients: MqttClient[] = [];
const up = new Uint8Array(o.hosts);
const seq = new Float64Array(o.hosts);
const counts = { opened: 0, connected: 0, reconnects: 0, disconnects: 0, connectErrors: 0, published: 0, acked: 0, errors: 0 };
let closing = false;
let firstTs = 0;
let lastTs = 0;

function open(i: number): MqttClient {
  const host = `fleet-${i}`;
  const client = mqtt.connect(o.url, {
    clientId: host,
    clean: true,
    protocolVersion: 4,
    keepalive: 15,
    connectTimeout: 30_000,
    // Spread, so that hosts dropped together do not come back in step.
    reconnectPeriod: 1000 + Math.floor(Math.random() * 4000),
    resubscribe: false,
    will: { topic: availabilityTopic(host), payload: Buffer.from(OFFLINE), qos: 1, retain: true },
  });
  client.on('connect', () => {
    if (up[i] === 0) counts.connected++;
    up[i] = 1;
    client.publish(availabilityTopic(host), ONLINE, { qos: 1, retain: true });
  });
  client.on('close', () => {
    if (up[i] === 0) return;
    up[i] = 0;
    counts.connected--;
    if (!closing) counts.disconnects++;
  });
  client.on('reconnect', () => counts.reconnects++);
  client.on('error', () => counts.connectErrors++);
  return client;
}

/** One round of host i: every metric stamped with the same time, QoS 1, like the agent's. */
function sendRound(i: number): void {
  const client = clients[i];
  if (!client) return;
  const host = `fleet-${i}`;
  const ts = Date.now();
  if (firstTs === 0) firstTs = ts;
  lastTs = ts;
  let n = seq[i] ?? 0;
  for (const m of metrics) {
    const payload = encodePayload(m.unit ? { value: sampleValue(m), ts, unit: m.unit, seq: n++ } : { value: sampleValue(m), ts, seq: n++ });
    counts.published++;
    client.publish(sampleTopic(host, m.name), payload, { qos: 1 }, (error) => (error ? counts.errors++ : counts.acked++));
  }
  seq[i] = n;
}

const progress = setInterval(() => report('progress', { ...counts, rss: process.memoryUsage.rss() }), 1000);

/** Opens connections at the pace; resolves once every host is connected (or the stragglers' grace is over). */
function connectAll(): Promise<void> {
  const startedAt = Date.now();
  return new Promise((resolve) => {
    const tick = setInterval(() => {
      const allowed = Math.min(o.hosts, Math.floor(((Date.now() - startedAt) * connectRate) / 1000) + 1);
      // CONNACKs awaited at once stay bounded, so a slow broker is not flooded.
      while (counts.opened < allowed && counts.opened - counts.connected < connectRate) clients.push(open(counts.opened++));
      const stragglersDue = counts.opened === o.hosts && Date.now() - startedAt > (o.hosts / connectRate) * 1000 + GRACE_MS;
      if (counts.connected < o.hosts && !stragglersDue) return;
      clearInterval(tick);
      report('connected', { ms: Date.now() - startedAt, connected: counts.connected, failed: o.hosts - counts.connected, reconnects: counts.reconnects });
      resolve();
    }, TICK_MS);
  });
}

/** Round g (all hosts, in order of their offset) is due at start + g × interval / hosts. */
function publishAll(): Promise<void> {
  const startedAt = Date.now();
  const stepMs = intervalMs / o.hosts;
  const rounds = Math.ceil((o.seconds * 1000) / stepMs);
  let next = 0;
  report('publishing', { at: startedAt, rounds });
  return new Promise((resolve) => {
    const tick = setInterval(() => {
      const now = Date.now();
      while (next < rounds && startedAt + next * stepMs <= now) sendRound(next++ % o.hosts);
      if (next < rounds) return;
      clearInterval(tick);
      resolve();
    }, TICK_MS);
  });
}

async function settled(timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (counts.acked + counts.errors < counts.published && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
}

/** Every host says `offline` (as a stopping agent does) and disconnects. */
async function closeAll(): Promise<void> {
  closing = true;
  const bye = clients.map(
    (client, i) =>
      new Promise<void>((resolve) => {
        if (!client.connected) return client.end(true, {}, () => resolve());
        client.publish(availabilityTopic(`fleet-${i}`), OFFLINE, { qos: 1, retain: true }, () => client.end(false, {}, () => resolve()));
      }),
  );
  await Promise.race([Promise.all(bye), new Promise((r) => setTimeout(r, 30_000))]);
}

process.once('SIGTERM', () => {
  closing = true;
  for (const client of clients) client.end(true);
  process.exit(0);
});

await connectAll();
const cpu0 = { usage: process.cpuUsage(), at: Date.now() };
await publishAll();
await settled(GRACE_MS);
const cpu = process.cpuUsage(cpu0.usage);
report('done', { ...counts, firstTs, lastTs, cpuMicros: cpu.user + cpu.system, cpuMs: Date.now() - cpu0.at, rss: process.memoryUsage.rss() });
clearInterval(progress);
await closeAll();
report('closed');
process.exit(0);
