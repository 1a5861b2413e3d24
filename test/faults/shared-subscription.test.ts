/**
 * Several bridges sharing one stream (MQTT_SHARE_GROUP, an MQTT shared subscription) on real
 * Mosquitto: the broker splits the load, one bridge is killed with SIGKILL mid-stream and the
 * others carry on, and the ledger finds every acknowledged sample stored once.
 */
import { expect, it } from 'vitest';
import { MqttConnection } from '../../common/mqtt.js';
import { runCli, type Running } from '../harness/cli.js';
import { captureLogger } from '../harness/logs.js';
import { waitFor } from '../harness/mqtt.js';
import { freePort, tempDir } from '../harness/process.js';
import { useServers } from '../harness/servers.js';

const servers = useServers(['hp']);

interface SharedBridge {
  run: Running;
  port: number;
}

async function startBridge(n: number, queueDir: string): Promise<SharedBridge> {
  const port = await freePort();
  const run = runCli(['bridge'], {
    MQTT_URL: servers.broker.url,
    MQTT_CLIENT_ID: `shared-bridge-${n}`,
    MQTT_SHARE_GROUP: 'hostpulse',
    INFLUX_API: '1',
    INFLUX_URL: servers.influx.url,
    INFLUX_DATABASE: 'hp',
    FLUSH_INTERVAL: '100ms',
    QUEUE_DIR: queueDir,
    HTTP_PORT: String(port),
  });
  await run.waitForLog(
    (l) => l.msg === 'subscribed' || l.msg === 'broker connection restored' || (l.msg === 'connected to broker' && l['sessionPresent'] === true),
  );
  return { run, port };
}

async function received(b: SharedBridge): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${b.port}/metrics`)).text();
  return Number(/^hostpulse_bridge_received_total (\d+)$/m.exec(text)?.[1]);
}

/** What each bridge says when a wait fails: its counters and its warnings, so that a failure names its cause. */
async function diagnosis(bridges: readonly SharedBridge[]): Promise<string> {
  const parts = await Promise.all(
    bridges.map(async (b, i) => {
      const counters = await fetch(`http://127.0.0.1:${b.port}/metrics`)
        .then(async (r) =>
          (await r.text())
            .split('\n')
            .filter((l) => /^hostpulse_bridge_(received|written|write_retries|queue_points|rejected|dropped)/.test(l))
            .join(', '),
        )
        .catch((e: unknown) => `no /metrics: ${String(e)}`);
      const warnings = b.run
        .logs()
        .filter((l) => l.level >= 40)
        .map((l) => JSON.stringify(l))
        .slice(-10);
      return `bridge ${i + 1}: ${counters}\n  ${warnings.join('\n  ')}`;
    }),
  );
  return `stored ${await stored()}\n${parts.join('\n')}`;
}

/** waitFor, failing with what the bridges say. */
async function waitForBridges(bridges: readonly SharedBridge[], what: string, probe: () => Promise<true | undefined>, timeoutMs: number): Promise<void> {
  try {
    await waitFor(what, probe, timeoutMs);
  } catch (error) {
    throw new Error(`${String(error)}\n${await diagnosis(bridges)}`, { cause: error });
  }
}

async function stored(): Promise<number> {
  const r = await servers.influx.query(`SELECT count("usage") FROM "cpu" WHERE "host" =~ /^fleet-/`, 'hp');
  return (r.series[0]?.values[0]?.[1] as number | undefined) ?? 0;
}

/** 20 hosts × `rounds` samples at about 1,000 a second, numbered from `from`; resolves when all are acknowledged. */
async function publish(from: number, rounds: number): Promise<number> {
  const publisher = new MqttConnection({ url: servers.broker.url, clientId: `fleet-${from}`, clean: true, reconnect: false }, captureLogger('fleet').logger);
  await publisher.waitConnected(5000);
  const t0 = Date.now() - 3_600_000;
  const sends: Promise<void>[] = [];
  for (let r = from; r < from + rounds; r++) {
    for (let h = 0; h < 20; h++)
      sends.push(publisher.publish(`sensors/fleet-${h}/cpu_usage`, JSON.stringify({ value: r % 100, ts: t0 + r * 10, seq: r }), { qos: 1 }));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await Promise.all(sends);
  await publisher.close();
  return sends.length;
}

it('splits the stream among three bridges; with one killed the others carry on, and nothing is lost', async () => {
  const dirs = await Promise.all([1, 2, 3].map((n) => tempDir(`shared-queue-${n}`)));
  const bridges = await Promise.all([1, 2, 3].map((n, i) => startBridge(n, dirs[i] as string)));

  let sent = await publish(0, 150);
  await waitForBridges(bridges, 'the first part stored', async () => ((await stored()) === sent ? true : undefined), 30_000);
  const shares = await Promise.all(bridges.map(received));
  // Each bridge took a real part of the stream.
  for (const share of shares) expect(share).toBeGreaterThan(sent * 0.15);
  // Each message went to one bridge of the group (not to all three).
  expect(shares.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(sent);
  expect(shares.reduce((a, b) => a + b, 0)).toBeLessThan(sent * 1.1);

  // Bridge 2 dies mid-stream; the other two keep storing while it is gone.
  const second = publish(150, 150);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  expect(await bridges[1]?.run.stop('SIGKILL')).toBe(null);
  sent += await second;
  const [first, third] = [bridges[0] as SharedBridge, bridges[2] as SharedBridge];
  const before = (await received(first)) + (await received(third));
  sent += await publish(300, 50);
  await waitForBridges(
    [first, third],
    'the others carry on',
    async () => ((await received(first)) + (await received(third)) >= before + 50 * 20 * 0.5 ? true : undefined),
    20_000,
  );

  // Back with its session and its queue: what the broker kept for it, and what it had acknowledged, is stored.
  bridges[1] = await startBridge(2, dirs[1] as string);
  const total = await waitFor(
    'every acknowledged sample stored',
    async () => {
      const n = await stored();
      return n >= sent ? n : undefined;
    },
    40_000,
  );
  expect(total).toBe(sent);
  // Mosquitto kept routing a share to the killed member's session: the restarted bridge received it.
  expect(await received(bridges[1] as SharedBridge)).toBeGreaterThan(0);
  for (const b of bridges) expect(await b.run.stop()).toBe(0);
}, 120_000);

it('refuses MQTT_SHARE_GROUP where it has no use, and a malformed group', async () => {
  const bad = runCli(['bridge'], { MQTT_SHARE_GROUP: 'a/b', INFLUX_API: '1', INFLUX_URL: servers.influx.url, INFLUX_DATABASE: 'hp' });
  expect(await bad.exited).toBe(2);
  expect(bad.stderr()).toContain('MQTT_SHARE_GROUP: must be 1–64 letters, digits, "_" or "-"');
  const up = runCli(['up'], { MQTT_SHARE_GROUP: 'hostpulse', MQTT_PORT: String(await freePort()) });
  expect(await up.exited).toBe(2);
  expect(up.stderr()).toContain('MQTT_SHARE_GROUP: not used by hostpulse up');
});
