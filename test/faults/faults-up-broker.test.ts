/**
 * Attacks on the embedded broker of `hostpulse up` (issue 12), each reproduced first: a login
 * taking over another's session with its client id, client ids MQTT 3.1.1 rejects, retained
 * messages growing the broker's memory, idle sockets keeping real clients out, and packets written
 * to the socket in pieces. The rules on sessions and client ids are checked on the shipped
 * Mosquitto too, whose answers `up` gives.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedBroker, type EmbeddedBroker, type EmbeddedBrokerOptions } from '../../broker/server.js';
import { hashLine, readPasswd } from '../../broker/passwd.js';
import { MqttConnection } from '../../common/mqtt.js';
import { execCli, runCli, stopAllCli } from '../harness/cli.js';
import { makeTestCerts } from '../harness/certs.js';
import { captureLogger, type CapturedLogger } from '../harness/logs.js';
import { waitFor } from '../harness/mqtt.js';
import { writeCalls } from '../harness/proc.js';
import { LOGINS, as, enrolLogins, type Login } from '../harness/parity-logins.js';
import { freePort } from '../harness/process.js';
import { rawConnect, type RawClient } from '../harness/raw-mqtt.js';
import { startShippedMosquitto, type ShippedMosquitto } from '../harness/shipped-mosquitto.js';

let mosquitto: ShippedMosquitto;
let lines: Map<string, string>;
const brokers: EmbeddedBroker[] = [];

/** The embedded broker with the logins above (as `up` with MQTT_PASSWD_FILE), or anonymous with `logins: undefined`. */
async function embedded(extra: Partial<EmbeddedBrokerOptions> = {}, log: CapturedLogger = captureLogger('embedded')): Promise<EmbeddedBroker> {
  const broker = await startEmbeddedBroker(
    {
      host: '127.0.0.1',
      port: 0,
      wsPort: 0,
      maxConnections: 1000,
      maxPacketBytes: 65_536,
      logins: (user) => [lines.get(user)].filter((l): l is string => l !== undefined),
      ...extra,
    },
    log.logger,
  );
  brokers.push(broker);
  return broker;
}

beforeAll(async () => {
  mosquitto = await startShippedMosquitto(enrolLogins);
  lines = await readPasswd(mosquitto.passwd);
});

afterAll(async () => {
  await stopAllCli();
  await Promise.all([mosquitto?.stop(), ...brokers.map((b) => b.close())]);
});

function connection(
  port: number,
  clientId: string,
  login: Login | undefined,
  options: { clean?: boolean; onMessage?: (topic: string, payload: Buffer) => void } = {},
): MqttConnection {
  return new MqttConnection(
    {
      url: `mqtt://127.0.0.1:${port}`,
      clientId,
      clean: options.clean ?? true,
      reconnect: false,
      ...(login ? as(login) : {}),
      ...(options.onMessage ? { onMessage: options.onMessage } : {}),
    },
    captureLogger('client').logger,
  );
}

async function connected(c: MqttConnection): Promise<MqttConnection> {
  await c.waitConnected(5000);
  return c;
}

/** Each broker under test: its name and MQTT port. */
const BOTH: [string, () => Promise<number>][] = [
  ['the shipped Mosquitto', async () => mosquitto.port],
  ["up's broker", async () => (await embedded()).port],
];

describe('sessions: one per login, named after it', () => {
  it.each(BOTH)("on %s, a login sending the bridge's client id does not discard the bridge's queued samples", async (_, broker) => {
    const port = await broker();
    const received: string[] = [];
    const onMessage = (_t: string, p: Buffer): void => void received.push(p.toString());
    const bridge = await connected(connection(port, 'hostpulse-bridge', 'hostpulse_bridge', { clean: false, onMessage }));
    await bridge.subscribe('sensors/#', 1);
    await bridge.close();
    // While the bridge is away, alice's samples are queued in its session...
    const alice = await connected(connection(port, 'hostpulse-agent-alice', 'alice'));
    for (let seq = 1; seq <= 5; seq++) await alice.publish('sensors/alice/cpu_temp', `sample-${seq}`, { qos: 1 });
    await alice.close();
    // ...and bob connects with the bridge's id and a clean session (which ends the session of that id).
    const bob = await connected(connection(port, 'hostpulse-bridge', 'bob'));
    await bob.close();
    const back = await connected(connection(port, 'hostpulse-bridge', 'hostpulse_bridge', { clean: false, onMessage }));
    await waitFor('the queued samples', () => (received.length >= 5 ? true : undefined), 5000);
    expect(received).toEqual(['sample-1', 'sample-2', 'sample-3', 'sample-4', 'sample-5']);
    await back.close();
    await discard(port, 'hostpulse_bridge');
  });

  it.each(BOTH)('on %s, an agent is not disconnected by another login sending its client id', async (_, broker) => {
    const port = await broker();
    const alice = await rawConnect(port, { clientId: 'hostpulse-agent-alice', ...as('alice') });
    let accepted = 0;
    for (let i = 0; i < 10; i++) {
      const bob = await rawConnect(port, { clientId: 'hostpulse-agent-alice', ...as('bob') });
      accepted++;
      bob.end();
    }
    expect(accepted).toBe(10); // bob is a login: he gets in, under his own session
    expect(await alice.publish('sensors/alice/cpu_temp', '42')).toBe('acked');
    expect(alice.closed).toBe(false);
    alice.end();
  });

  it.each(BOTH)('on %s, a second connection of a login replaces the first, whatever client id each sends', async (_, broker) => {
    const port = await broker();
    const first = await rawConnect(port, { clientId: 'alice-one', ...as('alice') });
    const second = await rawConnect(port, { clientId: 'alice-two', ...as('alice') });
    await waitFor('the first connection closed', () => (first.closed ? true : undefined), 5000);
    expect(await second.publish('sensors/alice/cpu_temp', '42')).toBe('acked');
    second.end();
  });

  it.each(BOTH)('on %s, a client without a user name is refused, whatever client id it sends', async (_, broker) => {
    const port = await broker();
    await expect(rawConnect(port, { clientId: 'hostpulse-bridge' })).rejects.toThrow(/^CONNACK [45]$/);
    await expect(rawConnect(port, { clientId: 'hostpulse-bridge', clean: false })).rejects.toThrow(/^CONNACK [45]$/);
  });

  it('without logins (anonymous, loopback only), client ids stay as sent', async () => {
    const open = await embedded({ logins: undefined });
    const one = await rawConnect(open.port, { clientId: 'one' });
    const two = await rawConnect(open.port, { clientId: 'two' });
    expect(await one.publish('sensors/one/cpu_temp', '1')).toBe('acked');
    expect([one.closed, two.closed]).toEqual([false, false]);
    const again = await rawConnect(open.port, { clientId: 'one' }); // the same id: a takeover, as MQTT says
    await waitFor('the first "one" closed', () => (one.closed ? true : undefined), 5000);
    [two, again].forEach((c) => c.end());
  });
});

/** Connects once with a clean session as `login`: the broker discards what it kept for it. */
async function discard(port: number, login: Login): Promise<void> {
  const c = await connected(connection(port, `discard-${login}`, login));
  await c.close();
}

describe('client ids', () => {
  it.each(BOTH)('on %s, an empty client id with a persistent session is rejected (CONNACK 2), as MQTT 3.1.1 requires', async (_, broker) => {
    const port = await broker();
    await expect(rawConnect(port, { clientId: '', clean: false, ...as('bob') })).rejects.toThrow(/^CONNACK 2$/);
    // With a clean session an empty id is allowed [MQTT-3.1.3-6]: the broker names the session.
    (await rawConnect(port, { clientId: '', clean: true, ...as('bob') })).end();
  });

  it("up's broker rejects a client id over 128 bytes (CONNACK 2), with or without logins", async () => {
    for (const broker of [await embedded(), await embedded({ logins: undefined })]) {
      const login = as('bob');
      for (const clientId of ['x'.repeat(129), 'x'.repeat(60_000), 'é'.repeat(65)]) {
        await expect(rawConnect(broker.port, { clientId, ...login }), `${clientId.length} characters`).rejects.toThrow(/^CONNACK 2$/);
      }
      (await rawConnect(broker.port, { clientId: 'x'.repeat(128), ...login })).end();
      expect(broker.stats().connectsRefused.identifier_rejected).toBe(3);
    }
  });

  it("up's broker refuses MQTT 5 (it speaks 3.1.1), with the long or empty ids too", async () => {
    const broker = await embedded();
    for (const clientId of ['', 'x'.repeat(60_000), 'bob-5']) {
      await expect(rawConnect(broker.port, { clientId, clean: false, protocol: 5, ...as('bob') })).rejects.toThrow(/^CONNACK [12]$/);
    }
  });
});

describe('retained messages: bounded per login', () => {
  const CONTROL = 'sensors/alice/availability';

  /** The retained messages a new reader is given, topic → payload (alice's availability aside). */
  async function replayed(port: number): Promise<Map<string, string>> {
    // The control: set anew (deleted first), it is the newest retained message, replayed last.
    const alice = await connected(connection(port, 'alice', 'alice'));
    await alice.publish(CONTROL, '', { qos: 1, retain: true });
    await alice.publish(CONTROL, 'control', { qos: 1, retain: true });
    const got = new Map<string, string>();
    const reader = await connected(connection(port, 'reader', 'hostpulse_reader', { onMessage: (t, p) => void got.set(t, p.toString()) }));
    await reader.subscribe('#', 0);
    await waitFor('the control', () => (got.get(CONTROL) === 'control' ? true : undefined));
    await Promise.all([reader.close(), alice.close()]);
    got.delete(CONTROL);
    return got;
  }

  it("refuses retained messages beyond a login's topics and bytes, acknowledged and logged; a replacement or deletion is allowed", async () => {
    const log = captureLogger('embedded');
    const broker = await embedded({ retained: { maxTopics: 4, maxBytes: 2000 } }, log);
    const bob = await connected(connection(broker.port, 'bob', 'bob'));
    for (let i = 1; i <= 6; i++) await bob.publish(`homeassistant/sensor/bob/m${i}/config`, `config-${i}`, { qos: 1, retain: true });
    expect([...(await replayed(broker.port)).keys()].sort()).toEqual([1, 2, 3, 4].map((i) => `homeassistant/sensor/bob/m${i}/config`));
    expect(log.lines.filter((l) => l.msg === 'retained message refused: over the quota')).toMatchObject([
      { user: 'bob', topic: 'homeassistant/sensor/bob/m5/config', reason: 'over_topics', heldTopics: 4 },
    ]);
    // A new value for a topic it holds replaces it; a deletion gives its share back.
    await bob.publish('homeassistant/sensor/bob/m1/config', 'config-1b', { qos: 1, retain: true });
    await bob.publish('homeassistant/sensor/bob/m2/config', '', { qos: 1, retain: true });
    await bob.publish('sensors/bob/availability', 'online', { qos: 1, retain: true });
    // Over the bytes: refused, and the value it would have replaced stays.
    await bob.publish('homeassistant/sensor/bob/m3/config', 'x'.repeat(2000), { qos: 1, retain: true });
    expect(bob.connected).toBe(true);
    const now = await replayed(broker.port);
    expect(Object.fromEntries(now)).toEqual({
      'homeassistant/sensor/bob/m1/config': 'config-1b',
      'homeassistant/sensor/bob/m3/config': 'config-3',
      'homeassistant/sensor/bob/m4/config': 'config-4',
      'sensors/bob/availability': 'online',
    });
    // Counted, on GET /metrics of `up`.
    expect(broker.metrics()).toContain('hostpulse_broker_retained_refused_total{reason="over_topics"} 2');
    expect(broker.metrics()).toContain('hostpulse_broker_retained_refused_total{reason="over_bytes"} 1');
    await bob.close();
  });

  it('holds bob to his quota under the attack of the issue (retained 60 KiB messages, one after another), the others unaffected', async () => {
    const broker = await embedded(); // the defaults of `up`: 1,000 topics and 2 MiB per login
    const bob = await connected(connection(broker.port, 'bob', 'bob'));
    const big = 'x'.repeat(60 * 1024);
    for (let i = 0; i < 200; i++) await bob.publish(`sensors/bob/junk${i}`, big, { qos: 1, retain: true });
    expect(bob.connected).toBe(true);
    const kept = await replayed(broker.port);
    // 2 MiB hold 34 of them (60 KiB payload + topic each): the first 34, the others refused.
    expect([...kept.keys()]).toEqual(Array.from({ length: 34 }, (_, i) => `sensors/bob/junk${i}`));
    expect(broker.stats().retainedRefused.over_bytes).toBe(200 - 34);
    expect(broker.stats().retainedBytes).toBeLessThanOrEqual(2 * 1024 * 1024 + CONTROL.length + 'control'.length);
    await bob.close();
  });

  it('without logins, bounds the retained messages of the whole broker', async () => {
    const open = await embedded({ logins: undefined, retained: { maxTopics: 3, maxBytes: 10_000 } });
    const clients = [await connected(connection(open.port, 'one', undefined)), await connected(connection(open.port, 'two', undefined))];
    for (const [n, c] of clients.entries()) for (let i = 0; i < 3; i++) await c.publish(`sensors/pc${n}/m${i}`, 'v', { qos: 1, retain: true });
    expect(open.stats()).toMatchObject({ retainedTopics: 3, retainedRefused: { over_topics: 3 } });
    await Promise.all(clients.map((c) => c.close()));
  });
});

describe('retained messages: `hostpulse up`', () => {
  it('takes its bounds from MQTT_RETAINED_MAX_TOPICS and MQTT_RETAINED_MAX_BYTES, and counts refusals on GET /metrics', async () => {
    const bad = await execCli(['up'], { MQTT_RETAINED_MAX_TOPICS: 'many', MQTT_RETAINED_MAX_BYTES: '10' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^MQTT_RETAINED_MAX_TOPICS: .*$/m);
    expect(bad.stderr).toMatch(/^MQTT_RETAINED_MAX_BYTES: .*$/m);
    const [port, http] = [await freePort(), await freePort()];
    const up = runCli(['up'], { MQTT_PORT: String(port), MQTT_WS_PORT: '0', HTTP_PORT: String(http), LOCAL_AGENT: 'false', MQTT_RETAINED_MAX_TOPICS: '3' });
    await waitFor('hostpulse is up', () => (up.stderr().includes('hostpulse is up.') ? true : undefined), 20_000);
    const pc = await connected(connection(port, 'pc', undefined));
    for (let i = 0; i < 5; i++) await pc.publish(`sensors/pc/m${i}`, 'v', { qos: 1, retain: true });
    await pc.close();
    const metrics = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
    expect(metrics).toContain('hostpulse_broker_retained_refused_total{reason="over_topics"} 2');
    expect(metrics).toContain('hostpulse_broker_retained_topics 3');
    expect(up.logs().filter((l) => l.msg === 'retained message refused: over the quota')).toHaveLength(1);
    expect(await up.stop()).toBe(0);
  });
});

describe('sockets that never send CONNECT', () => {
  it('1,000 of them keep no real login out: 39 logins all get in, and the idle sockets are closed', async () => {
    const hosts = Array.from({ length: 39 }, (_, i) => `pc-${i}`);
    const pcLines = new Map(hosts.map((h) => [h, hashLine(h, `${h}-password`)]));
    const broker = await embedded({ logins: (user) => [pcLines.get(user)].filter((l): l is string => l !== undefined) }); // maxConnections 1000, as `up`
    const idle: Socket[] = [];
    try {
      for (let i = 0; i < 1000; i++) {
        const socket = connectTcp(broker.port, '127.0.0.1');
        socket.on('error', () => undefined);
        idle.push(socket);
        await new Promise((resolve) => socket.once('connect', resolve).once('close', resolve));
      }
      const logins = await Promise.allSettled(
        hosts.map((h) => rawConnect(broker.port, { clientId: `hostpulse-agent-${h}`, username: h, password: `${h}-password` })),
      );
      expect(logins.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
      for (const r of logins) if (r.status === 'fulfilled') (r.value as RawClient).end();
      // Bounded: at most 64 from one address wait for CONNECT; the broker closed the others.
      const stats = broker.stats();
      expect(stats.pending).toBeLessThanOrEqual(64);
      expect(stats.pendingClosed).toBeGreaterThanOrEqual(1000 - 64);
      expect(broker.metrics()).toMatch(/^hostpulse_broker_pending_closed_total \d+$/m);
    } finally {
      idle.forEach((s) => s.destroy());
    }
  });
});

describe('sockets that never send CONNECT, over TLS and WebSocket', () => {
  it('are bounded there too, and a client past CONNECT is never closed to make room', async () => {
    const certs = await makeTestCerts();
    const broker = await embedded({
      wsPort: await freePort(),
      tls: { port: 0, cert: readFileSync(certs.server.cert), key: readFileSync(certs.server.key) },
      pending: { perAddress: 4, total: 8 },
    });
    const over = async (kind: 'tls' | 'ws', id: string): Promise<MqttConnection> => {
      const url = kind === 'tls' ? `mqtts://localhost:${broker.tlsPort}` : `ws://127.0.0.1:${broker.wsPort}`;
      const c = new MqttConnection(
        {
          url,
          clientId: id,
          clean: true,
          reconnect: false,
          ...as(id === 'a' ? 'alice' : 'bob'),
          ...(kind === 'tls' ? { tls: { ca: readFileSync(certs.ca) } } : {}),
        },
        captureLogger('client').logger,
      );
      return connected(c);
    };
    const [tls, ws] = [await over('tls', 'a'), await over('ws', 'b')];
    // 40 idle sockets, half to each port, from the same address as the two clients.
    const idle: Socket[] = [];
    try {
      for (const p of [broker.tlsPort, broker.wsPort]) {
        for (let i = 0; i < 20; i++) {
          const socket = connectTcp(p, '127.0.0.1');
          socket.on('error', () => undefined);
          idle.push(socket);
          await new Promise((resolve) => socket.once('connect', resolve).once('close', resolve));
        }
      }
      await waitFor('the idle sockets bounded', () => (broker.stats().pending <= 4 ? true : undefined));
      expect([tls.connected, ws.connected]).toEqual([true, true]);
      await tls.publish('sensors/alice/cpu_temp', '1', { qos: 1 });
      await ws.publish('sensors/bob/cpu_temp', '2', { qos: 1 });
      expect(broker.stats().pendingClosed).toBeGreaterThanOrEqual(36);
    } finally {
      idle.forEach((s) => s.destroy());
      await Promise.all([tls.close(), ws.close()]);
    }
  });
});

describe("up's broker writes", () => {
  it('each packet to the socket whole: one write per PUBLISH delivered', async () => {
    const [port, http] = [await freePort(), await freePort()];
    const up = runCli(['up'], { MQTT_PORT: String(port), MQTT_WS_PORT: '0', HTTP_PORT: String(http), LOCAL_AGENT: 'false', LOG_LEVEL: 'warn' });
    await waitFor('hostpulse is up', () => (up.stderr().includes('hostpulse is up.') ? true : undefined), 20_000);
    let delivered = 0;
    let arrived = (): void => undefined;
    const onMessage = (): void => {
      delivered++;
      arrived();
    };
    const subscribers = await Promise.all([0, 1, 2].map((i) => connected(connection(port, `watcher-${i}`, undefined, { onMessage }))));
    for (const s of subscribers) await s.subscribe('bench/#', 0);
    const publisher = await connected(connection(port, 'publisher', undefined));
    const messages = 200;
    const before = writeCalls(up.child as ChildProcess);
    for (let i = 1; i <= messages; i++) {
      // One at a time, so that nothing is written together by chance.
      const all = new Promise<void>((resolve) => (arrived = () => delivered >= i * subscribers.length && resolve()));
      await publisher.publish('bench/write-path', `{"value":${i},"ts":1700000000000,"unit":"%","seq":${i}}`, { qos: 0 });
      await all;
    }
    const writes = writeCalls(up.child as ChildProcess) - before;
    await Promise.all([...subscribers, publisher].map((c) => c.close()));
    expect(await up.stop()).toBe(0);
    // 600 PUBLISHes delivered; a few writes of its own (logs, timers) may fall in the window.
    expect(writes / delivered, `${writes} writes for ${delivered} packets`).toBeLessThan(1.2);
  });
});
