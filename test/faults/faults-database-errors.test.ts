/**
 * InfluxDB answering with errors while a publisher streams through the bridge, from a fault proxy
 * in front of the real InfluxDB: 429 and 503 with Retry-After, 500 for 30 s, and a point InfluxDB
 * refuses. After each, the ledger holds every acknowledged (host, seq) against what InfluxDB has,
 * and the bridge's GET /metrics says what a user would see.
 */
import { describe, expect, it } from 'vitest';
import { sleep } from '../../common/backoff.js';
import { bridgeEnv, startBridge, type BridgeProcess } from '../harness/bridge.js';
import { startHttpFaultProxy, type HttpFaultProxy } from '../harness/http-fault-proxy.js';
import { count, flowing, ledger, startStream } from '../harness/load.js';
import { waitFor } from '../harness/mqtt.js';
import { useServers } from '../harness/servers.js';

const DB = 'db_errors';
const proxies: HttpFaultProxy[] = [];
const servers = useServers([DB], { cleanup: () => Promise.all(proxies.map((p) => p.close())) });

const RETRIES = 'hostpulse_bridge_write_retries_total';

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
  ])(
    '%i with Retry-After: %i s: no write comes before it has elapsed; everything is stored after',
    async (status, seconds) => {
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
    },
    60_000,
  );

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
    await waitFor('the refused point counted', async () =>
      (await bridge.metric('hostpulse_bridge_dropped_total{reason="database_refused"}')) === 1 ? true : undefined,
    );
    await sleep(1000);
    const refusals = proxy.requestsTo('/write').filter((r) => r.status === 400);
    expect(refusals.length).toBeGreaterThanOrEqual(1);
    expect(refusals.length).toBeLessThanOrEqual(12); // halving isolates it in about log2(batch) steps, then it is dropped
    expect(await bridge.metric(RETRIES)).toBe(0);
    expect(bridge.logs().filter((l) => l.msg === 'database refused a point, dropped')).toHaveLength(1);
    expect(await bridge.stop()).toBe(0);
  }, 60_000);
});
