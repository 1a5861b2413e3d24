/**
 * Broker faults while a publisher streams and the bridge stores: a graceful restart, a crash
 * (SIGKILL) with a backlog held for the bridge, a 30 s freeze (SIGSTOP), and a bridge away for
 * longer than the broker's queue allows. After each, the ledger holds every (host, seq) the broker
 * acknowledged against what InfluxDB has.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REORDER_MS } from '../../bridge/gaps.js';
import { sleep } from '../../common/backoff.js';
import { bridgeEnv, startBridge } from '../harness/bridge.js';
import { stopAllCli } from '../harness/cli.js';
import { startInfluxDB, type InfluxDB } from '../harness/influxdb.js';
import { ackedWithin, count, ledger, lost, startStream, storedSeqs } from '../harness/load.js';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.js';
import { RECONNECTED_WITHIN_MS, waitFor } from '../harness/mqtt.js';
import { crash, freeze, thaw } from '../harness/proc.js';
import { UNCAPPED } from '../harness/servers.js';

const DB = 'broker_faults';

let influx: InfluxDB;
const brokers = new Set<Mosquitto>();

async function broker(options: Parameters<typeof startMosquitto>[0]): Promise<Mosquitto> {
  const b = await startMosquitto(options);
  brokers.add(b);
  return b;
}

/** Starts a stopped broker again (same port, config and data); the new handle replaces the old one. */
async function restart(old: Mosquitto): Promise<Mosquitto> {
  brokers.delete(old);
  const b = await old.start();
  brokers.add(b);
  return b;
}

beforeAll(async () => {
  influx = await startInfluxDB([DB]);
});
afterAll(async () => {
  await stopAllCli();
  await Promise.all([...brokers].map((b) => b.stop()));
  await influx?.stop();
});

describe('broker faults while a publisher streams and the bridge stores', () => {
  it('graceful restart: every acknowledged sample is stored, the bridge resumes its session', async () => {
    let mq = await broker({ persistent: true, config: UNCAPPED });
    const bridge = await startBridge(bridgeEnv(mq.url, influx.url, DB, 'restart-bridge'));
    const stream = startStream({ url: mq.url, prefix: 'restart', hosts: 2, perHost: 800, rate: 400 });
    await waitFor('a quarter acknowledged', () => (stream.ackedCount() >= 400 ? true : undefined));
    await mq.halt();
    await sleep(1000);
    mq = await restart(mq);
    const acked = await stream.done;
    expect(count(acked)).toBe(1600);
    expect(stream.log.some((l) => l.msg === 'broker unreachable, retrying')).toBe(true); // the publisher was cut off
    const restored = await bridge.waitForLog((l) => l.msg === 'broker connection restored', RECONNECTED_WITHIN_MS);
    expect(restored['sessionPresent']).toBe(true);
    expect(await ledger(influx, DB, 'restart', acked)).toEqual([]);
    expect(await bridge.metric('hostpulse_bridge_missing_total')).toBe(0); // and the bridge, counting gaps in seq, agrees
    expect(bridge.child.exitCode).toBeNull();
    expect(await bridge.stop()).toBe(0);
  }, 120_000);

  /**
   * The bridge is stalled (SIGSTOP) while the stream goes on, so the broker holds a backlog for it
   * when it is killed: what is at stake is what only the broker has. Returns what was lost, split
   * into samples acknowledged well before the kill (100 ms) and in its last moment.
   */
  async function crashWithBacklog(
    persistent: boolean,
    prefix: string,
  ): Promise<{ acked: number; settledLost: string[]; lastMomentLost: number; lost: number; missing: number }> {
    // Persistent and saved on every change (the harness's mode; the shipped config saves every 10 s), so the ledger can be exact.
    let mq = await broker(persistent ? { persistent, config: UNCAPPED } : { config: UNCAPPED });
    const bridge = await startBridge(bridgeEnv(mq.url, influx.url, DB, `${prefix}-bridge`));
    const stream = startStream({ url: mq.url, prefix, hosts: 2, perHost: 500, rate: 400 });
    await waitFor('some acknowledged', () => (stream.ackedCount() >= 200 ? true : undefined));
    freeze(bridge.child);
    await waitFor('a backlog held for the bridge', () => (stream.ackedCount() >= 600 ? true : undefined));
    const killedAt = Date.now();
    await crash(mq.child);
    mq = await restart(mq);
    const restartedAt = Date.now();
    thaw(bridge.child);
    const acked = await stream.done;
    await bridge.waitForLog((l) => l.msg === 'broker connection restored', RECONNECTED_WITHIN_MS);
    const settledLost = await ledger(influx, DB, prefix, ackedWithin(stream, 0, killedAt - 100), persistent ? 30_000 : 5000);
    if (persistent) expect(await ledger(influx, DB, prefix, ackedWithin(stream, restartedAt, Number.POSITIVE_INFINITY))).toEqual([]);
    // The bridge sees a gap in seq at the next sample of each host.
    const next = startStream({ url: mq.url, prefix, hosts: 2, perHost: 1, firstSeq: 500, rate: 100 });
    expect(await ledger(influx, DB, prefix, await next.done)).toEqual([]);
    const stored = await storedSeqs(influx, DB, prefix);
    const lastMomentLost = count(lost(ackedWithin(stream, killedAt - 100, restartedAt), stored));
    await sleep(REORDER_MS + 1000); // a hole in seq counts once it stayed open that long
    const missing = await bridge.metric('hostpulse_bridge_missing_total');
    expect(bridge.child.exitCode).toBeNull();
    expect(await bridge.stop()).toBe(0);
    return { acked: count(acked), settledLost, lastMomentLost, lost: count(lost(acked, stored)), missing };
  }

  it('killed with SIGKILL mid-stream, persistent and saved on changes: every sample acknowledged before the crash is stored', async () => {
    const { acked, settledLost, lastMomentLost, lost: gone, missing } = await crashWithBacklog(true, 'crash');
    expect(acked).toBe(1000);
    expect(settledLost).toEqual([]);
    expect(missing).toBe(gone); // the bridge, counting gaps in seq, sees what the ledger sees
    // Mosquitto 2.0 sends the PUBACK before its save on changes: a sample acknowledged in the
    // very last moment before the kill can be lost (seen: 1 in about a quarter of the runs).
    expect(lastMomentLost).toBeLessThanOrEqual(5);
  }, 120_000);

  it('negative control: the same crash without persistence loses the backlog, and the ledger shows it', async () => {
    const { acked, settledLost, lost: gone, missing } = await crashWithBacklog(false, 'volatile');
    expect(acked).toBe(1000);
    expect(settledLost.length).toBeGreaterThan(0);
    expect(missing).toBe(gone); // the bridge, counting gaps in seq, sees the same loss
  }, 60_000);

  it('frozen for 30 s (SIGSTOP, then SIGCONT): every acknowledged sample is stored, nothing crashes', async () => {
    const mq = await broker({ persistent: true, config: UNCAPPED });
    const bridge = await startBridge(bridgeEnv(mq.url, influx.url, DB, 'freeze-bridge'));
    const stream = startStream({ url: mq.url, prefix: 'freeze', hosts: 2, perHost: 1000, rate: 50 });
    await waitFor('the stream flowing', () => (stream.ackedCount() >= 100 ? true : undefined));
    freeze(mq.child);
    const [ackedBefore, sentBefore] = [stream.ackedCount(), stream.sent()];
    await sleep(30_000);
    const [ackedFrozen, sentFrozen] = [stream.ackedCount() - ackedBefore, stream.sent() - sentBefore];
    thaw(mq.child);
    const acked = await stream.done;
    // The freeze was real: nothing was acknowledged while samples kept coming.
    expect(ackedFrozen).toBeLessThanOrEqual(20);
    expect(sentFrozen).toBeGreaterThan(1000);
    expect(count(acked)).toBe(2000);
    expect(await ledger(influx, DB, 'freeze', acked)).toEqual([]);
    expect(await bridge.metric('hostpulse_bridge_missing_total')).toBe(0); // and the bridge, counting gaps in seq, agrees
    expect(bridge.child.exitCode).toBeNull();
    expect(await bridge.stop()).toBe(0);
  }, 90_000);
});

describe('the bridge away for longer than the broker queues for it', () => {
  it('loses what is over max_queued_messages: the ledger, the broker log and the bridge (a gap in seq) show it', async () => {
    const mq = await broker({ config: ['allow_anonymous true', 'max_queued_messages 100', 'log_type notice'] });
    const env = bridgeEnv(mq.url, influx.url, DB, 'away-bridge');
    const first = await startBridge(env); // creates the session and its subscription
    expect(await first.stop()).toBe(0);
    const stream = startStream({ url: mq.url, prefix: 'away', hosts: 1, perHost: 500, rate: 1000 });
    const acked = await stream.done;
    await stream.close();
    expect(count(acked)).toBe(500); // MQTT 3.1.1: the broker acknowledges what it then drops
    const second = await startBridge(env, { until: 'connected' });
    await waitFor('the queued samples received', async () => ((await second.metric('hostpulse_bridge_received_total')) >= 100 ? true : undefined));
    const problems = await ledger(influx, DB, 'away', acked, 3000);
    expect(problems).toEqual(['away-0: 400 of 500 acknowledged samples missing (seq 100…499)']);
    // What a user can alert on: Mosquitto's own line.
    expect(mq.output()).toContain('Outgoing messages are being dropped for client away-bridge.');
    expect(await second.metric('hostpulse_bridge_received_total')).toBe(100);
    // The bridge sees the gap in the agent's numbers at its next sample.
    const next = startStream({ url: mq.url, prefix: 'away', hosts: 1, perHost: 1, firstSeq: 500, rate: 1000 });
    await next.done;
    await waitFor('the gap counted', async () => ((await second.metric('hostpulse_bridge_missing_total')) === 400 ? true : undefined));
    expect(await second.stop()).toBe(0);
  }, 60_000);
});
