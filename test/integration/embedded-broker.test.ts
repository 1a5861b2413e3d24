/**
 * The embedded broker of `hostpulse up` (aedes, in-process): the same access rules as the shipped
 * Mosquitto (one table of cases run against both), logins from the same password file, and the limits
 * aedes lacks by default.
 */
import { connect as connectTcp } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../broker/server.js';
import { readPasswd } from '../../broker/passwd.js';
import { MqttConnection } from '../../common/mqtt.js';
import { captureLogger } from '../harness/logs.js';
import { waitFor } from '../harness/mqtt.js';
import { LOGINS, enrolLogins, type Login } from '../harness/parity-logins.js';
import { startShippedMosquitto, type ShippedMosquitto } from '../harness/shipped-mosquitto.js';

let mosquitto: ShippedMosquitto;
let embedded: EmbeddedBroker;
let open: EmbeddedBroker;

beforeAll(async () => {
  mosquitto = await startShippedMosquitto(enrolLogins);
  const logins = await readPasswd(mosquitto.passwd);
  const { logger } = captureLogger('embedded');
  embedded = await startEmbeddedBroker(
    {
      host: '127.0.0.1',
      port: 0,
      wsPort: 0,
      maxConnections: 20,
      maxPacketBytes: 4096,
      logins: (user) => (logins.has(user) ? [logins.get(user) as string] : []),
    },
    logger,
  );
  open = await startEmbeddedBroker({ host: '127.0.0.1', port: 0, wsPort: 0, maxConnections: 5, maxPacketBytes: 4096 }, logger);
});

afterAll(async () => {
  await Promise.all([mosquitto?.stop(), embedded?.close(), open?.close()]);
});

let ids = 0;
async function client(port: number, login?: Login, onMessage?: (topic: string, payload: Buffer) => void): Promise<MqttConnection> {
  const c = new MqttConnection(
    {
      url: `mqtt://127.0.0.1:${port}`,
      clientId: `parity-${ids++}`,
      clean: true,
      reconnect: false,
      ...(login ? { username: login, password: LOGINS[login] } : {}),
      ...(onMessage ? { onMessage } : {}),
    },
    captureLogger('client').logger,
  );
  await c.waitConnected(5000);
  return c;
}

/** [who publishes, topic, who watches (may read it if delivered), delivered?] */
const CASES: [Login, string, Login, boolean][] = [
  ['alice', 'sensors/alice/cpu_temp', 'hostpulse_bridge', true],
  ['alice', 'sensors/bob/cpu_temp', 'hostpulse_bridge', false],
  ['alice', 'sensors/alice/cpu_temp', 'hostpulse_reader', true],
  ['alice', 'sensors/alice/cpu_temp', 'bob', false],
  ['bob', 'sensors/bob/gpu0_temp', 'hostpulse_bridge', true],
  ['hostpulse_bridge', 'sensors/alice/cpu_temp', 'hostpulse_reader', false],
  ['hostpulse_reader', 'sensors/alice/cpu_temp', 'hostpulse_bridge', false],
  ['hostpulse_health', 'sensors/alice/cpu_temp', 'hostpulse_bridge', false],
  ['alice', 'homeassistant/sensor/alice/cpu_temp/config', 'hostpulse_reader', true],
  ['alice', 'homeassistant/sensor/bob/cpu_temp/config', 'hostpulse_reader', false],
  ['alice', 'homeassistant/sensor/alice/cpu_temp/config', 'hostpulse_bridge', false],
  ['hostpulse_reader', 'homeassistant/status', 'alice', true],
  ['alice', 'homeassistant/status', 'bob', false],
  ['hostpulse_reader', 'homeassistant/sensor/alice/cpu_temp/config', 'alice', false],
];

/**
 * One connection per login, that watches and publishes: both brokers keep one session per login (a
 * second connection of a login replaces the first).
 */
async function delivered(port: number): Promise<boolean[]> {
  const seen = new Map<Login, Set<string>>();
  const connections = new Map<Login, MqttConnection>();
  for (const who of new Set(CASES.flatMap((c) => [c[0], c[2]]))) {
    const got = new Set<string>();
    seen.set(who, got);
    const c = await client(port, who, (_t, p) => void got.add(p.toString()));
    await c.subscribe('#', 0);
    await c.subscribe('homeassistant/status', 0);
    connections.set(who, c);
  }
  for (const [i, [who, topic]] of CASES.entries()) await connections.get(who)?.publish(topic, `case-${i}`, { qos: 1 });
  // The control: a message every watcher may read arrives after all cases.
  await connections.get('alice')?.publish('sensors/alice/uptime', 'done', { qos: 1 });
  await waitFor('the last case', () => (seen.get('hostpulse_bridge')?.has('done') ? true : undefined));
  await new Promise((r) => setTimeout(r, 200));
  await Promise.all([...connections.values()].map((c) => c.close(true)));
  return CASES.map(([, , watcher], i) => seen.get(watcher)?.has(`case-${i}`) ?? false);
}

describe('access rules', () => {
  it('are those of the shipped Mosquitto, case for case', async () => {
    const expected = CASES.map((c) => c[3]);
    expect(await delivered(mosquitto.port), 'Mosquitto with mosquitto/acl').toEqual(expected);
    expect(await delivered(embedded.port), 'the embedded broker').toEqual(expected);
  });

  it.each([
    ['no login', undefined, undefined],
    ['a wrong password', 'alice', 'guess'],
    ['an unknown login', 'mallory', 'whatever-12345'],
  ])('refuses %s', async (_, username, password) => {
    const c = new MqttConnection(
      { url: `mqtt://127.0.0.1:${embedded.port}`, clientId: `refused-${ids++}`, clean: true, reconnect: false, ...(username ? { username, password } : {}) },
      captureLogger('client').logger,
    );
    await expect(c.waitConnected(5000)).rejects.toThrow(/bad user name or password|not authorized/);
    await c.close(true);
  });
});

describe('limits', () => {
  it('closes a connection that sends a packet over the size limit, and serves the others', async () => {
    const received: string[] = [];
    const bridge = await client(embedded.port, 'hostpulse_bridge', (_t, p) => void received.push(p.toString()));
    await bridge.subscribe('sensors/#', 1);
    const big = await client(embedded.port, 'alice');
    big.publish('sensors/alice/cpu_temp', 'x'.repeat(10_000), { qos: 1 }).catch(() => undefined); // never acknowledged
    await waitFor('the oversized sender cut off', () => (big.connected ? undefined : true));
    const small = await client(embedded.port, 'alice');
    await small.publish('sensors/alice/cpu_temp', '42', { qos: 1 });
    await waitFor('the small message', () => (received.includes('42') ? true : undefined));
    expect(received).toEqual(['42']);
    await Promise.all([bridge.close(true), big.close(true), small.close(true)]);
  });

  it('drops a half-sent oversized CONNECT before it is buffered', async () => {
    const socket = connectTcp(embedded.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    // CONNECT, remaining length 2 MiB (varint 0x80 0x80 0x80 0x01), then a little of it.
    socket.write(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x01, 0, 4]));
    // Closed on the header alone, not by the 5 s CONNECT timeout.
    const closed = await Promise.race([
      new Promise<boolean>((resolve) => socket.once('close', () => resolve(true))),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 3000)),
    ]);
    socket.destroy();
    expect(closed).toBe(true);
  });

  it('accepts anonymous clients when no logins are configured, up to its connection limit', async () => {
    const clients: MqttConnection[] = [];
    for (let i = 0; i < 5; i++) clients.push(await client(open.port));
    const sixth = new MqttConnection(
      { url: `mqtt://127.0.0.1:${open.port}`, clientId: 'sixth', clean: true, reconnect: false },
      captureLogger('client').logger,
    );
    await expect(sixth.waitConnected(3000)).rejects.toThrow();
    await Promise.all([...clients, sixth].map((c) => c.close(true)));
  });
});
