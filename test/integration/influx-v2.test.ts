/**
 * The v2 write API, for real: the bridge writes through @influxdata/influxdb-client to
 * VictoriaMetrics, which answers InfluxDB's /api/v2/write (InfluxDB 2 has no Debian package).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execCli, runCli, stopAllCli, type Running } from '../harness/cli.js';
import { published } from '../harness/ledger.js';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.js';
import { capture, waitFor, type Capture } from '../harness/mqtt.js';
import { startVictoria, type Victoria } from '../harness/victoria.js';

let broker: Mosquitto;
let vm: Victoria;
let bridge: Running;
let watch: Capture;

beforeAll(async () => {
  [broker, vm] = await Promise.all([startMosquitto(), startVictoria()]);
  watch = await capture(broker.url);
  bridge = runCli(['bridge'], {
    MQTT_URL: broker.url,
    INFLUX_URL: vm.url,
    INFLUX_ORG: 'home',
    INFLUX_BUCKET: 'hostpulse',
    INFLUX_TOKEN: 'unused',
    FLUSH_INTERVAL: '100ms',
  });
  await bridge.waitForLog((l) => l.msg === 'subscribed');
});

afterAll(async () => {
  await bridge?.stop();
  await stopAllCli();
  await watch?.close();
  await Promise.all([broker?.stop(), vm?.stop()]);
});

it('writes every sample through the v2 API with its host, instance tag, value and sample time', async () => {
  const host = 'v2-workstation';
  const run = await execCli(
    ['agent', '--once', '--replay', new URL('../fixtures/machines/linux-2gpu-workstation.json', import.meta.url).pathname, '--host', host],
    {
      MQTT_URL: broker.url,
    },
  );
  expect(run.code, run.stderr).toBe(0);
  const count = (JSON.parse(run.stdout.split('\n').find((l) => l.includes('published one round')) ?? '{}') as { published: number }).published;
  await waitFor('every sample on the broker', () => (published(watch.forHost(host)).length === count ? true : undefined));
  const samples = published(watch.forHost(host));
  const series = await waitFor('every series in VictoriaMetrics', async () => {
    const s = await vm.export(`{host="${host}"}`);
    return s.length === count ? s : undefined;
  });
  // VictoriaMetrics names a series <measurement>_<field> and keeps the tags as labels.
  const gpu0 = series.find((s) => s.metric['__name__'] === 'gpu_temp' && s.metric['gpu'] === '0');
  expect(gpu0?.values).toEqual([43]);
  const ts = samples[0]!.ts;
  expect(gpu0?.timestamps).toEqual([ts]);
  const root = series.find((s) => s.metric['__name__'] === 'disk_usage' && s.metric['disk'] === 'root');
  expect(root?.values).toEqual([samples.find((s) => s.metric === 'disk_root_usage')!.value]);
  for (const s of series) expect(s.metric['host']).toBe(host);
});

it('keeps accepting messages while the database is down, and writes them once it is back', async () => {
  const port = new URL(vm.url).port;
  await vm.stop();
  const host = 'v2-outage';
  const run = await execCli(['agent', '--once', '--replay', new URL('../fixtures/machines/linux-laptop.json', import.meta.url).pathname, '--host', host], {
    MQTT_URL: broker.url,
  });
  expect(run.code, run.stderr).toBe(0);
  await bridge.waitForLog((l) => l.msg === 'write failed, retrying');
  vm = await startVictoria(Number(port));
  const count = published(watch.forHost(host)).length;
  const series = await waitFor(
    'the samples written after the outage',
    async () => {
      const s = await vm.export(`{host="${host}"}`);
      return s.length === count ? s : undefined;
    },
    40_000,
  );
  expect(series).toHaveLength(count);
  await bridge.waitForLog((l) => l.msg === 'database writable again');
});

/**
 * InfluxDB 2 has no Debian package, and VictoriaMetrics accepts any bucket, so the start-up check's
 * refusals are tested against InfluxDB 2.7's own answers, replayed byte for byte (status, headers and
 * body as 2.7.6 sends them: influxdata/influxdb#25049; the empty-body answer from 2.x's write handler,
 * which checks the bucket and token before it refuses an empty body).
 */
describe('start-up check against InfluxDB 2 answers', () => {
  async function replaying(status: number, body: string): Promise<{ url: string; close: () => Promise<void>; paths: string[] }> {
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url ?? '');
      res.writeHead(status, {
        'Content-Type': 'application/json; charset=utf-8',
        'X-Influxdb-Build': 'OSS',
        'X-Influxdb-Version': 'v2.7.6',
        'X-Platform-Error-Code': JSON.parse(body).code,
      });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, paths, close: () => new Promise((resolve) => server.close(() => resolve())) };
  }

  it('starts when InfluxDB 2 answers the empty check write with "writing requires points" (bucket and token are good)', async () => {
    const server = await replaying(400, '{"code":"invalid","message":"writing requires points"}');
    try {
      const bridge = runCli(['bridge'], {
        MQTT_URL: broker.url,
        INFLUX_URL: server.url,
        INFLUX_ORG: 'home',
        INFLUX_BUCKET: 'hostpulse',
        INFLUX_TOKEN: 't',
        MQTT_CLIENT_ID: 'v2-check',
      });
      await bridge.waitForLog((l) => l.msg === 'database ready');
      expect(await bridge.stop()).toBe(0);
    } finally {
      await server.close();
    }
  });

  it.each([
    [404, '{"code":"not found","message":"bucket \\"nope\\" not found"}', 'bucket "nope" not found'],
    [401, '{"code":"unauthorized","message":"unauthorized access"}', 'credentials refused (401 unauthorized access)'],
  ])("exits 1 on %i with the server's reason", async (status, body, reason) => {
    const server = await replaying(status, body);
    try {
      const run = await execCli(['bridge'], { MQTT_URL: broker.url, INFLUX_URL: server.url, INFLUX_ORG: 'home', INFLUX_BUCKET: 'nope', INFLUX_TOKEN: 't' });
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(reason);
      expect(server.paths).toEqual(['/api/v2/write?bucket=nope&precision=ms&org=home']);
    } finally {
      await server.close();
    }
  });
});
