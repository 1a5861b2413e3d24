/**
 * Database faults while a publisher streams through the bridge: InfluxDB stopped for 60 s, killed
 * with SIGKILL and restarted on its data, frozen for 45 s (its error answers are in
 * faults-database-errors.test.ts). After each, the ledger holds every acknowledged (host, seq)
 * against what InfluxDB has, and the bridge's GET /metrics says what a user would see.
 */
import { describe, expect, it } from 'vitest';
import { sleep } from '../../common/backoff.js';
import { bridgeEnv, startBridge, type BridgeProcess } from '../harness/bridge.js';
import { restartInfluxDB } from '../harness/influxdb.js';
import { count, flowing, ledger, startStream } from '../harness/load.js';
import { waitFor } from '../harness/mqtt.js';
import { useServers } from '../harness/servers.js';
import { crash, freeze, tcpSockets, thaw } from '../harness/proc.js';

const DB = 'db_faults';
const servers = useServers([DB]);

const WRITTEN = 'hostpulse_bridge_written_total';
const RETRIES = 'hostpulse_bridge_write_retries_total';
const QUEUED = 'hostpulse_bridge_queue_points';

/** The bridge's open TCP connections to InfluxDB (the HTTP port it writes to). */
function databaseSockets(bridge: BridgeProcess, url: string): number {
  const port = Number(new URL(url).port);
  return tcpSockets(bridge.child).filter((s) => s.remotePort === port).length;
}

/** Runs `during` while sampling the bridge's database sockets every second; resolves with the most seen. */
async function watchSockets(bridge: BridgeProcess, url: string, during: Promise<unknown>): Promise<number> {
  let most = databaseSockets(bridge, url);
  let done = false;
  void during.finally(() => (done = true));
  while (!done) {
    await sleep(1000);
    if (!done) most = Math.max(most, databaseSockets(bridge, url));
  }
  return most;
}

describe('InfluxDB unavailable while samples flow', () => {
  it('stopped for 60 s: the bridge keeps taking samples, queues them on disk, retries with backoff, then writes them all; no socket growth', async () => {
    const bridge = await startBridge(bridgeEnv(servers.broker.url, servers.influx.url, DB, 'down-bridge'));
    const stream = startStream({ url: servers.broker.url, prefix: 'down', hosts: 2, perHost: 1400, rate: 40 });
    await flowing(bridge, stream);
    const socketsBefore = databaseSockets(bridge, servers.influx.url);
    expect(socketsBefore).toBeGreaterThanOrEqual(1); // a kept-alive connection: the count sees it
    await servers.influx.halt();
    const stoppedAt = await bridge.metrics();
    const mostSockets = await watchSockets(bridge, servers.influx.url, sleep(60_000));
    const down = await bridge.metrics();
    servers.influx = await restartInfluxDB(servers.influx);

    // While it was down: still taking samples (acknowledged to the broker once on disk), queued, retried.
    expect(down.get('hostpulse_bridge_received_total')! - stoppedAt.get('hostpulse_bridge_received_total')!).toBeGreaterThan(2000);
    expect(down.get(QUEUED)).toBeGreaterThan(2000);
    expect(down.get('hostpulse_bridge_queue_bytes')).toBeGreaterThan(100_000);
    expect(down.get('hostpulse_bridge_database_writable')).toBe(0);
    expect(down.get('hostpulse_bridge_broker_connected')).toBe(1);
    const retries = down.get(RETRIES)! - stoppedAt.get(RETRIES)!;
    expect(retries).toBeGreaterThanOrEqual(3);
    expect(retries).toBeLessThanOrEqual(20); // backoff: 0.5 s doubling to 30 s, not a tight loop
    expect(mostSockets).toBeLessThanOrEqual(Math.max(socketsBefore, 1));

    const acked = await stream.done;
    expect(count(acked)).toBe(2800);
    expect(await ledger(servers.influx, DB, 'down', acked, 45_000)).toEqual([]);
    await waitFor('the queue drained', async () => ((await bridge.metric(QUEUED)) === 0 ? true : undefined));
    expect(await bridge.metric('hostpulse_bridge_database_writable')).toBe(1);
    expect(databaseSockets(bridge, servers.influx.url)).toBeLessThanOrEqual(Math.max(socketsBefore, 1));
    expect(bridge.logs().some((l) => l.msg === 'database writable again')).toBe(true);
    expect(await bridge.metric('hostpulse_bridge_missing_total')).toBe(0); // and the bridge, counting gaps in seq, agrees
    expect(await bridge.stop()).toBe(0);
  }, 150_000);

  it('killed with SIGKILL mid-write and restarted on the same data and ports: every acknowledged sample is stored', async () => {
    const bridge = await startBridge(bridgeEnv(servers.broker.url, servers.influx.url, DB, 'crash-db-bridge', { FLUSH_INTERVAL: '20ms' }));
    const stream = startStream({ url: servers.broker.url, prefix: 'dbcrash', hosts: 2, perHost: 1000, rate: 500 });
    await flowing(bridge, stream);
    const writtenBeforeCrash = await bridge.metric(WRITTEN);
    await crash(servers.influx.child);
    await sleep(500);
    servers.influx = await restartInfluxDB(servers.influx);
    const acked = await stream.done;
    expect(count(acked)).toBe(2000);
    // What was written before the crash came back from InfluxDB's WAL; the rest was retried.
    expect(writtenBeforeCrash).toBeGreaterThan(0);
    expect(await ledger(servers.influx, DB, 'dbcrash', acked, 45_000)).toEqual([]);
    expect(await bridge.metric(RETRIES)).toBeGreaterThanOrEqual(1);
    expect(await bridge.metric('hostpulse_bridge_missing_total')).toBe(0); // and the bridge, counting gaps in seq, agrees
    expect(await bridge.stop()).toBe(0);
  }, 90_000);

  it('frozen for 45 s (SIGSTOP): writes time out (INFLUX_TIMEOUT) and are retried, nothing is lost, no socket growth', async () => {
    const bridge = await startBridge(bridgeEnv(servers.broker.url, servers.influx.url, DB, 'frozen-db-bridge', { INFLUX_TIMEOUT: '2s' }));
    const stream = startStream({ url: servers.broker.url, prefix: 'dbfreeze', hosts: 2, perHost: 1100, rate: 40 });
    await flowing(bridge, stream);
    const socketsBefore = databaseSockets(bridge, servers.influx.url);
    expect(socketsBefore).toBeGreaterThanOrEqual(1);
    const before = await bridge.metrics();
    freeze(servers.influx.child);
    const mostSockets = await watchSockets(bridge, servers.influx.url, sleep(45_000));
    const frozen = await bridge.metrics();
    thaw(servers.influx.child);

    const retries = frozen.get(RETRIES)! - before.get(RETRIES)!;
    expect(retries).toBeGreaterThanOrEqual(3);
    expect(retries).toBeLessThanOrEqual(20);
    expect(frozen.get('hostpulse_bridge_database_writable')).toBe(0);
    const failed = bridge.logs().find((l) => l.msg === 'write failed, retrying');
    expect(String(failed?.['err'])).toMatch(/timeout|aborted/i);
    expect(mostSockets).toBeLessThanOrEqual(Math.max(socketsBefore, 1) + 1);

    const acked = await stream.done;
    expect(count(acked)).toBe(2200);
    expect(await ledger(servers.influx, DB, 'dbfreeze', acked, 45_000)).toEqual([]);
    await waitFor('the queue drained', async () => ((await bridge.metric(QUEUED)) === 0 ? true : undefined));
    expect(await bridge.metric('hostpulse_bridge_missing_total')).toBe(0); // and the bridge, counting gaps in seq, agrees
    expect(databaseSockets(bridge, servers.influx.url)).toBeLessThanOrEqual(Math.max(socketsBefore, 1));
    expect(await bridge.stop()).toBe(0);
  }, 120_000);
});
