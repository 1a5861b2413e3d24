/**
 * End to end on real servers: the real agent (the built CLI) → real Mosquitto → the real bridge →
 * real InfluxDB 1.x, checked with InfluxQL against what the agent published.
 */
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execCli, runCli, stopAllCli, type Running } from '../harness/cli.js';
import { startInfluxDB, type InfluxDB } from '../harness/influxdb.js';
import { differences, published, stored } from '../harness/ledger.js';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.js';
import { capture, mosquittoPub, waitFor, type Capture } from '../harness/mqtt.js';
import { freePort } from '../harness/process.js';

const DB = 'hostpulse';
const FIXTURES = new URL('../fixtures/machines/', import.meta.url);

let broker: Mosquitto;
let influx: InfluxDB;
let bridge: Running;
let watch: Capture;

function bridgeEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    MQTT_URL: broker.url,
    INFLUX_API: '1',
    INFLUX_URL: influx.url,
    INFLUX_DATABASE: DB,
    FLUSH_INTERVAL: '100ms',
    STATS_INTERVAL: '1s',
    ...extra,
  };
}

/** Runs `agent --once`; resolves with the number of samples the broker acknowledged. */
async function agentOnce(args: readonly string[], env: Record<string, string> = {}): Promise<number> {
  const run = await execCli(['agent', '--once', ...args], { MQTT_URL: broker.url, ...env });
  expect(run.code, run.stderr).toBe(0);
  const done = run.stdout.split('\n').find((l) => l.includes('"published one round"'));
  return (JSON.parse(done ?? '{}') as { published?: number }).published ?? 0;
}

/** Waits until the watcher saw `count` samples of the host and InfluxDB holds them all; returns the differences. */
async function storedExactly(host: string, count?: number, db = DB): Promise<string[]> {
  if (count !== undefined)
    await waitFor(`${count} samples of ${host} on the broker`, () => (published(watch.forHost(host)).length >= count ? true : undefined));
  const samples = published(watch.forHost(host));
  expect(samples.length).toBeGreaterThan(0);
  if (count !== undefined) expect(samples.length).toBe(count);
  const points = await waitFor(`${samples.length} points of ${host}`, async () => {
    const p = await stored(influx, db, host);
    return p.size >= samples.length ? p : undefined;
  });
  expect(points.size).toBe(samples.length);
  return differences(samples, points);
}

beforeAll(async () => {
  [broker, influx] = await Promise.all([startMosquitto(), startInfluxDB([DB])]);
  watch = await capture(broker.url);
  bridge = runCli(['bridge'], bridgeEnv());
  await bridge.waitForLog((l) => l.msg === 'subscribed');
});

afterAll(async () => {
  await bridge?.stop();
  await stopAllCli();
  await watch?.close();
  await Promise.all([broker?.stop(), influx?.stop()]);
});

describe('agent → Mosquitto → bridge → InfluxDB', () => {
  it('stores every metric the real collectors read on this machine, with host, value and sample time', async () => {
    const publishedAt = Date.now();
    const count = await agentOnce([], { SENSORS_HOST: 'e2e-real' });
    expect(await storedExactly('e2e-real', count)).toEqual([]);
    const samples = published(watch.forHost('e2e-real'));
    expect(samples.map((s) => s.metric)).toEqual(expect.arrayContaining(['cpu_usage', 'mem_usage', 'uptime', 'disk_root_usage']));
    const ts = samples[0]!.ts;
    expect(samples.every((s) => s.ts === ts)).toBe(true); // one round, one sample time
    expect(ts).toBeGreaterThanOrEqual(publishedAt);
  });

  it.each(readdirSync(FIXTURES).filter((f) => f.endsWith('.json')))('stores every metric of the recorded machine %s', async (file) => {
    const host = `e2e-${file.replace('.json', '')}`;
    const count = await agentOnce(['--replay', new URL(file, FIXTURES).pathname, '--host', host]);
    expect(await storedExactly(host, count)).toEqual([]);
  });

  it('stores each GPU, filesystem and interface as its own series, tagged by instance', async () => {
    const host = 'e2e-series';
    const count = await agentOnce(['--replay', new URL('linux-2gpu-workstation.json', FIXTURES).pathname, '--host', host]);
    expect(await storedExactly(host, count)).toEqual([]);
    const gpus = await influx.query(`SELECT last("temp") FROM "gpu" WHERE "host" = '${host}' GROUP BY "gpu"`, DB);
    expect(gpus.series.map((s) => [s.tags?.['gpu'], s.values[0]?.[1]])).toEqual([
      ['0', 43],
      ['1', 50],
    ]);
    const disks = await influx.query(`SHOW TAG VALUES FROM "disk" WITH KEY = "disk" WHERE "host" = '${host}'`, DB);
    expect(disks.series[0]?.values.map((v) => v[1])).toEqual(['boot', 'boot_efi', 'root']);
    const usage = await influx.query(`SELECT "usage" FROM "gpu" WHERE "host" = '${host}' AND "gpu" = '0'`, DB);
    expect(usage.series[0]?.values[0]?.[1]).toBe(0); // an idle GPU is stored as 0, not missing
  });

  it('accepts a bare number from a third-party publisher, stamped with the time of receipt', async () => {
    const before = Date.now();
    await mosquittoPub(broker.port, 'sensors/esp-kitchen/cpu_temp', '41.5');
    const rows = await waitFor('the bare number', async () => {
      const r = await influx.query(`SELECT "temp" FROM "cpu" WHERE "host" = 'esp-kitchen'`, DB);
      return r.series[0]?.values;
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]?.[1]).toBe(41.5);
    expect(rows[0]?.[0]).toBeGreaterThanOrEqual(before - 1000);
    expect(rows[0]?.[0]).toBeLessThanOrEqual(Date.now());
  });

  it('writes every value as a float, so a field never changes type', async () => {
    await mosquittoPub(broker.port, 'sensors/esp-int/battery_level', '41');
    await waitFor('the integer-looking value', async () => (await influx.query(`SELECT "level" FROM "battery" WHERE "host" = 'esp-int'`, DB)).series[0]);
    const keys = await influx.query('SHOW FIELD KEYS', DB);
    const types = new Set(keys.series.flatMap((s) => s.values.map((v) => v[1])));
    expect(types).toEqual(new Set(['float']));
  });

  it('drops garbage, counting it by reason, while good data keeps flowing', async () => {
    const now = Date.now();
    const garbage: [string, string][] = [
      ['sensors/garbage-pc/fan_rpm', '1200'],
      ['sensors/garbage-pc/cpu_temp', 'hot'],
      ['sensors/garbage-pc/cpu_temp', '{"value":"42"}'],
      ['sensors/garbage-pc/cpu_usage', '250'],
      ['sensors/garbage-pc/cpu_temp', `{"value":40,"ts":${now + 3_600_000}}`],
      ['sensors/garbage-pc/cpu_temp', `{"value":40,"ts":${Math.floor(now / 1000)}}`],
      ['sensors/Garbage_PC/cpu_temp', '40'],
      ['sensors/garbage-pc/availability', 'maybe'],
    ];
    for (const [topic, message] of garbage) await mosquittoPub(broker.port, topic, message);
    await mosquittoPub(broker.port, 'sensors/garbage-pc/cpu_temp', `{"value":44.5,"ts":${now}}`);
    const rows = await waitFor(
      'the good sample',
      async () => (await influx.query(`SELECT "temp" FROM "cpu" WHERE "host" = 'garbage-pc'`, DB)).series[0]?.values,
    );
    expect(rows).toEqual([[now, 44.5]]);
    const stats = await bridge.waitForLog((l) => l.msg === 'stats' && (l['rejectedTotal'] as number) >= garbage.length);
    expect(stats['rejected']).toEqual({ unknown_metric: 1, bad_payload: 2, bad_value: 1, out_of_range: 1, future_timestamp: 1, bad_timestamp: 1, bad_host: 1 });
    const rejectedLogs = bridge.logs().filter((l) => l.msg === 'message rejected');
    expect(new Set(rejectedLogs.map((l) => l['reason']))).toEqual(new Set(Object.keys(stats['rejected'] as object)));
    expect(bridge.child.exitCode).toBeNull();
    // The counters are stored too, for the pipeline-health dashboard.
    const counters = await waitFor('stored counters', async () => {
      const r = await influx.query(
        'SELECT last("rejected_bad_payload"), last("rejected"), last("received"), last("written") FROM "hostpulse_bridge" GROUP BY "bridge"',
        DB,
      );
      const row = r.series[0]?.values[0];
      return row && (row[2] as number) >= garbage.length ? { tags: r.series[0]?.tags, row } : undefined;
    });
    expect(counters.tags).toEqual({ bridge: 'hostpulse-bridge' });
    expect(counters.row[1]).toBe(2);
  });

  it('keeps the agent running on a schedule, with retained availability and a last will', async () => {
    const host = 'e2e-loop';
    const httpPort = await freePort();
    const agent = runCli(['agent', '--replay', new URL('linux-laptop.json', FIXTURES).pathname], {
      MQTT_URL: broker.url,
      SENSORS_HOST: host,
      SAMPLE_INTERVAL: '1s',
      HTTP_PORT: String(httpPort),
    });
    await waitFor('three rounds', () => {
      const cpu = watch.forHost(host).filter((m) => m.topic.endsWith('/cpu_usage'));
      return cpu.length >= 3 ? cpu : undefined;
    });
    expect(watch.forHost(host).find((m) => m.topic.endsWith('/availability'))?.payload).toBe('online');
    const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, broker: true, dropped: 0, status: 'ok' });
    const times = published(watch.forHost(host))
      .filter((s) => s.metric === 'cpu_usage')
      .map((s) => s.ts);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(900);
    expect(await agent.stop('SIGTERM')).toBe(0);
    const last = await waitFor('offline', () => {
      const a = watch.forHost(host).filter((m) => m.topic.endsWith('/availability'));
      return a.at(-1)?.payload === 'offline' ? a : undefined;
    });
    expect(last.at(-1)?.payload).toBe('offline');
    const stopped = agent.logs().find((l) => l.msg === 'agent stopped');
    expect(stopped).toMatchObject({ queued: 0, dropped: 0 });
    expect(await storedExactly(host, stopped?.['published'] as number)).toEqual([]);

    // Killed without a word: the broker publishes the agent's last will.
    const crashing = runCli(['agent', '--replay', new URL('linux-laptop.json', FIXTURES).pathname], {
      MQTT_URL: broker.url,
      SENSORS_HOST: 'e2e-crash',
      SAMPLE_INTERVAL: '1s',
    });
    await waitFor('online', () => watch.forHost('e2e-crash').find((m) => m.payload === 'online'));
    await crashing.stop('SIGKILL');
    await waitFor('the last will', () => watch.forHost('e2e-crash').find((m) => m.payload === 'offline'));
    // A late subscriber sees the retained state.
    const late = await capture(broker.url, 'sensors/+/availability');
    await waitFor('retained availability', () => (late.messages.length >= 2 ? late.messages : undefined));
    expect(late.messages.find((m) => m.topic === 'sensors/e2e-crash/availability')?.payload).toBe('offline');
    expect(late.messages.find((m) => m.topic === `sensors/${host}/availability`)?.payload).toBe('offline');
    await late.close();
    // The bridge stores availability as it changes: 1 while online, 0 once offline.
    const online = await waitFor('stored availability', async () => {
      const r = await influx.query(`SELECT "online" FROM "availability" WHERE "host" = '${host}'`, DB);
      const values = r.series[0]?.values.map((v) => v[1]);
      return values?.at(-1) === 0 ? values : undefined;
    });
    expect(online).toEqual([1, 0]);
  });

  it('keeps its broker session: samples published while the bridge was away are stored when it returns', async () => {
    await influx.query('CREATE DATABASE "session"');
    const env = bridgeEnv({ INFLUX_DATABASE: 'session', MQTT_CLIENT_ID: 'session-bridge' });
    const first = runCli(['bridge'], env);
    await first.waitForLog((l) => l.msg === 'subscribed');
    expect(await first.stop()).toBe(0);
    const host = 'e2e-away';
    const count = await agentOnce(['--replay', new URL('windows-laptop.json', FIXTURES).pathname, '--host', host]);
    const second = runCli(['bridge'], env);
    await second.waitForLog((l) => l.msg === 'connected to broker' && l['sessionPresent'] === true);
    expect(await storedExactly(host, count, 'session')).toEqual([]);
    expect(await second.stop()).toBe(0);
  });

  it('flushes what it holds on SIGTERM and exits 0', async () => {
    await influx.query('CREATE DATABASE "flush"');
    const held = runCli(['bridge'], bridgeEnv({ INFLUX_DATABASE: 'flush', MQTT_CLIENT_ID: 'flush-bridge', FLUSH_INTERVAL: '1m', BATCH_SIZE: '100000' }));
    await held.waitForLog((l) => l.msg === 'subscribed');
    const host = 'e2e-flush';
    const count = await agentOnce(['--replay', new URL('linux-2gpu-workstation.json', FIXTURES).pathname, '--host', host]);
    await held.waitForLog((l) => l.msg === 'stats' && (l['buffered'] as number) >= count);
    expect((await stored(influx, 'flush', host)).size).toBe(0); // held, not yet written
    const started = Date.now();
    expect(await held.stop('SIGTERM')).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await stored(influx, 'flush', host)).size).toBe(count);
    const stoppedLine = held.logs().find((l) => l.msg === 'bridge stopped');
    expect(stoppedLine).toMatchObject({ buffered: 0, lost: 0 });
    expect(stoppedLine?.['written']).toBeGreaterThanOrEqual(count);
  });
});

describe('start-up failures', () => {
  it('stops with a clear error when the database does not exist', async () => {
    const run = await execCli(['bridge'], bridgeEnv({ INFLUX_DATABASE: 'nope', MQTT_CLIENT_ID: 'nope-bridge' }));
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('database not found: "nope"');
  });

  it('stops with a clear error when the retention policy does not exist', async () => {
    const run = await execCli(['bridge'], bridgeEnv({ INFLUX_RETENTION_POLICY: 'forever', MQTT_CLIENT_ID: 'rp-bridge' }));
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('retention policy not found: forever');
  });

  it('tells to use INFLUX_API=1 when the v2 API meets InfluxDB 1.6', async () => {
    const run = await execCli(['bridge'], { MQTT_URL: broker.url, INFLUX_URL: influx.url, INFLUX_BUCKET: DB, MQTT_CLIENT_ID: 'v2-bridge' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('set INFLUX_API=1');
  });

  it('agent --once fails with the reason when the broker is unreachable', async () => {
    const run = await execCli(['agent', '--once'], { MQTT_URL: 'mqtt://127.0.0.1:1', SENSORS_HOST: 'nobroker' });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/could not connect to mqtt:\/\/127\.0\.0\.1:1.*ECONNREFUSED/);
  });

  it('agent --print needs no broker and prints one round as JSON lines', async () => {
    const run = await execCli(['agent', '--print', '--replay', new URL('windows-laptop.json', FIXTURES).pathname, '--host', 'printer']);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { topic: string; payload: { value: number; ts: number; unit?: string } });
    expect(lines.find((l) => l.topic === 'sensors/printer/battery_level')?.payload).toMatchObject({ value: 44, unit: '%' });
    expect(lines.every((l) => /^sensors\/printer\/[a-z0-9_]+$/.test(l.topic))).toBe(true);
  });
});
