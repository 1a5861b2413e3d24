/** Broker logins: the agent and the bridge use MQTT_USERNAME / MQTT_PASSWORD, and say clearly when they are refused. */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execCli, runCli, stopAllCli } from '../harness/cli.js';
import { startInfluxDB, type InfluxDB } from '../harness/influxdb.js';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.js';
import { waitFor } from '../harness/mqtt.js';

let broker: Mosquitto;
let influx: InfluxDB;
const dir = mkdtempSync(join(tmpdir(), 'hostpulse-auth-'));

beforeAll(async () => {
  const passwords = join(dir, 'passwd');
  execFileSync('mosquitto_passwd', ['-c', '-b', passwords, 'pc-1', 'agent-secret']);
  execFileSync('mosquitto_passwd', ['-b', passwords, 'bridge', 'bridge-secret']);
  // Mosquitto started as root reads the file after dropping to its own user.
  chmodSync(dir, 0o755);
  chmodSync(passwords, 0o644);
  [broker, influx] = await Promise.all([startMosquitto({ config: ['allow_anonymous false', `password_file ${passwords}`] }), startInfluxDB(['hp'])]);
});

afterAll(async () => {
  await stopAllCli();
  await Promise.all([broker?.stop(), influx?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

it('publishes and stores with logins', async () => {
  const bridge = runCli(['bridge'], {
    MQTT_URL: broker.url,
    MQTT_USERNAME: 'bridge',
    MQTT_PASSWORD: 'bridge-secret',
    INFLUX_API: '1',
    INFLUX_URL: influx.url,
    INFLUX_DATABASE: 'hp',
    FLUSH_INTERVAL: '100ms',
  });
  await bridge.waitForLog((l) => l.msg === 'subscribed');
  const run = await execCli(['agent', '--once', '--host', 'pc-1'], { MQTT_URL: broker.url, MQTT_USERNAME: 'pc-1', MQTT_PASSWORD: 'agent-secret' });
  expect(run.code, run.stderr).toBe(0);
  await waitFor('stored data', async () => (await influx.query(`SELECT "usage" FROM "cpu" WHERE "host" = 'pc-1'`, 'hp')).series[0]);
  expect(await bridge.stop()).toBe(0);
});

it.each([
  ['no login', {}],
  ['a wrong password', { MQTT_USERNAME: 'pc-1', MQTT_PASSWORD: 'guess' }],
])('agent --once with %s fails, saying the broker refused it', async (_, login) => {
  const run = await execCli(['agent', '--once', '--host', 'pc-1'], { MQTT_URL: broker.url, ...login });
  expect(run.code).toBe(1);
  expect(run.stderr).toMatch(/broker refused the connection: (not authorized|bad user name or password)/);
});

it('a refused bridge keeps retrying with the reason in its log, not a crash', async () => {
  const bridge = runCli(['bridge'], {
    MQTT_URL: broker.url,
    MQTT_USERNAME: 'bridge',
    MQTT_PASSWORD: 'wrong',
    INFLUX_API: '1',
    INFLUX_URL: influx.url,
    INFLUX_DATABASE: 'hp',
  });
  const line = await bridge.waitForLog((l) => l.msg === 'broker unreachable, retrying' && l['attempt'] === 2);
  expect(line['reason']).toMatch(/broker refused the connection: (not authorized|bad user name or password)/);
  expect(bridge.child.exitCode).toBeNull();
  expect(await bridge.stop()).toBe(0);
});
