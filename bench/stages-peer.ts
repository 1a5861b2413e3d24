/**
 * The do-it-yourself peer many users would build instead of the bridge: Node-RED with
 * node-red-contrib-influxdb, `mqtt in` (QoS 1, persistent session) → `function` → `join` →
 * `influxdb batch`, under bridge-live's load and counted the same way (points in InfluxDB only).
 *
 * Node-RED is no dependency of hostpulse (CI's `npm ci` must not fetch it): it lives in bench/peers/
 * with its own pinned package.json and lock file, installed there by `npm ci` the first time.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, tempDir, type Server } from '../test/harness/process.js';
import { cpuMicros, peakRssBytes, rssBytes } from '../test/harness/proc.js';
import { createDatabase, publish, sleep, storedCount, waitStored, type BenchContext } from './context.js';
import { nodeRedFlow, nodeRedSettings, type FlowOptions } from './peers/node-red.js';

const HOUR = 3_600_000;
/** RSS in MB (10^6 bytes), as the bridge's. */
const MB = 1_000_000;
const PEERS = fileURLToPath(new URL('./peers/', import.meta.url));
const RED_JS = join(PEERS, 'node_modules', 'node-red', 'red.js');

export async function nodeRedLive(ctx: BenchContext): Promise<void> {
  await ensurePeersInstalled(ctx);
  const db = 'bench_nodered_live';
  await createDatabase(ctx, db);
  const t0 = Date.now() - HOUR;
  const nodeRed = await startNodeRed(ctx, {
    brokerUrl: ctx.broker.url,
    influxUrl: ctx.influx.url,
    db,
    clientId: 'bench-nodered-live',
    // Its own host, so that it never overwrites a publisher's point; counted out below.
    probe: { topic: 'sensors/nred-probe/cpu_usage', payload: `{"value":0,"ts":${t0 - 1000},"unit":"%","seq":0}` },
  });
  try {
    await sleep(500);
    const cpu0 = cpuMicros(nodeRed.child);
    const pub = await publish(ctx, { prefix: 'nred', mode: 'max', seconds: ctx.settings.seconds, t0 });
    const stored = await waitStored(ctx, db, pub.acked + 1);
    const cpu = cpuMicros(nodeRed.child) - cpu0;
    const rss = peakRssBytes(nodeRed.child);
    const count = stored.count - 1;
    const ms = stored.at - pub.firstAt;
    ctx.log(`nodered live: ${count} of ${pub.acked} stored in ${ms} ms${errorSummary(nodeRed.output())}`);
    if (count <= 0) throw new Error(`Node-RED stored none of ${pub.acked} messages:\n${nodeRed.output().slice(-3000)}`);
    const counts = `${count.toLocaleString('en-US')} of ${pub.acked.toLocaleString('en-US')} published; publisher acked ${((pub.acked * 1000) / (pub.lastAckAt - pub.firstAt)).toFixed(0)} msg/s`;
    ctx.figures.push(
      {
        id: 'nodered_live',
        label: 'Node-RED peer (mqtt in → function → join → influxdb batch), stored in InfluxDB',
        value: (count * 1000) / ms,
        unit: 'msg/s',
        ref: 'R_live_qos1',
        note: `${counts}; acknowledges on receipt, before the write (not durable)`,
      },
      { id: 'nodered_cpu', label: 'Node-RED peer CPU per message, live', value: cpu / count, unit: 'µs/msg', ref: 'raw_cpu_qos1' },
      { id: 'nodered_rss', label: 'Node-RED peer peak RSS, live', value: rss / MB, unit: 'MB' },
    );
    pushComparisons(ctx);
  } finally {
    await nodeRed.stop();
  }
}

/** The bridge against the peer, from figures of this same run (ratios across runs mean little); each once. */
function pushComparisons(ctx: BenchContext): void {
  const value = (id: string): number | undefined => ctx.figures.find((f) => f.id === id)?.value;
  const once = (id: string): boolean => ctx.figures.every((f) => f.id !== id);
  const [bridgeLive, nodeRedLive, bridgeCpu, nodeRedCpu] = ['bridge_live', 'nodered_live', 'bridge_cpu', 'nodered_cpu'].map(value);
  if (bridgeLive !== undefined && nodeRedLive !== undefined && once('bridge_vs_nodered')) {
    // No target: under live load both are capped by the one publisher (R_live), the bridge near it;
    // CPU per message, below, is the measure of how much more work the peer does for the same load.
    ctx.figures.push({
      id: 'bridge_vs_nodered',
      label: 'bridge live ÷ Node-RED live (both capped by the publisher)',
      value: bridgeLive / nodeRedLive,
      unit: '×',
    });
  }
  if (bridgeCpu !== undefined && nodeRedCpu !== undefined && once('bridge_cpu_vs_nodered')) {
    ctx.figures.push({
      id: 'bridge_cpu_vs_nodered',
      label: 'Node-RED CPU per message ÷ bridge CPU per message',
      value: nodeRedCpu / bridgeCpu,
      unit: '×',
      target: { op: '>=', bound: 2 },
    });
  }
}

/**
 * Node-RED headless in its own process, with a settings file and a flow file written to a fresh user
 * directory; resolves once it is subscribed and writing (see `whenProbeStored`).
 */
async function startNodeRed(ctx: BenchContext, flow: FlowOptions): Promise<Server> {
  const dir = await tempDir('nodered');
  const settings = join(dir, 'settings.js');
  const flows = join(dir, 'flows.json');
  writeFileSync(settings, nodeRedSettings(process.pid));
  writeFileSync(flows, JSON.stringify(nodeRedFlow(flow), null, 2));
  ctx.log(`nodered: starting ${RED_JS} (user dir ${dir})`);
  // Ready as soon as spawned: startServer only polls, and would wait its whole timeout on a flow error.
  const server = await startServer('node-red', process.execPath, [RED_JS, '--settings', settings, '--userDir', dir, flows], dir, async () => true);
  try {
    await whenProbeStored(ctx, server, flow.db);
    return server;
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/**
 * Waits for the broker node's birth message to go through the whole flow into InfluxDB. Node-RED
 * publishes it on its connection right after its SUBSCRIBE, so once it arrives the broker has the
 * subscription. Fails at the first error Node-RED prints (it keeps running on a broken flow).
 */
async function whenProbeStored(ctx: BenchContext, server: Server, db: string, timeoutMs = 60_000): Promise<void> {
  const started = Date.now();
  for (;;) {
    const failure = /^.*(\[error\]|Error:).*$/m.exec(server.output())?.[0];
    if (failure !== undefined || server.child.exitCode !== null)
      throw new Error(`Node-RED failed to start: ${failure ?? `exited ${server.child.exitCode}`}\n${server.output().slice(-3000)}`);
    if ((await storedCount(ctx, db)) >= 1)
      return ctx.log(`nodered: subscribed and writing after ${Date.now() - started} ms, RSS ${(rssBytes(server.child) / MB).toFixed(0)} MB`);
    if (Date.now() - started > timeoutMs)
      throw new Error(`Node-RED: its probe message not in InfluxDB within ${timeoutMs} ms\n${server.output().slice(-3000)}`);
    await sleep(100);
  }
}

/** ", N error lines from Node-RED, first: …", or nothing. */
function errorSummary(output: string): string {
  const errors = output.split('\n').filter((l) => l.includes('[error]'));
  return errors.length === 0 ? '' : `; ${errors.length} error lines from Node-RED, first: ${errors[0]}`;
}

/** Runs `npm ci` in bench/peers unless its node_modules holds exactly the pinned versions. */
async function ensurePeersInstalled(ctx: BenchContext): Promise<void> {
  const pinned = (JSON.parse(readFileSync(join(PEERS, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies;
  const stale = Object.entries(pinned).filter(([name, version]) => installedVersion(name) !== version);
  if (stale.length === 0) return;
  ctx.log(`nodered: installing bench/peers (npm ci, ~120 MB, once): ${stale.map(([n, v]) => `${n}@${v}`).join(', ')}`);
  const started = Date.now();
  await npmCi(ctx);
  ctx.log(`nodered: bench/peers installed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

function installedVersion(name: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(PEERS, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** `npm ci` in bench/peers, each line of its output logged; fails with a readable reason. */
async function npmCi(ctx: BenchContext): Promise<void> {
  // Few, short retries: an unreachable registry should fail in about a minute, not after npm's defaults.
  const npm = spawn('npm', ['ci', '--no-audit', '--no-fund', '--fetch-retries=1', '--fetch-timeout=30000'], { cwd: PEERS, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const onData = (d: Buffer): void => {
    output += d.toString();
    for (const line of d.toString().split('\n')) if (line.trim()) ctx.log(`nodered: npm: ${line.trim()}`);
  };
  npm.stdout.on('data', onData);
  npm.stderr.on('data', onData);
  const code = await new Promise<number | string>((resolve) => {
    npm.once('error', (error) => resolve(error.message));
    npm.once('close', (exitCode) => resolve(exitCode ?? 'killed'));
  });
  if (code === 0) return;
  const offline = /E(NOTFOUND|AI_AGAIN|CONNREFUSED|CONNRESET|TIMEDOUT|NETUNREACH|HOSTUNREACH)|network|socket hang up/i.test(output);
  const reason = offline ? 'the npm registry is unreachable' : `npm ci failed (${code})`;
  throw new Error(
    `Node-RED peer not installed: ${reason}. It is installed on demand into bench/peers/node_modules; run \`npm ci --prefix bench/peers\` where the registry is reachable, or leave nodered-live out of BENCH_STAGES.\n${output.slice(-2000)}`,
  );
}
