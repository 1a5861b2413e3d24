/**
 * Database faults while a publisher streams through the bridge: InfluxDB stopped for 60 s, killed
 * with SIGKILL and restarted on its data, frozen for 45 s; answers of 429 and 503 with Retry-After
 * and 500 for 30 s from a fault proxy in front of the real InfluxDB; a point InfluxDB refuses.
 * After each, the ledger holds every acknowledged (host, seq) against what InfluxDB has, and the
 * bridge's GET /metrics says what a user would see.
 */
import { describe, expect, it } from 'vitest';
import { sleep } from '../common/backoff.js';
import { bridgeEnv, startBridge, type BridgeProcess } from './harness/bridge.js';
import { startHttpFaultProxy, type HttpFaultProxy } from './harness/http-fault-proxy.js';
import { restartInfluxDB } from './harness/influxdb.js';
import { count, ledger, startStream, type Stream } from './harness/load.js';
import { waitFor } from './harness/mqtt.js';
import { useServers } from './harness/servers.js';
import { crash, freeze, tcpSockets, thaw } from './harness/proc.js';

const DB = 'db_faults';
const proxies: HttpFaultProxy[] = [];
const servers = useServers([DB], { cleanup: () => Promise.all(proxies.map((p) => p.close())) });

const WRITTEN = 'hostpulse_bridge_written_total';
const RETRIES = 'hostpulse_bridge_write_retries_total';
const QUEUED = 'hostpulse_bridge_queue_points';

async function flowing(bridge: BridgeProcess, stream: Stream): Promise<void> {
  await waitFor('samples acknowledged and written', async () => (stream.ackedCount() >= 100 && (await bridge.metric(WRITTEN)) >= 100 ? true : undefined));
}

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

describe('InfluxDB answering with errors (a fault proxy in front of it)', () => {
  async function throughProxy(clientId: string): Promise<{ proxy: HttpFaultProxy; bridge: BridgeProcess }> {
    const proxy = await startHttpFaultProxy(servers.influx.url);
    proxies.push(proxy);
    const bridge = await startBridge(bridgeEnv(servers.broker.url, proxy.url, DB, clientId));
    return { proxy, bridge };
  }

  it.each([
    [429, 3],
    [503, 2],
  ])('%i with Retry-After: %i s: no write comes before it has elapsed; everything is stored after', async (status, seconds) => {
    const prefix = `after${status}`;
    const { proxy, bridge } = await throughProxy(`${prefix}-bridge`);
    const stream = startStream({ url: servers.broker.url, prefix, hosts: 1, perHost: 400, rate: 50 });
    await flowing(bridge, stream);
    const from = Date.now();
    proxy.fail({ status, headers: { 'retry-after': String(seconds) }, body: '{"error":"too many requests"}' }, { requests: 2 });
    const acked = await stream.done;
    expect(await ledger(servers.influx, DB, prefix, acked)).toEqual([]);
    const writes = proxy.requestsTo('/write', from);
    expect(writes.slice(0, 3).map((r) => r.status)).toEqual([status, status, 204]);
    for (let i = 1; i <= 2; i++) expect(writes[i]!.at - writes[i - 1]!.at).toBeGreaterThanOrEqual(seconds * 1000);
    expect(await bridge.metric(RETRIES)).toBe(2);
    expect(await bridge.metric('hostpulse_bridge_missing_total')).toBe(0); // and the bridge, counting gaps in seq, agrees
    expect(await bridge.stop()).toBe(0);
  }, 60_000);

  it('500 for 30 s: retries back off (a bounded request rate), and everything is stored after recovery', async () => {
    const { proxy, bridge } = await throughProxy('error500-bridge');
    const stream = startStream({ url: servers.broker.url, prefix: 'error500', hosts: 2, perHost: 700, rate: 40 });
    await flowing(bridge, stream);
    const from = Date.now();
    proxy.fail({ status: 500, body: '{"error":"internal error"}' }, { ms: 30_000 });
    const acked = await stream.done;
    expect(count(acked)).toBe(1400);
    expect(await ledger(servers.influx, DB, 'error500', acked, 45_000)).toEqual([]);
    const failed = proxy.requestsTo('/write', from).filter((r) => r.status === 500);
    expect(failed.length).toBeGreaterThanOrEqual(3);
    expect(failed.length).toBeLessThanOrEqual(15); // a tight loop would make hundreds in 30 s
    const gaps = failed.slice(1).map((r, i) => r.at - failed[i]!.at);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(450); // never faster than the base delay (500 ms, jitter rounds)
    expect(Math.max(...gaps)).toBeGreaterThanOrEqual(2000); // and growing
    expect(await bridge.metric(RETRIES)).toBe(failed.length);
    expect(await bridge.metric('hostpulse_bridge_missing_total')).toBe(0); // and the bridge, counting gaps in seq, agrees
    expect(bridge.logs().some((l) => l.msg === 'write failed, retrying' && l['status'] === 500)).toBe(true);
    expect(await bridge.stop()).toBe(0);
  }, 90_000);

  it('one point InfluxDB refuses (field type conflict): dropped and counted on /metrics, not retried forever, the rest of its batch stored', async () => {
    const { proxy, bridge } = await throughProxy('refused-bridge');
    // Mem usage as a string in this week's shard: a float sample of it conflicts.
    const now = Date.now();
    const seeded = await fetch(`${servers.influx.url}/write?db=${DB}&precision=ms`, { method: 'POST', body: `mem,host=seeded usage="full" ${now}` });
    expect(seeded.status).toBe(204);
    const stream = startStream({ url: servers.broker.url, prefix: 'refused', hosts: 2, perHost: 100, rate: 200 });
    await stream.connection.publish('sensors/refused-x/mem_usage', JSON.stringify({ value: 50, ts: now }), { qos: 1 });
    const acked = await stream.done;
    expect(await ledger(servers.influx, DB, 'refused', acked)).toEqual([]);
    await waitFor('the refused point counted', async () => ((await bridge.metric('hostpulse_bridge_dropped_total{reason="database_refused"}')) === 1 ? true : undefined));
    await sleep(1000);
    const refusals = proxy.requestsTo('/write').filter((r) => r.status === 400);
    expect(refusals.length).toBeGreaterThanOrEqual(1);
    expect(refusals.length).toBeLessThanOrEqual(12); // halving isolates it in about log2(batch) steps, then it is dropped
    expect(await bridge.metric(RETRIES)).toBe(0);
    expect(bridge.logs().filter((l) => l.msg === 'database refused a point, dropped')).toHaveLength(1);
    expect(await bridge.stop()).toBe(0);
  }, 60_000);
});
