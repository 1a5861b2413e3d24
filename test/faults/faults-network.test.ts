/**
 * Network faults between the publisher and the broker, and between the bridge and the broker,
 * made by a TCP proxy of the test's own on each link: a 20 s blackhole, a blackhole held until
 * MQTT keepalive notices it, connections reset every 500 ms, and a fleet of clients reset as they
 * connect. The publishers are MQTT connections of the product's own (common/mqtt.ts, as the
 * agent's), the bridge is the built CLI.
 */
import { REORDER_MS } from '../../bridge/gaps.js';
import { describe, expect, it } from 'vitest';
import { MqttConnection } from '../../common/mqtt.js';
import { sleep } from '../../common/backoff.js';
import { bridgeEnv, startBridge, type BridgeProcess } from '../harness/bridge.js';
import { count, ledger, startStream, type Stream } from '../harness/load.js';
import { captureLogger } from '../harness/logs.js';
import { RECONNECTED_WITHIN_MS, waitFor } from '../harness/mqtt.js';
import { useServers } from '../harness/servers.js';
import { rssBytes } from '../harness/proc.js';
import { startTcpProxy, type TcpProxy } from '../harness/tcp-proxy.js';

const DB = 'network_faults';
const MiB = 1024 * 1024;
const proxies: TcpProxy[] = [];
const servers = useServers([DB], { cleanup: () => Promise.all(proxies.map((p) => p.close())) });

interface Links {
  readonly publisher: TcpProxy;
  readonly bridgeLink: TcpProxy;
  readonly bridge: BridgeProcess;
  readonly stream: Stream;
}

/** A bridge and a publisher, each through its own proxy, the stream flowing end to end. */
async function throughProxies(prefix: string, perHost: number, rate: number, keepaliveSeconds?: number): Promise<Links> {
  const [publisher, bridgeLink] = await Promise.all([startTcpProxy(servers.broker.port), startTcpProxy(servers.broker.port)]);
  proxies.push(publisher, bridgeLink);
  const keepalive: Record<string, string> = keepaliveSeconds ? { MQTT_KEEPALIVE: `${keepaliveSeconds}s` } : {};
  const bridge = await startBridge(bridgeEnv(`mqtt://127.0.0.1:${bridgeLink.port}`, servers.influx.url, DB, `${prefix}-bridge`, keepalive));
  const stream = startStream({ url: `mqtt://127.0.0.1:${publisher.port}`, prefix, hosts: 2, perHost, rate, ...(keepaliveSeconds ? { keepaliveSeconds } : {}) });
  await waitFor('the stream stored', async () => {
    const r = await servers.influx.query(`SELECT count("usage") FROM "cpu" WHERE "host" =~ /^${prefix}-/`, DB);
    return ((r.series[0]?.values[0]?.[1] as number | undefined) ?? 0) >= 100 ? true : undefined;
  });
  return { publisher, bridgeLink, bridge, stream };
}

describe('network faults on the links to the broker', () => {
  it('a 20 s blackhole on both links: once it lifts every acknowledged sample is stored, memory stays bounded', async () => {
    const { publisher, bridgeLink, bridge, stream } = await throughProxies('hole', 700, 50);
    const rssBefore = rssBytes(bridge.child);
    publisher.blackhole();
    bridgeLink.blackhole();
    const [ackedBefore, sentBefore] = [stream.ackedCount(), stream.sent()];
    await sleep(20_000);
    const [ackedHeld, sentHeld] = [stream.ackedCount() - ackedBefore, stream.sent() - sentBefore];
    publisher.restore();
    bridgeLink.restore();
    const acked = await stream.done;
    expect(sentHeld).toBeGreaterThan(900); // the stream went on into the hole
    expect(ackedHeld).toBeLessThanOrEqual(20); // and nothing came back through it
    expect(count(acked)).toBe(1400);
    expect(await ledger(servers.influx, DB, 'hole', acked)).toEqual([]);
    await sleep(REORDER_MS + 1000); // a hole in seq counts once it stayed open that long
    expect(await bridge.metric('hostpulse_bridge_missing_total')).toBe(0); // and the bridge, counting gaps in seq, agrees
    expect(rssBytes(bridge.child) - rssBefore).toBeLessThan(64 * MiB);
    expect(bridge.child.exitCode).toBeNull();
    expect(await bridge.stop()).toBe(0);
  }, 90_000);

  it('a blackhole held until MQTT keepalive (MQTT_KEEPALIVE=8s) notices it: both ends detect it within 1.5 keepalives, reconnect, and nothing is lost', async () => {
    const { publisher, bridgeLink, bridge, stream } = await throughProxies('dead', 600, 40, 8);
    const from = Date.now();
    publisher.blackhole();
    bridgeLink.blackhole();
    const lost = (log: () => readonly { msg: string; [key: string]: unknown }[]) => () =>
      log().find((l) => l.msg === 'broker unreachable, retrying' && (l.time as number) >= from);
    const [bridgeSaw, publisherSaw] = await Promise.all([
      waitFor('the bridge to notice', lost(bridge.logs), 30_000),
      waitFor(
        'the publisher to notice',
        lost(() => stream.log),
        30_000,
      ),
    ]);
    publisher.restore();
    bridgeLink.restore();
    for (const seen of [bridgeSaw, publisherSaw]) {
      expect((seen.time as number) - from).toBeLessThanOrEqual(13_000);
      expect(seen['reason']).toMatch(/keepalive/i);
    }
    const restored = await bridge.waitForLog((l) => l.msg === 'broker connection restored' && (l.time as number) >= from, RECONNECTED_WITHIN_MS);
    expect(restored['sessionPresent']).toBe(true);
    const acked = await stream.done;
    expect(count(acked)).toBe(1200);
    expect(await ledger(servers.influx, DB, 'dead', acked)).toEqual([]);
    await sleep(REORDER_MS + 1000); // a hole in seq counts once it stayed open that long
    expect(await bridge.metric('hostpulse_bridge_missing_total')).toBe(0); // and the bridge, counting gaps in seq, agrees
    expect(await bridge.stop()).toBe(0);
  }, 120_000);

  it('connections reset every 500 ms for 10 s: reconnects back off (no tight loop), nothing is lost, memory stays bounded', async () => {
    const { publisher, bridgeLink, bridge, stream } = await throughProxies('reset', 500, 50);
    const rssBefore = rssBytes(bridge.child);
    const from = Date.now();
    let resets = 0;
    const timer = setInterval(() => (resets += publisher.reset() + bridgeLink.reset()), 500);
    await sleep(10_000);
    clearInterval(timer);
    const acked = await stream.done;
    expect(resets).toBeGreaterThanOrEqual(6);
    expect(count(acked)).toBe(1000);
    expect(await ledger(servers.influx, DB, 'reset', acked)).toEqual([]);
    await sleep(REORDER_MS + 1000); // a hole in seq counts once it stayed open that long
    expect(await bridge.metric('hostpulse_bridge_missing_total')).toBe(0); // and the bridge, counting gaps in seq, agrees
    for (const proxy of [publisher, bridgeLink]) {
      const attempts = proxy.accepted.filter((t) => t >= from && t < from + 10_000);
      const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
      expect(attempts.length).toBeGreaterThanOrEqual(3);
      expect(attempts.length).toBeLessThanOrEqual(10); // at least 1 s apart: backoff, not a tight loop
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(950);
    }
    expect(rssBytes(bridge.child) - rssBefore).toBeLessThan(64 * MiB);
    expect(bridge.child.exitCode).toBeNull();
    expect(await bridge.stop()).toBe(0);
  }, 60_000);

  it('a fleet whose connections are reset as they open: each client backs off, and the retries spread out (jitter) instead of coming in step', async () => {
    const fleet = await Promise.all(Array.from({ length: 10 }, () => startTcpProxy(servers.broker.port)));
    proxies.push(...fleet);
    const clients = fleet.map(
      (proxy, i) =>
        new MqttConnection({ url: `mqtt://127.0.0.1:${proxy.port}`, clientId: `fleet-${i}`, clean: true, reconnect: true }, captureLogger('fleet').logger),
    );
    await Promise.all(clients.map((c) => c.waitConnected(5000)));
    for (const proxy of fleet) proxy.refuse();
    const droppedAt = Date.now();
    for (const proxy of fleet) proxy.reset(); // all dropped at once, as by a broker restart
    await sleep(5000);
    for (const proxy of fleet) proxy.restore();
    await Promise.all(clients.map((c) => c.waitConnected(40_000)));
    const attempts = fleet.map((proxy) => proxy.accepted.filter((t) => t > droppedAt));
    for (const a of attempts) {
      const gaps = [a[0]! - droppedAt, ...a.slice(1).map((t, i) => t - a[i]!)];
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(950); // never a tight loop
      expect(a.filter((t) => t < droppedAt + 5000).length).toBeLessThanOrEqual(5); // 1 s doubling: 3 or 4 in 5 s
    }
    // The first retry after the drop, and the second after one failed attempt: spread out, not in step
    // (ten clients drawing from 1–2 s, then from 1–4 s).
    const first = attempts.map((a) => a[0]! - droppedAt);
    expect(Math.max(...first) - Math.min(...first)).toBeGreaterThanOrEqual(300);
    const second = attempts.map((a) => a[1]! - a[0]!);
    expect(Math.max(...second) - Math.min(...second)).toBeGreaterThanOrEqual(300);
    await Promise.all(clients.map((c) => c.close(true)));
  }, 60_000);
});
