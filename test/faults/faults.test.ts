/**
 * Faults, with a ledger: every (host, seq) a publisher got acknowledged is compared with what
 * InfluxDB holds. The bridge is killed with SIGKILL mid-stream, several times; with its durable queue
 * nothing is lost. The negative control, the same with the queue in memory, must show a loss, or the
 * ledger could not see one.
 */
import { appendFileSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISK_QUEUE_DEFAULTS } from '../../common/disk-queue.js';
import { MqttConnection } from '../../common/mqtt.js';
import { runCli, stopAllCli, type Running } from '../harness/cli.js';
import { startInfluxDB, type InfluxDB } from '../harness/influxdb.js';
import { captureLogger } from '../harness/logs.js';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.js';
import { waitFor } from '../harness/mqtt.js';

const T0 = Date.now() - 3_600_000;
let broker: Mosquitto;
let influx: InfluxDB;

beforeAll(async () => {
  // As the shipped config: persistent, and no 1,000-message cap on what is queued for the bridge.
  [broker, influx] = await Promise.all([
    startMosquitto({ persistent: true, config: ['allow_anonymous true', 'max_queued_messages 0'] }),
    startInfluxDB(['durable', 'memory', 'full']),
  ]);
});
afterAll(async () => {
  await stopAllCli();
  await Promise.all([broker?.stop(), influx?.stop()]);
});

/** Publishes `perHost` samples for each host at about `rate` messages a second; resolves with what the broker acknowledged. */
async function publishLoad(prefix: string, hosts: number, perHost: number, rate: number): Promise<Map<string, number>> {
  const publisher = new MqttConnection({ url: broker.url, clientId: `${prefix}-load`, clean: true, reconnect: false }, captureLogger('load').logger);
  await publisher.waitConnected(5000);
  const acked = new Map<string, number>();
  const pending: Promise<void>[] = [];
  const interval = 1000 / rate;
  let next = Date.now();
  for (let seq = 0; seq < perHost; seq++) {
    for (let h = 0; h < hosts; h++) {
      const host = `${prefix}-${h}`;
      const payload = JSON.stringify({ value: seq % 100, ts: T0 + seq, seq });
      pending.push(publisher.publish(`sensors/${host}/cpu_usage`, payload, { qos: 1 }).then(() => void acked.set(host, (acked.get(host) ?? 0) + 1)));
      next += interval;
      const wait = next - Date.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    }
  }
  await Promise.all(pending);
  await publisher.close();
  return acked;
}

/** Points stored per host. */
async function ledger(db: string, prefix: string): Promise<Map<string, number>> {
  const r = await influx.query(`SELECT count("usage") FROM "cpu" WHERE "host" =~ /^${prefix}-/ GROUP BY "host"`, db);
  return new Map(r.series.map((s) => [s.tags?.['host'] ?? '', s.values[0]?.[1] as number]));
}

function bridge(db: string, clientId: string, queueDir: string, extra: Record<string, string> = {}): Running {
  return runCli(['bridge'], {
    MQTT_URL: broker.url,
    MQTT_CLIENT_ID: clientId,
    INFLUX_API: '1',
    INFLUX_URL: influx.url,
    INFLUX_DATABASE: db,
    QUEUE_DIR: queueDir,
    ...extra,
  });
}

describe('bridge killed with SIGKILL mid-stream', () => {
  it('loses nothing with its durable queue, three kills in one run', async () => {
    const queue = mkdtempSync(join(tmpdir(), 'hostpulse-fault-queue-'));
    // A long flush interval keeps acknowledged points in the queue, not yet in InfluxDB, when the kill comes.
    const env = { FLUSH_INTERVAL: '2s', BATCH_SIZE: '100000', STATS_INTERVAL: '1s' };
    let current = bridge('durable', 'fault-durable', queue, env);
    await current.waitForLog((l) => l.msg === 'subscribed');
    const load = publishLoad('dur', 4, 1000, 800); // ~5 s
    for (let kill = 0; kill < 3; kill++) {
      await current.waitForLog((l) => l.msg === 'stats' && (l['received'] as number) > 300, 20_000);
      expect(await current.stop('SIGKILL')).toBeNull();
      current = bridge('durable', 'fault-durable', queue, env);
      await current.waitForLog((l) => l.msg === 'connected to broker');
    }
    const acked = await load;
    const expected = [...acked.values()].reduce((a, b) => a + b, 0);
    expect(expected).toBe(4000);
    const stored = await waitFor(
      'every acknowledged sample stored',
      async () => {
        const l = await ledger('durable', 'dur');
        return [...l.values()].reduce((a, b) => a + b, 0) >= expected ? l : undefined;
      },
      40_000,
    );
    expect(stored).toEqual(acked);
    expect(await current.stop()).toBe(0);
  });

  it('negative control: with the queue in memory, the same kill loses acknowledged samples, and the ledger shows it', async () => {
    const env = { FLUSH_INTERVAL: '30s', BATCH_SIZE: '100000', STATS_INTERVAL: '1s' };
    const first = bridge('memory', 'fault-memory', 'off', env);
    await first.waitForLog((l) => l.msg === 'subscribed');
    const acked = await publishLoad('mem', 2, 300, 600);
    await first.waitForLog((l) => l.msg === 'stats' && (l['received'] as number) >= 600, 20_000);
    expect(await first.stop('SIGKILL')).toBeNull();
    const second = bridge('memory', 'fault-memory', 'off', { ...env, FLUSH_INTERVAL: '100ms' });
    await second.waitForLog((l) => l.msg === 'connected to broker');
    await new Promise((r) => setTimeout(r, 2000));
    const stored = await ledger('memory', 'mem');
    const total = [...stored.values()].reduce((a, b) => a + b, 0);
    expect([...acked.values()].reduce((a, b) => a + b, 0)).toBe(600);
    expect(total).toBeLessThan(600);
    expect(await second.stop()).toBe(0);
  });
});

describe('the queue disk fills up while the bridge runs', () => {
  it('acknowledges nothing it could not write; once there is room again, every sample is stored', async () => {
    const queue = mkdtempSync(join(tmpdir(), 'hostpulse-fault-full-'));
    // A queue whose active segment is 300 bytes short of full (a sparse file, all of it written
    // already), so that the bridge soon rolls to the next segment: /dev/full, where every write fails.
    const nearlyFull = DISK_QUEUE_DEFAULTS.segmentBytes - 300;
    writeFileSync(join(queue, 'seg-000000001.v2.log'), '');
    truncateSync(join(queue, 'seg-000000001.v2.log'), nearlyFull - 1);
    appendFileSync(join(queue, 'seg-000000001.v2.log'), '\n');
    writeFileSync(join(queue, 'cursor.json'), JSON.stringify({ segment: 1, offset: nearlyFull }));
    const first = bridge('full', 'fault-full', queue, { STATS_INTERVAL: '1s' });
    await first.waitForLog((l) => l.msg === 'subscribed');
    symlinkSync('/dev/full', join(queue, 'seg-000000002.v2.log'));
    const acked = await publishLoad('full', 2, 200, 400);
    await first.waitForLog((l) => l.msg.startsWith('could not keep the messages received') && String(l['err']).includes('ENOSPC'), 20_000);
    expect(await first.stop('SIGKILL')).toBeNull();
    // Room again: the failed segment is gone.
    rmSync(join(queue, 'seg-000000002.v2.log'));
    const second = bridge('full', 'fault-full', queue);
    await second.waitForLog((l) => l.msg === 'connected to broker');
    const stored = await waitFor(
      'every acknowledged sample stored',
      async () => {
        const l = await ledger('full', 'full');
        return [...l.values()].reduce((a, b) => a + b, 0) >= 400 ? l : undefined;
      },
      30_000,
    );
    expect(stored).toEqual(acked);
    expect(await second.stop()).toBe(0);
  });
});
