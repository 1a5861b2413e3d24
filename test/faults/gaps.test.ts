/**
 * Losses the bridge can see though no one told it: gaps in an agent's sequence numbers. The case
 * that matters: the bridge away longer than the broker will queue for it.
 */
import { describe, expect, it } from 'vitest';
import { MqttConnection } from '../../common/mqtt.js';
import { runCli } from '../harness/cli.js';
import { captureLogger } from '../harness/logs.js';
import { waitFor } from '../harness/mqtt.js';
import { freePort } from '../harness/process.js';
import { useServers } from '../harness/servers.js';

describe('a bridge away longer than the broker queues for it', () => {
  // Mosquitto's default cap: 1,000 queued messages per offline client (here 100), then it drops with one log line.
  const servers = useServers(['hp'], { brokerConfig: ['allow_anonymous true', 'max_queued_messages 100'] });

  it('reports the samples the broker dropped as missing, on /metrics and in InfluxDB', async () => {
    const port = await freePort();
    const env = {
      MQTT_URL: servers.broker.url,
      MQTT_CLIENT_ID: 'gap-bridge',
      INFLUX_API: '1',
      INFLUX_URL: servers.influx.url,
      INFLUX_DATABASE: 'hp',
      FLUSH_INTERVAL: '100ms',
      STATS_INTERVAL: '1s',
      HTTP_PORT: String(port),
    };
    const first = runCli(['bridge'], env);
    await first.waitForLog((l) => l.msg === 'subscribed');
    const publisher = new MqttConnection({ url: servers.broker.url, clientId: 'gap-agent', clean: true, reconnect: false }, captureLogger('gap').logger);
    await publisher.waitConnected(5000);
    const t0 = Date.now() - 60_000;
    const publish = (from: number, to: number): Promise<void[]> =>
      Promise.all(
        Array.from({ length: to - from }, (_, i) =>
          publisher.publish('sensors/gap-pc/cpu_usage', JSON.stringify({ value: 1, ts: t0 + from + i, seq: from + i }), { qos: 1 }),
        ),
      );
    await publish(0, 10);
    await waitFor('the first samples stored', async () =>
      (await servers.influx.query('SELECT count("usage") FROM "cpu"', 'hp')).series[0]?.values[0]?.[1] === 10 ? true : undefined,
    );
    expect(await first.stop()).toBe(0);

    await publish(10, 510); // the broker keeps 100 of these for the bridge and drops 400
    await publisher.close();
    const second = runCli(['bridge'], env);
    const missing = async (): Promise<number> =>
      Number(/^hostpulse_bridge_missing_total (\d+)$/m.exec(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())?.[1]);
    await second.waitForLog((l) => l.msg === 'broker connection restored' || l.msg === 'connected to broker');
    const stored = await waitFor('the queued samples stored', async () => {
      const n = (await servers.influx.query('SELECT count("usage") FROM "cpu"', 'hp')).series[0]?.values[0]?.[1] as number;
      return n >= 110 ? n : undefined;
    });
    expect(stored).toBe(110);
    // Mosquitto kept the oldest 100 and dropped the newer 400: the gap shows at the agent's next sample.
    const late = new MqttConnection({ url: servers.broker.url, clientId: 'gap-agent', clean: true, reconnect: false }, captureLogger('gap2').logger);
    await late.waitConnected(5000);
    await late.publish('sensors/gap-pc/cpu_usage', JSON.stringify({ value: 1, ts: t0 + 510, seq: 510 }), { qos: 1 });
    await late.close();
    expect(await waitFor('the gap counted', async () => ((await missing()) === 400 ? 400 : undefined))).toBe(400);
    const log = second.logs().find((l) => l.msg.startsWith('samples missing'));
    expect(log).toMatchObject({ host: 'gap-pc', missing: 400 });
    const counted = await waitFor('the count stored', async () => {
      const r = await servers.influx.query('SELECT last("missing") FROM "hostpulse_bridge" WHERE "bridge" = \'gap-bridge\'', 'hp');
      return (r.series[0]?.values[0]?.[1] as number) >= 400 ? (r.series[0]?.values[0]?.[1] as number) : undefined;
    });
    expect(counted).toBe(400);
    expect(await second.stop()).toBe(0);
  }, 60_000);
});
