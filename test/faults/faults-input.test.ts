/**
 * Hostile and broken input, live on real Mosquitto (configured with the shipped packet size limit)
 * and InfluxDB 1.6: clocks that are off, a flood of garbage from a raw client interleaved with
 * valid traffic, names built to inject line protocol, a packet 10× the broker's limit. Each reject
 * must be counted by reason on GET /metrics, valid traffic stored in full, InfluxDB's schema
 * untouched. Plus properties of the contract and the line encoder, fuzzed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toLine } from '../../bridge/points.js';
import type { MqttConnection } from '../../common/mqtt.js';
import { HOST_PATTERN, METRIC_PATTERN, decodeMessage } from '../../protocol/index.js';
import { bridgeEnv, rejectedByReason, startBridge, type BridgeProcess } from '../harness/bridge.js';
import { count, ledger, startStream } from '../harness/load.js';
import { connect, waitFor } from '../harness/mqtt.js';
import { UNCAPPED, useServers } from '../harness/servers.js';
import { rawConnect } from '../harness/raw-mqtt.js';

/** The shipped mosquitto.conf's limit. */
const MAX_PACKET_SIZE = 65536;
const DB_GARBAGE = 'garbage';
const servers = useServers(['clock', DB_GARBAGE, 'names', 'size', 'cleared'], {
  brokerConfig: [...UNCAPPED, `max_packet_size ${MAX_PACKET_SIZE}`, 'log_type notice'],
});

async function publisher(): Promise<MqttConnection> {
  const c = connect(servers.broker.url);
  await c.waitConnected(5000);
  return c;
}

/** Waits until the bridge has received `n` messages in all. */
async function received(bridge: BridgeProcess, n: number): Promise<void> {
  await waitFor(`${n} messages received`, async () => ((await bridge.metric('hostpulse_bridge_received_total')) >= n ? true : undefined), 20_000);
}

const hostsOf = async (db: string): Promise<string[]> =>
  (await servers.influx.query('SHOW TAG VALUES WITH KEY = "host"', db)).series.flatMap((s) => s.values.map((v) => v[1] as string));

describe('clocks that are off', () => {
  it('rejects samples stamped over MAX_FUTURE ahead or before 2001 and counts them by reason; late samples are stored', async () => {
    const bridge = await startBridge(bridgeEnv(servers.broker.url, servers.influx.url, 'clock', 'clock-bridge'));
    const now = Date.now();
    const cases: [string, number, 'stored' | 'future_timestamp' | 'bad_timestamp'][] = [
      ['an hour late (after an outage)', now - 3_600_000, 'stored'],
      ['30 days late', now - 30 * 86_400_000, 'stored'],
      ['4 min ahead (within MAX_FUTURE, 5 min)', now + 240_000, 'stored'],
      ['an hour ahead', now + 3_600_000, 'future_timestamp'],
      ['6 min ahead', now + 360_000, 'future_timestamp'],
      ['year 2500', Date.UTC(2500, 0, 1), 'future_timestamp'],
      ['seconds instead of milliseconds', Math.floor(now / 1000), 'bad_timestamp'],
      ['1999', Date.UTC(1999, 0, 1), 'bad_timestamp'],
      ['zero', 0, 'bad_timestamp'],
      ['negative', -now, 'bad_timestamp'],
      ['beyond 2^53', 2 ** 53 + 2, 'bad_timestamp'],
    ];
    const c = await publisher();
    for (const [i, [, ts]] of cases.entries()) await c.publish('sensors/clock-pc/cpu_temp', JSON.stringify({ value: 30 + i, ts, seq: i }), { qos: 1 });
    await c.close();
    await received(bridge, cases.length);
    const stored = await waitFor('the late and slightly early samples', async () => {
      const r = await servers.influx.query(`SELECT "temp" FROM "cpu" WHERE "host" = 'clock-pc'`, 'clock');
      const rows = r.series[0]?.values ?? [];
      return rows.length >= 3 ? rows : undefined;
    });
    const expected = cases.map(([, ts], i) => [ts, 30 + i, cases[i]![2]] as const).filter(([, , fate]) => fate === 'stored');
    expect(stored).toEqual(expected.map(([ts, value]) => [ts, value]).sort((a, b) => a[0]! - b[0]!));
    expect(rejectedByReason(await bridge.metrics())).toEqual({ future_timestamp: 3, bad_timestamp: 5 });
    expect(await bridge.stop()).toBe(0);
  });
  it("a sample older than the retention policy (90 days, as the stack's bucket) is refused by InfluxDB: dropped and counted, not retried", async () => {
    await servers.influx.query('CREATE DATABASE "retained" WITH DURATION 90d');
    const bridge = await startBridge(bridgeEnv(servers.broker.url, servers.influx.url, 'retained', 'retained-bridge'));
    const now = Date.now();
    const c = await publisher();
    await c.publish('sensors/old-pc/cpu_temp', JSON.stringify({ value: 30, ts: now - 100 * 86_400_000, seq: 0 }), { qos: 1 });
    await c.publish('sensors/old-pc/cpu_temp', JSON.stringify({ value: 31, ts: now, seq: 1 }), { qos: 1 });
    await c.close();
    await waitFor('the old sample refused', async () =>
      (await bridge.metric('hostpulse_bridge_dropped_total{reason="database_refused"}')) === 1 ? true : undefined,
    );
    const rows = await waitFor(
      'the recent sample',
      async () => (await servers.influx.query(`SELECT "temp" FROM "cpu" WHERE "host" = 'old-pc'`, 'retained')).series[0]?.values,
    );
    expect(rows).toEqual([[now, 31]]);
    expect(await bridge.metric('hostpulse_bridge_write_retries_total')).toBe(0);
    expect(rejectedByReason(await bridge.metrics())).toEqual({});
    expect(bridge.logs().find((l) => l.msg === 'database refused a point, dropped')?.['err']).toMatch(/points beyond retention policy dropped=1/);
    expect(await bridge.stop()).toBe(0);
  });
});

describe('a flood of garbage from a raw client, interleaved with valid traffic', () => {
  /** What the garbage is, where it goes, and the reason the bridge must count it under. */
  function garbage(): [string, Buffer, string][] {
    const out: [string, Buffer, string][] = [];
    const add = (topic: string, payload: string | Buffer, reason: string): void => void out.push([topic, Buffer.from(payload), reason]);
    // Random bytes (never valid UTF-8: the first byte is 0xff).
    for (const bytes of fc.sample(fc.uint8Array({ minLength: 1, maxLength: 300 }), { numRuns: 200, seed: 5 })) {
      add('sensors/fuzz-pc/cpu_temp', Buffer.concat([Buffer.from([0xff]), bytes]), 'bad_payload');
    }
    for (let i = 0; i < 10; i++) add('sensors/fuzz-pc/cpu_temp', JSON.stringify({ value: 40, pad: 'x'.repeat(20_000 + i) }), 'too_large');
    add('sensors/fuzz-pc/cpu_temp', `{"value":${'['.repeat(1500)}${']'.repeat(1500)}}`, 'bad_value');
    add('sensors/fuzz-pc/cpu_temp', `{"value":1,"ts":${'{"a":'.repeat(600)}1${'}'.repeat(600)}}`, 'bad_timestamp');
    add('sensors/fuzz-pc/cpu_temp', '['.repeat(4000), 'bad_payload');
    for (const v of ['"42"', 'true', '[1]', '{}', 'null']) add('sensors/fuzz-pc/cpu_temp', `{"value":${v}}`, 'bad_value');
    for (const p of ['[1,2]', '"42"', 'null', 'true', '', 'ON', '0x10', '{"value":4']) add('sensors/fuzz-pc/cpu_temp', p, 'bad_payload');
    for (const p of ['NaN', 'Infinity', '-Infinity', '{"value":NaN}', '{"value":Infinity}']) add('sensors/fuzz-pc/cpu_temp', p, 'bad_payload');
    for (const p of ['1e400', '-1e400', '{"value":1e999}']) add('sensors/fuzz-pc/cpu_temp', p, 'bad_value');
    add('sensors/fuzz-pc/cpu_temp', '{"value":9007199254740993}', 'out_of_range');
    add('sensors/fuzz-pc/uptime', String(2 ** 53 + 2), 'out_of_range');
    add('sensors/fuzz-pc/cpu_temp', `{"value":1,"ts":${2 ** 53 + 2}}`, 'bad_timestamp');
    add('sensors/fuzz-pc/cpu_temp', `{"value":1,"ts":"${Date.now()}"}`, 'bad_timestamp');
    add('sensors/fuzz-pc/cpu_temp', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'bad_payload');
    add('sensors/fuzz-pc/availability', 'maybe', 'bad_payload');
    // Topics with odd levels that still match the bridge's subscription (sensors/+/+).
    for (const host of ['', 'FUZZ', '-fuzz', 'fuzz pc', 'fuzz_pc', 'a'.repeat(64), 'fü']) add(`sensors/${host}/cpu_temp`, '40', 'bad_host');
    for (const metric of ['', 'CPU_TEMP', 'cpu_temp ', 'fan_rpm', 'x'.repeat(65), 'gpu100_temp']) add(`sensors/fuzz-pc/${metric}`, '40', 'unknown_metric');
    // Topics outside the subscription: acknowledged by the broker, never seen by the bridge.
    for (const topic of ['sensors/fuzz-pc/cpu_temp/extra', 'sensors', '/sensors/fuzz-pc/cpu_temp', 'sensors/fuzz-pc', `${'a/'.repeat(150)}b`])
      add(topic, '40', 'unseen');
    return out;
  }

  it('keeps running, counts every reject by reason, and stores the valid traffic in full', async () => {
    const bridge = await startBridge(bridgeEnv(servers.broker.url, servers.influx.url, 'garbage', 'garbage-bridge'));
    const stream = startStream({ url: servers.broker.url, prefix: 'valid', hosts: 2, perHost: 400, rate: 200 });
    const raw = await rawConnect(servers.broker.port, { clientId: 'garbage-raw' });
    const sent = garbage();
    for (const [topic, payload] of sent)
      expect(await raw.publish(topic, payload, 1), `${topic} ${payload.length} bytes: ${servers.broker.output().slice(-300)}`).toBe('acked');
    raw.end();
    // What the broker itself refuses: it disconnects the client (each on a connection of its own):
    // a topic that is not UTF-8, holds NUL, a wildcard, or more than 200 levels.
    const refused = [
      Buffer.from([0x73, 0x2f, 0xff, 0xfe, 0x2f, 0x78]),
      Buffer.from('sensors/fuzz\u0000pc/cpu_temp'),
      Buffer.from('sensors/+/cpu_temp'),
      Buffer.from('sensors/#'),
      Buffer.from(`sensors/${'a/'.repeat(300)}b`),
    ];
    for (const [i, topic] of refused.entries()) {
      const client = await rawConnect(servers.broker.port, { clientId: `garbage-refused-${i}` });
      expect(await client.publish(topic, '40', 1)).toBe('closed');
    }
    const acked = await stream.done;
    const delivered = sent.filter(([, , reason]) => reason !== 'unseen');
    await received(bridge, count(acked) + delivered.length);
    expect(await ledger(servers.influx, DB_GARBAGE, 'valid', acked)).toEqual([]);
    const expected: Record<string, number> = {};
    for (const [, , reason] of delivered) expected[reason] = (expected[reason] ?? 0) + 1;
    const metrics = await bridge.metrics();
    expect(rejectedByReason(metrics)).toEqual(expected);
    expect(metrics.get('hostpulse_bridge_received_total')).toBe(count(acked) + delivered.length);
    expect(await hostsOf(DB_GARBAGE)).toEqual(['valid-0', 'valid-1']);
    expect(metrics.get('hostpulse_bridge_missing_total')).toBe(0);
    expect(bridge.child.exitCode).toBeNull();
    expect(await bridge.stop()).toBe(0);
  }, 60_000);
});

describe('names built to inject line protocol', () => {
  it('are rejected by name, or refused by the broker; InfluxDB shows only the expected measurements, tags, fields and series', async () => {
    const bridge = await startBridge(bridgeEnv(servers.broker.url, servers.influx.url, 'names', 'names-bridge'));
    const hostile = [',', '=', ' ', '"', '\\', "'", ',role=admin', ' usage=1', '\\ ', ' a=1 1\\'];
    const c = await publisher();
    for (const bad of hostile) {
      await c.publish(`sensors/pc${bad}/cpu_temp`, '41', { qos: 1 });
      await c.publish(`sensors/names-pc/cpu_temp${bad}`, '41', { qos: 1 });
    }
    // The control: a host and an instance name that must round-trip exactly.
    await c.publish('sensors/names-pc/cpu_temp', '42.5', { qos: 1 });
    await c.publish('sensors/names-pc/disk_boot_efi_usage', '17', { qos: 1 });
    await c.close();
    // Newline, NUL (control characters) and bytes that are not UTF-8, in either level: the broker
    // disconnects the publisher, nothing reaches the bridge.
    const unreadable = [
      ...['\n', '\nmem,host=x usage=1 1', '\u0000', '\t'].flatMap((bad) => [
        Buffer.from(`sensors/pc${bad}/cpu_temp`),
        Buffer.from(`sensors/names-pc/cpu_temp${bad}`),
      ]),
      Buffer.concat([Buffer.from('sensors/pc'), Buffer.from([0xc3, 0x28]), Buffer.from('/cpu_temp')]),
      Buffer.concat([Buffer.from('sensors/names-pc/cpu'), Buffer.from([0xff])]),
    ];
    for (const [i, topic] of unreadable.entries()) {
      const raw = await rawConnect(servers.broker.port, { clientId: `names-raw-${i}` });
      expect(await raw.publish(topic, '41', 1)).toBe('closed');
    }
    await received(bridge, hostile.length * 2 + 2);
    await waitFor('the control and the counters stored', async () => {
      const [disk, stats] = [
        await servers.influx.query('SELECT * FROM "disk"', 'names'),
        await servers.influx.query('SELECT last("received") FROM "hostpulse_bridge"', 'names'),
      ];
      return disk.series[0] && stats.series[0]?.values[0]?.[1] === hostile.length * 2 + 2 ? true : undefined;
    });
    expect(rejectedByReason(await bridge.metrics())).toEqual({ bad_host: hostile.length, unknown_metric: hostile.length });
    expect(await bridge.metric('hostpulse_bridge_received_total')).toBe(hostile.length * 2 + 2);

    const show = async (q: string): Promise<string[]> =>
      (await servers.influx.query(q, 'names')).series.flatMap((s) => s.values.map((v) => `${s.name ? `${s.name}:` : ''}${v.map(String).join('|')}`)).sort();
    expect(await show('SHOW MEASUREMENTS')).toEqual(['measurements:cpu', 'measurements:disk', 'measurements:hostpulse_bridge']);
    expect(await show('SHOW TAG KEYS')).toEqual(['cpu:host', 'disk:disk', 'disk:host', 'hostpulse_bridge:bridge']);
    expect((await show('SHOW FIELD KEYS')).filter((f) => !f.startsWith('hostpulse_bridge:'))).toEqual(['cpu:temp|float', 'disk:usage|float']);
    expect(await show('SHOW SERIES')).toEqual(['cpu,host=names-pc', 'disk,disk=boot_efi,host=names-pc', 'hostpulse_bridge,bridge=names-bridge']);
    const cpu = await servers.influx.query('SELECT "temp", "host" FROM "cpu"', 'names');
    expect(cpu.series[0]?.values.map((v) => [v[1], v[2]])).toEqual([[42.5, 'names-pc']]);
    expect(await bridge.stop()).toBe(0);
  });
});

describe('a deleted retained availability (an empty retained message)', () => {
  it('is a deletion, not garbage: nothing rejected or stored for it, and the live view no longer says online', async () => {
    const httpBridge = await startBridge(bridgeEnv(servers.broker.url, servers.influx.url, 'cleared', 'cleared-bridge'));
    const c = await publisher();
    await c.publish('sensors/gone-pc/availability', 'online', { qos: 1, retain: true });
    await received(httpBridge, 1);
    const online = async (): Promise<boolean | null | undefined> => {
      const body = (await (await fetch(`http://127.0.0.1:${httpBridge.httpPort}/api/hosts`)).json()) as { hosts: { host: string; online: boolean | null }[] };
      return body.hosts.find((h) => h.host === 'gone-pc')?.online;
    };
    expect(await online()).toBe(true);
    await c.publish('sensors/gone-pc/availability', '', { qos: 1, retain: true }); // what `mosquitto_pub -r -n` sends
    await c.publish('sensors/gone-pc/availability', ' ', { qos: 1 }); // the control: one space is garbage
    await c.close();
    await received(httpBridge, 3);
    expect(rejectedByReason(await httpBridge.metrics())).toEqual({ bad_payload: 1 });
    expect(await httpBridge.metric('hostpulse_bridge_availability_total')).toBe(2);
    expect(await online()).toBe(null);
    expect(
      httpBridge
        .logs()
        .filter((l) => l.msg === 'message rejected')
        .map((l) => l['payload'] ?? l['detail']),
    ).toHaveLength(1);
    await httpBridge.stop();
  });
});

describe('a packet over the broker limit', () => {
  it(`of 10× max_packet_size (${MAX_PACKET_SIZE} bytes, as shipped): the broker disconnects the sender; the bridge is unaffected and valid traffic is stored`, async () => {
    const bridge = await startBridge(bridgeEnv(servers.broker.url, servers.influx.url, 'size', 'size-bridge'));
    const stream = startStream({ url: servers.broker.url, prefix: 'sized', hosts: 1, perHost: 300, rate: 150 });
    const raw = await rawConnect(servers.broker.port, { clientId: 'oversize' });
    expect(await raw.publish('sensors/big-pc/cpu_temp', Buffer.alloc(10 * MAX_PACKET_SIZE, 0x31), 1)).toBe('closed');
    expect(raw.closed).toBe(true);
    await waitFor('the broker log line', () => (servers.broker.output().includes('Client oversize disconnected due to oversize packet.') ? true : undefined));
    const acked = await stream.done;
    expect(count(acked)).toBe(300);
    expect(await ledger(servers.influx, 'size', 'sized', acked)).toEqual([]);
    expect(await bridge.metric('hostpulse_bridge_received_total')).toBe(300);
    expect(await hostsOf('size')).toEqual(['sized-0']);
    expect(bridge.child.exitCode).toBeNull();
    expect(await bridge.stop()).toBe(0);
  });
});

describe('the contract and the line encoder, fuzzed', () => {
  const options = { now: 1_763_683_200_000, maxPayloadBytes: 4096, maxFutureMs: 300_000 };
  const level = fc.oneof(
    fc.string({ maxLength: 70 }),
    fc.constantFrom('pc-1', 'cpu_temp', 'disk_boot_efi_usage', 'net_eth0_rx', 'gpu3_temp', 'a,b', 'a=b', 'a b', 'a"b', 'a\\', 'a\nb', 'a\u0000b'),
  );

  it('accepts only three levels, a host level only of [a-z0-9-], a metric level only of [a-z0-9_]', () => {
    fc.assert(
      fc.property(level, level, fc.double(), (host, metric, value) => {
        const d = decodeMessage(`sensors/${host}/${metric}`, Buffer.from(JSON.stringify({ value, ts: options.now })), options);
        if (`${host}${metric}`.includes('/')) expect(d).toMatchObject({ ok: false, reason: 'bad_topic' });
        else if (!/^[a-z0-9-]+$/.test(host)) expect(d).toMatchObject({ ok: false, reason: 'bad_host' });
        else if (d.ok && d.kind === 'sample') expect(metric).toMatch(/^[a-z0-9_]+$/);
      }),
      { numRuns: 3000 },
    );
  });

  it('turns every accepted sample into exactly one line, with no character a name could inject', () => {
    fc.assert(
      fc.property(level, level, fc.double(), fc.integer({ min: -1e13, max: 1e13 }), (host, metric, value, ts) => {
        const d = decodeMessage(`sensors/${host}/${metric}`, Buffer.from(JSON.stringify({ value, ts })), options);
        if (!d.ok || d.kind !== 'sample') return;
        const line = toLine(d.sample);
        expect(HOST_PATTERN.test(d.sample.host) && METRIC_PATTERN.test(d.sample.metric.name)).toBe(true);
        expect(line).toMatch(/^[a-z_]+,host=[a-z0-9-]+(,[a-z]+=[a-z0-9_]+)? [a-z_0-9]+=-?[0-9.e+-]+ \d+$/);
        expect(line.split(' ')[0]).toContain(`host=${host}`);
      }),
      { numRuns: 3000 },
    );
  });
});
