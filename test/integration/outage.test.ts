/** A broker outage while agents run: they keep sampling, and every round reaches InfluxDB once the broker is back. */
import { afterAll, expect, it } from 'vitest';
import { runCli, stopAllCli } from '../harness/cli.js';
import { startInfluxDB, type InfluxDB } from '../harness/influxdb.js';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.js';
import { RECONNECTED_WITHIN_MS, waitFor } from '../harness/mqtt.js';

let broker: Mosquitto | undefined;
let influx: InfluxDB | undefined;

afterAll(async () => {
  await stopAllCli();
  await Promise.all([broker?.stop(), influx?.stop()]);
});

async function roundsStored(host: string): Promise<number[]> {
  const r = await influx!.query(`SELECT "uptime" FROM "system" WHERE "host" = '${host}'`, 'hp');
  return (r.series[0]?.values ?? []).map((v) => v[0] as number);
}

it('samples on through a broker outage and delivers every round afterwards', async () => {
  // Persistent, as the shipped broker config is: the bridge's session and its queue survive the restart.
  [broker, influx] = await Promise.all([startMosquitto({ persistent: true }), startInfluxDB(['hp'])]);
  const bridge = runCli(['bridge'], { MQTT_URL: broker.url, INFLUX_API: '1', INFLUX_URL: influx.url, INFLUX_DATABASE: 'hp', FLUSH_INTERVAL: '100ms' });
  await bridge.waitForLog((l) => l.msg === 'subscribed');
  const host = 'outage-pc';
  const agent = runCli(['agent', '--replay', new URL('../fixtures/machines/linux-laptop.json', import.meta.url).pathname], {
    MQTT_URL: broker.url,
    SENSORS_HOST: host,
    SAMPLE_INTERVAL: '1s',
  });
  await waitFor('two rounds stored', async () => ((await roundsStored(host)).length >= 2 ? true : undefined));

  await broker.halt();
  const downAt = Date.now();
  await agent.waitForLog((l) => l.msg === 'broker unreachable, retrying');
  await new Promise((r) => setTimeout(r, 3500));
  broker = await broker.start();
  const upAt = Date.now();
  await agent.waitForLog((l) => l.msg === 'broker connection restored', RECONNECTED_WITHIN_MS);
  const restored = await bridge.waitForLog((l) => l.msg === 'broker connection restored', RECONNECTED_WITHIN_MS);
  expect(restored['sessionPresent']).toBe(true);
  await new Promise((r) => setTimeout(r, 1500));

  expect(await agent.stop('SIGTERM')).toBe(0);
  const stopped = agent.logs().find((l) => l.msg === 'agent stopped');
  expect(stopped).toMatchObject({ queued: 0, dropped: 0 });
  const rounds = stopped?.['rounds'] as number;
  const stored = await waitFor('every round stored', async () => {
    const ts = await roundsStored(host);
    return ts.length >= rounds ? ts : undefined;
  });
  expect(stored).toHaveLength(rounds);
  const duringOutage = stored.filter((ts) => ts > downAt && ts < upAt);
  expect(duringOutage.length).toBeGreaterThanOrEqual(3);
  expect(await bridge.stop()).toBe(0);
}, 120_000);
