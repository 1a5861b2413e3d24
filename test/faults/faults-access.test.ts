/**
 * Access attacks on the shipped Mosquitto (mosquitto/mosquitto.conf, the acl and logins written by
 * `hostpulse enrol`) with the real bridge and InfluxDB 1.6: an enrolled PC that uses another login's
 * client id. Mosquitto names every session after its login (use_username_as_clientid), so the id a
 * client sends takes nothing over; bridges that share the stream each have a login of their own.
 * (The same attacks on `hostpulse up`'s broker: faults-up-broker.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttConnection } from '../../common/mqtt.js';
import { bridgeEnv, startBridge } from '../harness/bridge.js';
import { execCli, stopAllCli } from '../harness/cli.js';
import { startInfluxDB, type InfluxDB } from '../harness/influxdb.js';
import { ledger, startStream } from '../harness/load.js';
import { captureLogger } from '../harness/logs.js';
import { waitFor } from '../harness/mqtt.js';
import { startShippedMosquitto, type ShippedMosquitto } from '../harness/shipped-mosquitto.js';

type Login = { readonly username: string; readonly password: string };
const LOGINS = {
  bridge: { username: 'hostpulse_bridge', password: 'bridge-password-1' },
  bridgeB: { username: 'hostpulse_bridge_b', password: 'bridge-b-password-1' },
  reader: { username: 'hostpulse_reader', password: 'reader-password-1' },
  // Publishing PCs: the stream's hosts are <prefix>-0, and a PC may write only under its own name.
  away: { username: 'away-0', password: 'away-password-1' },
  kick: { username: 'kick-0', password: 'kick-password-1' },
  share: { username: 'share-0', password: 'share-password-1' },
  bob: { username: 'bob', password: 'bob-password-12' },
} as const satisfies Record<string, Login>;

let broker: ShippedMosquitto;
let influx: InfluxDB;
let url: string;

beforeAll(async () => {
  [broker, influx] = await Promise.all([
    startShippedMosquitto(async (passwd) => {
      const services = await execCli(['enrol', '--services', '--passwd', passwd], {
        MQTT_BRIDGE_PASSWORD: LOGINS.bridge.password,
        MQTT_READER_PASSWORD: LOGINS.reader.password,
        MQTT_HEALTHCHECK_PASSWORD: 'health-password-1',
      });
      expect(services.code, services.stderr).toBe(0);
      const extra = await execCli(['enrol', '--service', LOGINS.bridgeB.username, '--passwd', passwd, '--password', LOGINS.bridgeB.password]);
      expect(extra.code, extra.stderr).toBe(0);
      for (const pc of [LOGINS.away, LOGINS.kick, LOGINS.share, LOGINS.bob]) {
        const enrolled = await execCli(['enrol', pc.username, '--passwd', passwd, '--password', pc.password]);
        expect(enrolled.code, enrolled.stderr).toBe(0);
      }
    }),
    startInfluxDB(['away', 'share']),
  ]);
  url = `mqtt://127.0.0.1:${broker.port}`;
});
afterAll(async () => {
  await stopAllCli();
  await Promise.all([broker?.stop(), influx?.stop()]);
});

let clients = 0;
async function connect(
  login: Login,
  clientId: string,
  options: { clean?: boolean; url?: string; onMessage?: (topic: string, payload: Buffer) => void } = {},
): Promise<MqttConnection> {
  const c = new MqttConnection(
    {
      url: options.url ?? url,
      clientId,
      clean: options.clean ?? true,
      reconnect: false,
      ...login,
      ...(options.onMessage ? { onMessage: options.onMessage } : {}),
    },
    captureLogger(`access-${clients++}`).logger,
  );
  await c.waitConnected(10_000);
  return c;
}

describe('a PC using another login’s client id (shipped Mosquitto)', () => {
  it("connecting as the bridge's id with a clean session while the bridge is away: every sample queued for the bridge is still stored", async () => {
    const env = bridgeEnv(url, influx.url, 'away', 'hostpulse-bridge', { MQTT_USERNAME: LOGINS.bridge.username, MQTT_PASSWORD: LOGINS.bridge.password });
    const first = await startBridge(env);
    await first.stop();
    // The bridge is away: the broker queues for its persistent session what the PC publishes now.
    const stream = startStream({ url, prefix: 'away', hosts: 1, perHost: 300, rate: 300, login: LOGINS.away, reconnect: false });
    const acked = await stream.done;
    await stream.close();
    // bob takes the bridge's id, clean session, as in the attack run (Mosquitto without
    // use_username_as_clientid discarded the bridge's session and its queue here).
    const bob = await connect(LOGINS.bob, 'hostpulse-bridge', { clean: true });
    await bob.close();
    const back = await startBridge(env, { until: 'connected' });
    expect(await ledger(influx, 'away', 'away', acked, 30_000)).toEqual([]);
    expect(await back.metric('hostpulse_bridge_missing_total')).toBe(0);
    await back.stop();
  });

  it.each(['MQTT', 'MQTT over WebSocket'])("connecting 20 times with a PC's own client id (%s) never disconnects that PC", async (transport) => {
    const attacker = transport === 'MQTT' ? url : `ws://127.0.0.1:${broker.wsPort}`;
    const heard: string[] = [];
    // The PC as the agent connects (its default client id), without reconnecting: a kick would be for good.
    const pc = await connect(LOGINS.kick, 'hostpulse-agent-kick-0', { onMessage: (_topic, payload) => void heard.push(payload.toString()) });
    await pc.subscribe('homeassistant/status', 1);
    for (let i = 0; i < 20; i++) {
      const bob = await connect(LOGINS.bob, 'hostpulse-agent-kick-0', { clean: i % 2 === 0, url: attacker });
      await bob.close();
    }
    // Home Assistant's birth message still reaches the PC's first connection.
    const reader = await connect(LOGINS.reader, 'home-assistant');
    await reader.publish('homeassistant/status', 'online', { qos: 1 });
    await reader.close();
    await waitFor("Home Assistant's birth message at the PC", () => (heard.includes('online') ? true : undefined));
    expect(pc.connected).toBe(true);
    await pc.close();
  });
});

describe('bridges sharing the stream (MQTT_SHARE_GROUP), each with its own login', () => {
  it('store every sample once between them, each taking a part', async () => {
    const bridges = await Promise.all(
      [LOGINS.bridge, LOGINS.bridgeB].map((login, i) =>
        startBridge(
          bridgeEnv(url, influx.url, 'share', `share-bridge-${i}`, { MQTT_USERNAME: login.username, MQTT_PASSWORD: login.password, MQTT_SHARE_GROUP: 'fleet' }),
        ),
      ),
    );
    const stream = startStream({ url, prefix: 'share', hosts: 1, perHost: 1000, rate: 500, login: LOGINS.share, reconnect: false });
    const acked = await stream.done;
    await stream.close();
    expect(await ledger(influx, 'share', 'share', acked, 60_000)).toEqual([]);
    const received = await Promise.all(bridges.map((b) => b.metric('hostpulse_bridge_received_total')));
    // Each took a part (a shared subscription splits the stream); neither was kicked off by the other.
    for (const n of received) expect(n).toBeGreaterThan(0);
    expect(received.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1000);
    for (const b of bridges) expect(b.logs().filter((l) => l.msg === 'broker connection restored')).toEqual([]);
    await Promise.all(bridges.map((b) => b.stop()));
  });
});
