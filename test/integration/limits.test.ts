/** Per-host limits: floods and invented metric names are dropped and counted, other hosts are unaffected. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttConnection } from '../../common/mqtt.js';
import { runCli, stopAllCli } from '../harness/cli.js';
import { startInfluxDB, type InfluxDB } from '../harness/influxdb.js';
import { captureLogger } from '../harness/logs.js';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.js';
import { waitFor } from '../harness/mqtt.js';

describe('a flooding host on real servers', () => {
  let broker: Mosquitto;
  let influx: InfluxDB;
  beforeAll(async () => {
    // As the shipped config: no 1,000-message cap on what the broker queues for the bridge.
    [broker, influx] = await Promise.all([startMosquitto({ config: ['allow_anonymous true', 'max_queued_messages 0'] }), startInfluxDB(['limits'])]);
  });
  afterAll(async () => {
    await stopAllCli();
    await Promise.all([broker?.stop(), influx?.stop()]);
  });

  it('drops and counts the flood and the invented names; a normal host is stored in full', async () => {
    const bridge = runCli(['bridge'], {
      MQTT_URL: broker.url,
      INFLUX_API: '1',
      INFLUX_URL: influx.url,
      INFLUX_DATABASE: 'limits',
      FLUSH_INTERVAL: '100ms',
      STATS_INTERVAL: '1s',
      HOST_RATE_LIMIT: '5', // burst: 300 messages
      MAX_METRICS_PER_HOST: '20',
    });
    await bridge.waitForLog((l) => l.msg === 'subscribed');
    const publisher = new MqttConnection({ url: broker.url, clientId: 'flood', clean: true, reconnect: false }, captureLogger('flood').logger);
    await publisher.waitConnected(5000);
    const t0 = Date.now() - 60_000;
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 2000; i++) sends.push(publisher.publish('sensors/flooder/cpu_usage', JSON.stringify({ value: 1, ts: t0 + i }), { qos: 1 }));
    for (let i = 0; i < 50; i++) sends.push(publisher.publish(`sensors/inventor/disk_d${i}_usage`, '5', { qos: 1 }));
    for (let i = 0; i < 100; i++) sends.push(publisher.publish('sensors/quiet-pc/cpu_usage', JSON.stringify({ value: 2, ts: t0 + i }), { qos: 1 }));
    await Promise.all(sends);
    await publisher.close();
    const stats = await bridge.waitForLog((l) => l.msg === 'stats' && (l['received'] as number) >= 2150, 20_000);
    const rejected = stats['rejected'] as Record<string, number>;
    expect(rejected['rate_limited']).toBeGreaterThanOrEqual(1600);
    expect(rejected['too_many_metrics']).toBe(30);
    const quiet = await waitFor('the quiet host', async () => {
      const r = await influx.query(`SELECT count("usage") FROM "cpu" WHERE "host" = 'quiet-pc'`, 'limits');
      return r.series[0]?.values[0]?.[1] === 100 ? 100 : undefined;
    });
    expect(quiet).toBe(100);
    expect(await bridge.stop()).toBe(0);
  });
});
