/**
 * Security on real servers: the shipped Mosquitto config and ACL (logins from `hostpulse enrol`)
 * with the real bridge, and InfluxDB 1.6 with authentication on and the logins the stack uses: an
 * admin, a read-only one (Grafana's) and a write-only one (the bridge's).
 * (Anonymous, wrong-password and unknown-user logins are refused in broker-config.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttConnection } from '../../common/mqtt.js';
import { bridgeEnv, startBridge, type BridgeProcess } from '../harness/bridge.js';
import { execCli, stopAllCli } from '../harness/cli.js';
import { startInfluxDB, type InfluxDB } from '../harness/influxdb.js';
import { captureLogger } from '../harness/logs.js';
import { waitFor } from '../harness/mqtt.js';
import { startShippedMosquitto, type ShippedMosquitto } from '../harness/shipped-mosquitto.js';

const DB = 'secured';
const LOGINS = {
  admin: { username: 'admin', password: 'admin-password-1' },
  grafana: { username: 'hostpulse_grafana', password: 'grafana-password-1' },
  bridge: { username: 'hostpulse_bridge', password: 'bridge-password-1' },
} as const;
type Login = { readonly username: string; readonly password: string };
const MQTT = {
  alice: { username: 'alice', password: 'alice-password-1' },
  bob: { username: 'bob', password: 'bob-password-12' },
  bridge: { username: 'hostpulse_bridge', password: 'mqtt-bridge-password-1' },
  reader: { username: 'hostpulse_reader', password: 'mqtt-reader-password-1' },
  health: { username: 'hostpulse_health', password: 'mqtt-health-password-1' },
} as const;

let influx: InfluxDB;
let broker: ShippedMosquitto;
let bridge: BridgeProcess;

const basic = (login?: Login): Record<string, string> =>
  login ? { authorization: `Basic ${Buffer.from(`${login.username}:${login.password}`).toString('base64')}` } : {};

/** InfluxQL as `login`: the HTTP status and the error, if any. */
async function influxql(q: string, login?: Login): Promise<{ status: number; error?: string; series?: { values: unknown[][] }[] }> {
  const res = await fetch(`${influx.url}/query`, { method: 'POST', body: new URLSearchParams({ q, db: DB, epoch: 'ms' }), headers: basic(login) });
  const body = (await res.json()) as { error?: string; results?: { error?: string; series?: { values: unknown[][] }[] }[] };
  const error = body.error ?? body.results?.[0]?.error;
  return { status: res.status, ...(error ? { error } : {}), ...(body.results?.[0]?.series ? { series: body.results[0].series } : {}) };
}

async function write(line: string, login?: Login): Promise<{ status: number; text: string }> {
  const res = await fetch(`${influx.url}/write?db=${DB}&precision=ms`, { method: 'POST', body: line, headers: basic(login) });
  return { status: res.status, text: await res.text() };
}

let clients = 0;
async function mqttClient(login: Login, onMessage?: (topic: string, payload: Buffer) => void): Promise<MqttConnection> {
  const c = new MqttConnection(
    { url: `mqtt://127.0.0.1:${broker.port}`, clientId: `security-${clients++}`, clean: true, reconnect: false, ...login, ...(onMessage ? { onMessage } : {}) },
    captureLogger('security').logger,
  );
  await c.waitConnected(5000);
  return c;
}

beforeAll(async () => {
  [influx, broker] = await Promise.all([
    startInfluxDB([], undefined, ['auth-enabled = true']),
    startShippedMosquitto(async (passwd) => {
      const services = await execCli(['enrol', '--services', '--passwd', passwd], {
        MQTT_BRIDGE_PASSWORD: MQTT.bridge.password,
        MQTT_READER_PASSWORD: MQTT.reader.password,
        MQTT_HEALTHCHECK_PASSWORD: MQTT.health.password,
      });
      expect(services.code, services.stderr).toBe(0);
      for (const pc of [MQTT.alice, MQTT.bob]) expect((await execCli(['enrol', pc.username, '--passwd', passwd, '--password', pc.password])).code).toBe(0);
    }),
  ]);
  // With authentication on, InfluxDB 1.x accepts nothing until an admin exists.
  expect((await influxql('SHOW DATABASES')).error).toMatch(/create admin user first/);
  expect((await influxql(`CREATE USER "admin" WITH PASSWORD '${LOGINS.admin.password}' WITH ALL PRIVILEGES`)).status).toBe(200);
  for (const q of [
    `CREATE DATABASE "${DB}"`,
    `CREATE USER "${LOGINS.grafana.username}" WITH PASSWORD '${LOGINS.grafana.password}'`,
    `GRANT READ ON "${DB}" TO "${LOGINS.grafana.username}"`,
    `CREATE USER "${LOGINS.bridge.username}" WITH PASSWORD '${LOGINS.bridge.password}'`,
    `GRANT WRITE ON "${DB}" TO "${LOGINS.bridge.username}"`,
  ]) {
    expect(await influxql(q, LOGINS.admin)).toEqual({ status: 200 });
  }
  bridge = await startBridge(
    bridgeEnv(`mqtt://127.0.0.1:${broker.port}`, influx.url, DB, 'secured-bridge', {
      MQTT_USERNAME: MQTT.bridge.username,
      MQTT_PASSWORD: MQTT.bridge.password,
      INFLUX_USERNAME: LOGINS.bridge.username,
      INFLUX_PASSWORD: LOGINS.bridge.password,
    }),
  );
});
afterAll(async () => {
  await stopAllCli();
  await Promise.all([broker?.stop(), influx?.stop()]);
});

const storedHosts = async (): Promise<string[]> =>
  ((await influxql('SHOW TAG VALUES WITH KEY = "host"', LOGINS.grafana)).series ?? []).flatMap((s) => s.values.map((v) => v[1] as string)).sort();

describe('an agent outside its own subtree', () => {
  it('alice publishing as bob: acknowledged (MQTT 3.1.1) but never delivered, so nothing of it reaches the bridge or InfluxDB', async () => {
    const now = Date.now();
    // One connection each: Mosquitto 2.0.11 drops a connection at the packet after a denied QoS 1 publish.
    for (const [topic, payload] of [
      ['sensors/bob/cpu_temp', JSON.stringify({ value: 99, ts: now })],
      ['sensors/bob/availability', 'offline'],
      ['sensors/alice/cpu_temp', JSON.stringify({ value: 42, ts: now })], // the control: allowed
    ] as const) {
      const alice = await mqttClient(MQTT.alice);
      await alice.publish(topic, payload, { qos: 1 });
      await alice.close(true);
    }
    await waitFor('alice stored', async () => ((await storedHosts()).includes('alice') ? true : undefined));
    await new Promise((r) => setTimeout(r, 1000));
    expect(await storedHosts()).toEqual(['alice']);
    expect(await bridge.metric('hostpulse_bridge_received_total')).toBe(1);
    expect(await bridge.metric('hostpulse_bridge_availability_total')).toBe(0);
  });

  it.each(['#', '$SYS/#', 'sensors/#'])(
    'alice subscribing to %s: granted by Mosquitto 2.0, yet she receives only what her read rules allow',
    async (filter) => {
      const got: string[] = [];
      const alice = await mqttClient(MQTT.alice, (topic) => void got.push(topic));
      await alice.subscribe(filter, 1); // MQTT 3.1.1: the SUBACK grants it; the ACL filters each message
      // Controls: the reader sees bob's sample; the healthcheck login sees the broker's retained $SYS topics.
      const readerSaw: string[] = [];
      const reader = await mqttClient(MQTT.reader, (topic) => void readerSaw.push(topic));
      await reader.subscribe('sensors/#', 1);
      const healthSaw: string[] = [];
      const health = await mqttClient(MQTT.health, (topic) => void healthSaw.push(topic));
      await health.subscribe('$SYS/broker/uptime', 1);
      const bob = await mqttClient(MQTT.bob);
      await bob.publish('sensors/bob/cpu_temp', '40', { qos: 1 });
      await bob.close();
      await reader.publish('homeassistant/status', 'online', { qos: 1 }); // alice may read this one
      await waitFor('the controls', () => (readerSaw.includes('sensors/bob/cpu_temp') && healthSaw.includes('$SYS/broker/uptime') ? true : undefined));
      await new Promise((r) => setTimeout(r, 1000));
      expect(got).toEqual(filter === '#' ? ['homeassistant/status'] : []);
      await Promise.all([alice.close(), reader.close(), health.close()]);
    },
  );
});

describe('InfluxDB logins (authentication on)', () => {
  const line = (host: string): string => `cpu,host=${host} temp=40 ${Date.now()}`;

  it("refuses Grafana's read-only login to write or drop, and lets it read", async () => {
    expect(await write(line('grafana'), LOGINS.grafana)).toMatchObject({ status: 403, text: expect.stringContaining('not authorized to write') });
    const drop = await influxql('DROP MEASUREMENT "cpu"', LOGINS.grafana);
    expect(drop.status).toBe(403);
    expect(drop.error).toMatch(/not authorized to execute statement 'DROP MEASUREMENT/);
    expect((await influxql('DROP SERIES FROM "cpu"', LOGINS.grafana)).status).toBe(403);
    expect(await influxql('SELECT * FROM "cpu"', LOGINS.grafana)).toMatchObject({ status: 200 });
  });

  it("refuses the bridge's write-only login to read", async () => {
    for (const q of ['SELECT * FROM "cpu"', 'SHOW MEASUREMENTS', 'SHOW TAG VALUES WITH KEY = "host"']) {
      const r = await influxql(q, LOGINS.bridge);
      expect(r.status, q).toBe(403);
      expect(r.error).toMatch(/requires READ/);
    }
  });

  it('refuses anonymous and wrong-password writes', async () => {
    expect((await write(line('anonymous'))).status).toBe(401);
    expect((await write(line('guess'), { username: LOGINS.bridge.username, password: 'guess' })).status).toBe(401);
  });

  it('stores through the bridge with the write-only login; the bridge stops at start with a clear error given a login that may not write', async () => {
    const now = Date.now();
    const bob = await mqttClient(MQTT.bob);
    await bob.publish('sensors/bob/cpu_usage', JSON.stringify({ value: 12.5, ts: now }), { qos: 1 });
    await bob.close();
    const rows = await waitFor(
      'bob stored',
      async () => (await influxql(`SELECT "usage" FROM "cpu" WHERE "host" = 'bob'`, LOGINS.grafana)).series?.[0]?.values,
    );
    expect(rows).toEqual([[now, 12.5]]);
    for (const [login, status] of [
      [LOGINS.grafana, 403],
      [{ username: LOGINS.bridge.username, password: 'guess' }, 401],
    ] as const) {
      const run = await execCli(
        ['bridge'],
        bridgeEnv(`mqtt://127.0.0.1:${broker.port}`, influx.url, DB, 'refused-bridge', { INFLUX_USERNAME: login.username, INFLUX_PASSWORD: login.password }),
      );
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`credentials refused (${status}`);
    }
  });
});
