/**
 * The shipped broker configuration (mosquitto/mosquitto.conf and the acl `hostpulse enrol` writes), run on real
 * Mosquitto 2.0 with logins written by `hostpulse enrol`. Only paths and ports are moved.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttConnection } from '../../common/mqtt.js';
import { SERVICE_LOGINS } from '../../cli/enrol.js';
import { ROOT, execCli, runCli } from '../harness/cli.js';
import { captureLogger } from '../harness/logs.js';
import { waitFor } from '../harness/mqtt.js';
import { startShippedMosquitto, type ShippedMosquitto } from '../harness/shipped-mosquitto.js';

const SERVICES = { MQTT_BRIDGE_PASSWORD: 'bridge-password-1', MQTT_READER_PASSWORD: 'reader-password-1', MQTT_HEALTHCHECK_PASSWORD: 'health-password-1' };

let shipped: ShippedMosquitto;
let dir: string;
let port: number;
let wsPort: number;
let alice: string;

let clients = 0;
function client(
  login: { username?: string; password?: string },
  options: { clean?: boolean; clientId?: string; onMessage?: (t: string, p: Buffer) => void; url?: string } = {},
) {
  return new MqttConnection(
    {
      url: options.url ?? `mqtt://127.0.0.1:${port}`,
      clientId: options.clientId ?? `acl-test-${clients++}`,
      clean: options.clean ?? true,
      reconnect: false,
      ...login,
      ...(options.onMessage ? { onMessage: options.onMessage } : {}),
    },
    captureLogger('acl').logger,
  );
}

const bridgeLogin = { username: 'hostpulse_bridge', password: SERVICES.MQTT_BRIDGE_PASSWORD };
const readerLogin = { username: 'hostpulse_reader', password: SERVICES.MQTT_READER_PASSWORD };
// Further logins of the same roles (`hostpulse enrol --service`): a session is its login's, so a
// second program of a role that connects while the first is connected needs its own.
const bridgeB = { username: 'hostpulse_bridge_b', password: 'bridge-b-password-1' };
const readerB = { username: 'hostpulse_reader_b', password: 'reader-b-password-1' };

/** One session of `login` that subscribes to `topics` and publishes too (a second one would replace it). */
async function session(login: { username: string; password: string }, topics: readonly string[]) {
  const received: { topic: string; payload: string }[] = [];
  const c = client(login, { onMessage: (t, p) => void received.push({ topic: t, payload: p.toString() }) });
  await c.waitConnected(5000);
  for (const topic of topics) await c.subscribe(topic, 1);
  return { received, publish: (topic: string, payload: string) => c.publish(topic, payload, { qos: 1 }), close: () => c.close(true) };
}

const listener = (login: { username: string; password: string }, topic: string) => session(login, [topic]);

beforeAll(async () => {
  shipped = await startShippedMosquitto(async (passwd, brokerPort) => {
    const services = await execCli(['enrol', '--services', '--passwd', passwd], SERVICES);
    expect(services.code, services.stderr).toBe(0);
    const enrolled = await execCli(['enrol', 'alice', '--passwd', passwd, '--mqtt-url', `mqtt://127.0.0.1:${brokerPort}`]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    alice = /^MQTT_PASSWORD=(.+)$/m.exec(enrolled.stdout)?.[1] ?? '';
    expect((await execCli(['enrol', 'bob', '--passwd', passwd, '--password', 'bob-password-123'])).code).toBe(0);
    for (const login of [bridgeB, readerB]) {
      const added = await execCli(['enrol', '--service', login.username, '--passwd', passwd, '--password', login.password]);
      expect(added.code, added.stderr).toBe(0);
    }
  });
  ({ dir, port, wsPort } = shipped);
});

afterAll(() => shipped?.stop());

describe('logins', () => {
  it.each([
    ['anonymous', {}],
    ['a wrong password', { username: 'alice', password: 'guess' }],
    ['an unknown user', { username: 'mallory', password: 'whatever-123' }],
  ])('refuses %s', async (_, login) => {
    const c = client(login);
    await expect(c.waitConnected(5000)).rejects.toThrow(/not authorized|bad user name or password/);
    await c.close(true);
  });

  it('prints working agent settings: the enrolled PC publishes with them, and its samples reach the bridge login', async () => {
    const bridge = await listener(bridgeLogin, 'sensors/#');
    const run = await execCli(['agent', '--once', '--host', 'alice'], { MQTT_URL: `mqtt://127.0.0.1:${port}`, MQTT_USERNAME: 'alice', MQTT_PASSWORD: alice });
    expect(run.code, run.stderr).toBe(0);
    await waitFor('alice in the bridge', () => (bridge.received.some((m) => m.topic === 'sensors/alice/cpu_usage') ? true : undefined));
    await bridge.close();
  });

  it('serves MQTT over WebSocket with the same logins', async () => {
    const run = await execCli(['agent', '--once', '--host', 'alice'], { MQTT_URL: `ws://127.0.0.1:${wsPort}`, MQTT_USERNAME: 'alice', MQTT_PASSWORD: alice });
    expect(run.code, run.stderr).toBe(0);
    const anonymous = await execCli(['agent', '--once', '--host', 'alice'], { MQTT_URL: `ws://127.0.0.1:${wsPort}` });
    expect(anonymous.code).toBe(1);
  });

  it('refuses to enrol a host name that would escape its subtree', async () => {
    for (const bad of ['bob/cpu', 'bob+', 'bob#', 'Bob', 'hostpulse_bridge']) {
      const run = await execCli(['enrol', bad, '--passwd', join(dir, 'passwd')]);
      expect(run.code, bad).toBe(2);
      expect(run.stderr).toContain('host name');
    }
  });

  it('picks up a newly enrolled PC on SIGHUP', async () => {
    const run = await execCli(['enrol', 'carol', '--passwd', join(dir, 'passwd'), '--password', 'carol-password-1']);
    expect(run.code).toBe(0);
    shipped.server.child.kill('SIGHUP');
    await waitFor('carol admitted', async () => {
      const c = client({ username: 'carol', password: 'carol-password-1' });
      try {
        await c.waitConnected(2000);
        return true;
      } catch {
        return undefined;
      } finally {
        await c.close(true);
      }
    });
  });
});

describe('access rules', () => {
  it('lets an agent write only under its own host; the bridge and the reader read all, write nothing', async () => {
    const bridge = await listener(bridgeLogin, 'sensors/#');
    const reader = await listener(readerLogin, 'sensors/#');
    const bobListens = await listener({ username: 'bob', password: 'bob-password-123' }, 'sensors/#');
    const publish = async (login: { username: string; password: string }, topic: string, payload: string) => {
      const c = client(login);
      await c.waitConnected(5000);
      await c.publish(topic, payload, { qos: 1 }); // MQTT 3.1.1 acknowledges denied publishes too
      await c.close();
    };
    await publish({ username: 'alice', password: alice }, 'sensors/bob/cpu_temp', '99');
    await publish(bridgeB, 'sensors/alice/cpu_temp', '97');
    await publish(readerB, 'sensors/alice/cpu_temp', '96');
    await publish({ username: 'alice', password: alice }, 'homeassistant/sensor/x/config', '{}');
    await publish({ username: 'alice', password: alice }, 'sensors/alice/cpu_temp', '42'); // the control: allowed
    await waitFor('the allowed sample', () => (bridge.received.some((m) => m.payload === '42') ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    expect(bridge.received.map((m) => `${m.topic}=${m.payload}`)).toEqual(['sensors/alice/cpu_temp=42']);
    expect(reader.received.map((m) => `${m.topic}=${m.payload}`)).toEqual(['sensors/alice/cpu_temp=42']);
    expect(bobListens.received).toEqual([]); // an agent reads nothing, not even other agents
    await Promise.all([bridge.close(), reader.close(), bobListens.close()]);
  });

  it('lets an agent keep only its own Home Assistant discovery configs; the reader writes only homeassistant/status', async () => {
    const aliceLogin = { username: 'alice', password: alice };
    const reader = await listener(readerLogin, 'homeassistant/#');
    const aliceSession = await session(aliceLogin, ['homeassistant/+/alice/+/config', 'homeassistant/status']);
    const publish = async (login: { username: string; password: string }, topic: string, payload: string) => {
      const c = client(login);
      await c.waitConnected(5000);
      await c.publish(topic, payload, { qos: 1 });
      await c.close();
    };
    // Denied publishes are acknowledged and dropped; the session stays (with `max_queued_messages 0`,
    // Mosquitto 2.0.11 dropped the connection at the first).
    await aliceSession.publish('homeassistant/sensor/bob/cpu_temp/config', '{"bad":1}');
    await aliceSession.publish('homeassistant/sensor/cpu_temp/config', '{"bad":2}'); // no node id: not hers
    await aliceSession.publish('homeassistant/status', 'online');
    await publish(readerB, 'homeassistant/sensor/alice/cpu_temp/config', '{"bad":3}');
    await publish(bridgeLogin, 'homeassistant/status', 'offline');
    await aliceSession.publish('homeassistant/sensor/alice/cpu_temp/config', '{"ok":1}'); // allowed
    await publish(readerB, 'homeassistant/status', 'online'); // allowed: Home Assistant's birth message
    await waitFor('the allowed messages', () => (reader.received.length >= 2 && aliceSession.received.length >= 2 ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    expect(reader.received.map((m) => `${m.topic}=${m.payload}`)).toEqual([
      'homeassistant/sensor/alice/cpu_temp/config={"ok":1}',
      'homeassistant/status=online',
    ]);
    expect(aliceSession.received.map((m) => `${m.topic}=${m.payload}`)).toEqual([
      'homeassistant/sensor/alice/cpu_temp/config={"ok":1}',
      'homeassistant/status=online',
    ]);
    // An agent cannot read another agent's configs.
    const bobReads = await listener({ username: 'bob', password: 'bob-password-123' }, 'homeassistant/#');
    await new Promise((r) => setTimeout(r, 300));
    expect(bobReads.received).toEqual([]);
    await aliceSession.publish('homeassistant/sensor/alice/cpu_temp/config', ''); // clear the retained config
    await Promise.all([reader.close(), aliceSession.close(), bobReads.close()]);
  });

  it('runs an agent with Home Assistant discovery under its own login, the reader seeing its configs', async () => {
    const reader = await listener(readerLogin, 'homeassistant/#');
    const run = runCli(['agent', '--host', 'alice', '--replay', join(ROOT, 'test/fixtures/machines/linux-laptop.json')], {
      MQTT_URL: `mqtt://127.0.0.1:${port}`,
      MQTT_USERNAME: 'alice',
      MQTT_PASSWORD: alice,
      SAMPLE_INTERVAL: '1s',
    });
    try {
      const synced = await run.waitForLog((l) => l.msg === 'discovery configs in step');
      expect(run.logs().filter((l) => l.msg.includes('cannot read discovery topics'))).toEqual([]);
      await waitFor('the configs', () => (reader.received.length >= (synced['published'] as number) ? true : undefined));
      expect(synced['published']).toBeGreaterThan(10);
      expect(reader.received.every((m) => m.topic.startsWith('homeassistant/') && m.topic.split('/')[2] === 'alice')).toBe(true);
    } finally {
      await run.stop();
      await reader.close();
    }
    // Clean up the retained configs and availability, as a decommissioned PC would.
    const c = client({ username: 'alice', password: alice });
    await c.waitConnected(5000);
    for (const m of reader.received) await c.publish(m.topic, '', { qos: 1, retain: true });
    await c.publish('sensors/alice/availability', '', { qos: 1, retain: true });
    await c.close();
  });

  it('answers the container healthcheck, which needs no anonymous access', async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        'mosquitto_sub',
        [
          '-h',
          '127.0.0.1',
          '-p',
          String(port),
          '-u',
          'hostpulse_health',
          '-P',
          SERVICES.MQTT_HEALTHCHECK_PASSWORD,
          '-t',
          '$SYS/broker/uptime',
          '-C',
          '1',
          '-W',
          '3',
        ],
        (error, stdout) => (error ? reject(error) : resolve(stdout)),
      ),
    );
    expect(out).toMatch(/^\d+ seconds/);
  });

  it('names every service login of `hostpulse enrol --services` in the ACL it writes beside the password file', async () => {
    const acl = await readFile(join(dir, 'acl'), 'utf8');
    for (const user of Object.keys(SERVICE_LOGINS)) expect(acl).toContain(`user ${user}\n`);
  });
});

describe('persistence', () => {
  it('keeps messages queued for the bridge across a broker crash (kill -9), saved within its 10 s autosave', async () => {
    const session = { clean: false, clientId: 'hostpulse-bridge-crash-test' };
    const first = client(bridgeLogin, session);
    await first.waitConnected(5000);
    await first.subscribe('sensors/#', 1);
    await first.close();
    const agent = client({ username: 'alice', password: alice });
    await agent.waitConnected(5000);
    for (let i = 0; i < 10; i++) await agent.publish('sensors/alice/cpu_usage', String(i), { qos: 1 });
    await agent.close();
    await new Promise((r) => setTimeout(r, 11_000)); // autosave_interval 10 (seconds)
    shipped.server.child.kill('SIGKILL');
    await new Promise((r) => shipped.server.child.once('exit', r));
    await shipped.launch();
    const received: string[] = [];
    const back = client(bridgeLogin, { ...session, onMessage: (_t, p) => void received.push(p.toString()) });
    await back.waitConnected(5000);
    await waitFor('the queued messages', () => (received.length >= 10 ? true : undefined));
    expect(received).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    await back.close();
  });
});
