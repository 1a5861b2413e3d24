/**
 * `npm run bench`: throughput, CPU, memory and latency of the bridge against the raw limits of
 * this machine, measured in one run on loopback with one publisher (bench/publisher.ts), real
 * Mosquitto and InfluxDB 1.6 from test/harness, and the built CLI (`node dist/cli/main.js bridge`,
 * durable queue on, BATCH_SIZE and FLUSH_INTERVAL at their defaults). Prints one table (figure,
 * value, unit, ratio to its raw limit, target, pass/fail) and writes it with the machine's details
 * to BENCH_OUT.
 *
 * Environment:
 *   BENCH_SECONDS          live stages: seconds of publishing at full speed (default 60)
 *   BENCH_BACKLOG          messages queued for an offline session, R_drain and catch-up (default 1000000)
 *   BENCH_LATENCY_SECONDS  latency stage: seconds of paced publishing (default 30)
 *   BENCH_LATENCY_RATE     latency stage: samples per second, all hosts (default 10000)
 *   BENCH_SOAK_SECONDS     bridge-soak: seconds of paced load while RSS is watched (default 600)
 *   BENCH_SOAK_RATE        bridge-soak: samples per second (default 10000)
 *   BENCH_AGENT_SECONDS    agent-glances: measured window at 1 s (default 60; twice that at 10 s)
 *   BENCH_FLEET            fleet: sizes, hosts with a connection each (default 1000,2500,5000)
 *   BENCH_FLEET_SECONDS    fleet: seconds of rounds per size once all are connected (default 60)
 *   BENCH_FLEET_INTERVAL   fleet: seconds between a host's rounds (default 10)
 *   BENCH_LIVE_SECONDS     live-slow-clients: seconds of `up` under 99 live view clients that never read (default 50)
 *   BENCH_UP_SUBSCRIBERS   up-broker: subscribers the publisher's messages fan out to (default 4)
 *   BENCH_HOSTS            simulated hosts (default 1000)
 *   BENCH_WINDOW           publisher: QoS 1 messages in flight (default 1000)
 *   BENCH_INFLUX_POINTS    InfluxDB raw write: points (default 2000000)
 *   BENCH_STAGES           comma-separated subset of the stages below, in this order (default all)
 *   BENCH_PROFILE          a directory: the bridge runs with --cpu-prof, profiles written there
 *   BENCH_BRIDGE_NODE_OPTIONS  NODE_OPTIONS for the bridge (e.g. V8 heap sizes to try)
 *   BENCH_OUT              results file (default bench/results/<date>.md; "-" for none)
 *   BENCH_AUTOSAVE=shipped the shipped mosquitto.conf's autosave settings; the default saves on
 *                          Mosquitto's own 30-minute interval, i.e. not during the run (see bench/README.md)
 *
 * A stage is a function of the context that pushes figures; later stages (other bridges, the
 * agent, long RSS runs) are added to STAGES.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { stopAllCli } from '../test/harness/cli.js';
import { startInfluxDB } from '../test/harness/influxdb.js';
import { startMosquitto } from '../test/harness/mosquitto.js';
import { forgetSessions, type BenchContext, type BenchSettings } from './context.js';
import { machine, renderTable, resultsMarkdown } from './report.js';
import { agentVsGlances } from './stages-agent.js';
import { bridgeCatchUp, bridgeLive, latency } from './stages-bridge.js';
import { fleet } from './stages-fleet.js';
import { nodeRedLive } from './stages-peer.js';
import { bridgeSoak } from './stages-soak.js';
import { liveSlowClients } from './stages-live.js';
import { influxRaw, rawDrain, rawLive } from './stages-raw.js';
import { upBrokerFanout } from './stages-up-broker.js';

type Stage = (ctx: BenchContext) => Promise<void>;

const STAGES = {
  'influx-raw': influxRaw,
  'raw-live-qos0': (ctx) => rawLive(ctx, 0),
  'raw-live-qos1': (ctx) => rawLive(ctx, 1),
  'bridge-live': bridgeLive,
  'nodered-live': nodeRedLive,
  'raw-drain-qos0': (ctx) => rawDrain(ctx, 0),
  'raw-drain-qos1': (ctx) => rawDrain(ctx, 1),
  'bridge-catchup': bridgeCatchUp,
  latency,
  fleet,
  'bridge-soak': bridgeSoak,
  'live-slow-clients': liveSlowClients,
  'agent-glances': agentVsGlances,
  'up-broker': upBrokerFanout,
} as const satisfies Record<string, Stage>;

const env = process.env;
const num = (name: string, fallback: number): number => {
  const value = Number(env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}: must be a positive number, got "${env[name]}"`);
  return value;
};
const settings: BenchSettings = Object.freeze({
  seconds: num('BENCH_SECONDS', 60),
  backlog: num('BENCH_BACKLOG', 1_000_000),
  latencySeconds: num('BENCH_LATENCY_SECONDS', 30),
  latencyRate: num('BENCH_LATENCY_RATE', 10_000),
  soakSeconds: num('BENCH_SOAK_SECONDS', 600),
  soakRate: num('BENCH_SOAK_RATE', 10_000),
  hosts: num('BENCH_HOSTS', 1000),
  window: num('BENCH_WINDOW', 1000),
  influxPoints: num('BENCH_INFLUX_POINTS', 2_000_000),
  influxBatch: 5000,
  influxInFlight: 4,
  profileDir: env['BENCH_PROFILE'] || undefined,
});
const names = (env['BENCH_STAGES'] ?? Object.keys(STAGES).join(','))
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const unknown = names.filter((n) => !(n in STAGES));
if (unknown.length > 0) throw new Error(`BENCH_STAGES: unknown ${unknown.join(', ')}; stages: ${Object.keys(STAGES).join(', ')}`);

// The shipped broker config's in-flight window; queues unbounded by count, bounded by bytes.
const shipped = readFileSync(new URL('../mosquitto/mosquitto.conf', import.meta.url), 'utf8');
const inflight = /^max_inflight_messages\s+(\d+)/m.exec(shipped)?.[1] ?? '20';
const shippedAutosave = env['BENCH_AUTOSAVE'] === 'shipped';
const autosave = shippedAutosave ? [...shipped.matchAll(/^autosave_\w+\s+\S+/gm)].map((m) => m[0]) : ['autosave_on_changes false', 'autosave_interval 1800'];
const brokerConfig = [
  ...autosave,
  'allow_anonymous true',
  'max_queued_messages 0',
  'max_queued_bytes 4294967296',
  `max_inflight_messages ${inflight}`,
  'queue_qos0_messages true',
  'max_packet_size 65536',
];

const described = [
  `Mosquitto ${shippedAutosave ? '(autosave as shipped) ' : ''}persistence true, ${brokerConfig.join(', ')}`,
  'InfluxDB 1.6 from test/harness (one temp dir, loopback); the bridge with INFLUX_API=1',
  'bridge: node dist/cli/main.js bridge, durable queue on (QUEUE_DIR in a temp dir), BATCH_SIZE 5000 and FLUSH_INTERVAL 1s (defaults), MAX_BUFFERED 100000, QoS 1',
  `publisher: one MQTT.js connection in its own process, QoS 1, ${settings.window} in flight, ${settings.hosts} hosts, payload {"value","ts","unit","seq"} on sensors/<host>/cpu_usage`,
  `live stages ${settings.seconds} s; backlog ${settings.backlog.toLocaleString('en-US')} messages; latency ${settings.latencyRate} samples/s for ${settings.latencySeconds} s; soak ${settings.soakRate} samples/s for ${settings.soakSeconds} s`,
  `stages run: ${names.join(', ')}`,
];
const log = (message: string): void => void process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
described.forEach(log);

const [broker, influx] = await Promise.all([startMosquitto({ persistent: true, config: brokerConfig }), startInfluxDB()]);
const cleanUp = async (): Promise<void> => {
  await stopAllCli();
  await Promise.all([broker.stop(), influx.stop()]);
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanUp().finally(() => process.exit(130)));
const ctx: BenchContext = { broker, influx, settings, figures: [], log };
const notes: string[] = [];
try {
  for (const name of names) {
    log(`stage ${name}`);
    const started = Date.now();
    await STAGES[name as keyof typeof STAGES](ctx).catch((error: unknown) => {
      notes.push(`stage ${name} failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
      log(`stage ${name} FAILED: ${String(error)}`);
    });
    await forgetSessions(ctx);
    log(`stage ${name} done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
} finally {
  await cleanUp();
}

const table = renderTable(ctx.figures);
console.log(described.map((d) => `- ${d}`).join('\n'));
console.log(`\n${table}\n`);
notes.forEach((n) => console.log(n));
const out = env['BENCH_OUT'] ?? `bench/results/${new Date().toISOString().slice(0, 10)}.md`;
if (out !== '-') {
  writeFileSync(out, resultsMarkdown(machine(), described, table, notes));
  log(`results written to ${out}`);
}
