/** The bridge started before its broker and database: it waits and retries with backoff, it does not crash. */
import { afterAll, expect, it } from 'vitest';
import { execCli, runCli, stopAllCli } from '../harness/cli.js';
import { startInfluxDB, type InfluxDB } from '../harness/influxdb.js';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.js';
import { freePort } from '../harness/process.js';
import { waitFor } from '../harness/mqtt.js';

let broker: Mosquitto | undefined;
let influx: InfluxDB | undefined;

afterAll(async () => {
  await stopAllCli();
  await Promise.all([broker?.stop(), influx?.stop()]);
});

it('waits for an unreachable database, then for an unreachable broker, then stores data', async () => {
  const [mqttPort, influxPort, httpPort] = [await freePort(), await freePort(), await freePort()];
  const healthz = async () => {
    const res = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const bridge = runCli(['bridge'], {
    HTTP_PORT: String(httpPort),
    MQTT_URL: `mqtt://127.0.0.1:${mqttPort}`,
    INFLUX_API: '1',
    INFLUX_URL: `http://127.0.0.1:${influxPort}`,
    INFLUX_DATABASE: 'late',
    FLUSH_INTERVAL: '100ms',
  });
  const firstRetry = await bridge.waitForLog((l) => l.msg === 'database unreachable, retrying');
  expect(firstRetry['err']).toContain('ECONNREFUSED');
  await bridge.waitForLog((l) => l.msg === 'database unreachable, retrying' && l['attempt'] === 2);
  const delays = bridge
    .logs()
    .filter((l) => l.msg === 'database unreachable, retrying')
    .map((l) => l['retryInMs'] as number);
  expect(delays[0]).toBeGreaterThanOrEqual(1000); // backoff, not a busy loop
  expect(await healthz()).toEqual({ status: 503, body: { ok: false, broker: false, database: false, buffered: 0, queue: 'ok', status: 'unavailable' } });

  influx = await startInfluxDB(['late'], influxPort);
  await bridge.waitForLog((l) => l.msg === 'database ready', 40_000);
  await bridge.waitForLog((l) => l.msg === 'broker unreachable, retrying');
  expect(bridge.child.exitCode).toBeNull();

  broker = await startMosquitto({ port: mqttPort });
  await bridge.waitForLog((l) => l.msg === 'subscribed', 40_000);
  expect(await healthz()).toMatchObject({ status: 200, body: { ok: true, broker: true, database: true, status: 'ok' } });
  const run = await execCli(['agent', '--once', '--host', 'late-pc'], { MQTT_URL: broker.url });
  expect(run.code, run.stderr).toBe(0);
  const rows = await waitFor('stored data', async () => (await influx!.query(`SELECT "usage" FROM "cpu" WHERE "host" = 'late-pc'`, 'late')).series[0]?.values);
  expect(rows).toHaveLength(1);
  // The counters in Prometheus' text format, once the whole round is written (it may take more than one batch).
  const read = (text: string, name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  const metrics = await waitFor('the round written', async () => {
    const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    return read(text, 'hostpulse_bridge_written_total') >= 10 ? text : undefined;
  });
  for (const line of metrics.trim().split('\n')) expect(line).toMatch(/^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[a-z_]+="[^"]*"\})? -?[0-9.e+]+)$/);
  const value = (name: string): number => read(metrics, name);
  expect(value('hostpulse_bridge_received_total')).toBeGreaterThanOrEqual(10);
  expect(value('hostpulse_bridge_written_total')).toBeGreaterThanOrEqual(10);
  expect(value('hostpulse_bridge_broker_connected')).toBe(1);
  expect(value('hostpulse_bridge_database_writable')).toBe(1);
  expect(value('hostpulse_bridge_write_duration_seconds_count')).toBeGreaterThan(0);
  expect(metrics).toContain('hostpulse_bridge_rejected_total{reason="unknown_metric"} 0');
  expect(value('hostpulse_bridge_queue_bytes')).toBeGreaterThanOrEqual(0);
  expect(await bridge.stop()).toBe(0);
});
