/** The bridge's write path against real InfluxDB 1.6: what the database refuses is isolated, counted and dropped; the rest lands. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createInfluxV1Sink } from '../../bridge/sinks/influx-v1.js';
import type { LineBatch } from '../../bridge/sink.js';
import { createStats } from '../../bridge/stats.js';
import { Writer } from '../../bridge/writer.js';
import { startInfluxDB, type InfluxDB } from '../harness/influxdb.js';
import { captureLogger } from '../harness/logs.js';

let influx: InfluxDB;
const T = 1_763_683_200_000;

beforeAll(async () => {
  // A small max-body-size, so that a batch of a few hundred points is refused with 413.
  influx = await startInfluxDB(['conflict', 'big'], undefined, ['max-body-size = 4000']);
});
afterAll(() => influx?.stop());

function writer(database: string, batchSize: number) {
  const stats = createStats();
  const { logger, lines } = captureLogger();
  const real = createInfluxV1Sink({ url: influx.url, database, timeoutMs: 5000 });
  const requests: { points: number; status: number | undefined }[] = [];
  const sink = {
    ...real,
    write: async (batch: LineBatch) => {
      try {
        await real.write(batch);
        requests.push({ points: batch.count, status: 204 });
      } catch (error) {
        requests.push({ points: batch.count, status: (error as { status?: number }).status });
        throw error;
      }
    },
  };
  const w = new Writer(sink, { batchSize, flushIntervalMs: 50, maxBuffered: 100_000 }, stats, logger);
  return { w, stats, lines, requests };
}

it('drops only the point InfluxDB refuses (field type conflict) and writes the rest of its batch', async () => {
  await fetch(`${influx.url}/write?db=conflict&precision=ms`, { method: 'POST', body: `cpu,host=old temp="hot" ${T}` });
  const { w, stats, lines, requests } = writer('conflict', 1000);
  w.start();
  for (let i = 0; i < 20; i++) w.push(`mem,host=pc${i} usage=${i}.5 ${T + i}`);
  w.push(`cpu,host=pc1 temp=41.5 ${T + 100}`);
  for (let i = 20; i < 40; i++) w.push(`mem,host=pc${i} usage=${i}.5 ${T + i}`);
  expect(await w.stop(10_000)).toBe(0);
  expect(stats).toMatchObject({ written: 40, dbRejected: 1 });
  const count = await influx.query('SELECT count("usage") FROM "mem"', 'conflict');
  expect(count.series[0]?.values[0]?.[1]).toBe(40);
  expect(lines.filter((l) => l.msg === 'database refused a point, dropped')).toHaveLength(1);
  expect(requests[0]).toEqual({ points: 41, status: 400 });
  expect(requests.filter((r) => r.status === 400).at(-1)).toEqual({ points: 1, status: 400 });
});

it("splits a batch over the server's body limit (413) until it fits", async () => {
  const { w, stats, requests } = writer('big', 500);
  w.start();
  for (let i = 0; i < 500; i++) w.push(`disk,host=pc,disk=d${i} usage=${i} ${T}`);
  expect(await w.stop(20_000)).toBe(0);
  expect(stats).toMatchObject({ written: 500, dbRejected: 0 });
  expect(requests[0]).toEqual({ points: 500, status: 413 });
  expect(requests.filter((r) => r.status === 204).reduce((n, r) => n + r.points, 0)).toBe(500);
  const count = await influx.query('SELECT count("usage") FROM "disk"', 'big');
  expect(count.series[0]?.values[0]?.[1]).toBe(500);
});
