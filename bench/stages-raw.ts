/** The raw limits, measured in the same run as the bridge: broker → plain MQTT.js, and InfluxDB writes. */
import { createDatabase, publish, sleep, storedCount, waitReceived, type BenchContext } from './context.js';
import { cpuMicros } from '../test/harness/proc.js';
import { spawnScript } from './proc.js';
import type { RawSubscriberOptions } from './raw-subscriber.js';

const HOUR = 3_600_000;

/** R_live: the publisher at full speed for BENCH_SECONDS, a plain subscriber at `qos` counting. */
export async function rawLive(ctx: BenchContext, qos: 0 | 1): Promise<void> {
  const sub = spawnScript('raw-subscriber.ts', { url: ctx.broker.url, clientId: `bench-raw-live${qos}`, qos, clean: true } satisfies RawSubscriberOptions);
  try {
    await sub.waitFor('subscribed', 30_000);
    await sleep(500);
    const cpu0 = cpuMicros(sub.child);
    const pub = await publish(ctx, { prefix: `live${qos}`, mode: 'max', seconds: ctx.settings.seconds, t0: Date.now() - HOUR });
    const got = await waitReceived(() => sub.last('progress'), pub.acked);
    const cpu = cpuMicros(sub.child) - cpu0;
    const rate = (got.count * 1000) / (got.lastAt - pub.firstAt);
    ctx.log(`raw live QoS ${qos}: ${got.count} of ${pub.acked} in ${got.lastAt - pub.firstAt} ms, publisher ${rate.toFixed(0)} msg/s`);
    ctx.figures.push({
      id: `R_live_qos${qos}`,
      label: `broker → plain MQTT.js subscriber, live, QoS ${qos}`,
      value: rate,
      unit: 'msg/s',
      note: `${got.count.toLocaleString('en-US')} of ${pub.acked.toLocaleString('en-US')} published; publisher acked ${((pub.acked * 1000) / (pub.lastAckAt - pub.firstAt)).toFixed(0)} msg/s`,
    });
    ctx.figures.push({ id: `raw_cpu_qos${qos}`, label: `plain subscriber CPU per message, QoS ${qos}`, value: cpu / got.count, unit: 'µs/msg' });
  } finally {
    await sub.stop();
  }
}

/** R_drain: BENCH_BACKLOG messages queued for an offline persistent session, then received at once. */
export async function rawDrain(ctx: BenchContext, qos: 0 | 1): Promise<void> {
  const options = { url: ctx.broker.url, clientId: `bench-raw-drain${qos}`, qos, clean: false } satisfies RawSubscriberOptions;
  const first = spawnScript('raw-subscriber.ts', { ...options, subscribeOnly: true });
  await first.waitFor('subscribed', 30_000);
  await new Promise((r) => (first.child.exitCode === null ? first.child.once('exit', r) : r(undefined)));
  const pub = await publish(ctx, { prefix: `drain${qos}`, mode: 'max', count: ctx.settings.backlog, t0: Date.now() - HOUR });
  ctx.log(`raw drain QoS ${qos}: ${pub.acked} queued at ${((pub.acked * 1000) / (pub.lastAckAt - pub.firstAt)).toFixed(0)} msg/s`);
  const sub = spawnScript('raw-subscriber.ts', { ...options, expect: pub.acked });
  try {
    const connected = await sub.waitFor('connected', 30_000);
    const done = await sub.waitFor('done', 600_000).catch(() => undefined);
    const got = done ? { count: done['count'] as number, lastAt: done['lastAt'] as number } : await waitReceived(() => sub.last('progress'), pub.acked);
    const ms = got.lastAt - (connected['at'] as number);
    ctx.figures.push({
      id: `R_drain_qos${qos}`,
      label: `backlog drain to plain MQTT.js, QoS ${qos}`,
      value: (got.count * 1000) / ms,
      unit: 'msg/s',
      note: `${got.count.toLocaleString('en-US')} of ${pub.acked.toLocaleString('en-US')} queued, ${(ms / 1000).toFixed(1)} s from CONNACK`,
    });
  } finally {
    await sub.stop();
  }
}

/** InfluxDB's own write rate: pre-encoded line-protocol batches, a few requests in flight. */
export async function influxRaw(ctx: BenchContext): Promise<void> {
  const { influxPoints: points, influxBatch: batch, influxInFlight: inFlight } = ctx.settings;
  const db = 'bench_influx_raw';
  await createDatabase(ctx, db);
  const t0 = Date.now() - HOUR;
  const bodies: Buffer[] = [];
  for (let start = 0; start < points; start += batch) {
    let text = '';
    for (let i = start; i < Math.min(points, start + batch); i++)
      text += `cpu,host=raw-${i % ctx.settings.hosts} usage=${i % 100} ${t0 + Math.floor(i / ctx.settings.hosts)}\n`;
    bodies.push(Buffer.from(text));
  }
  const url = `${ctx.influx.url}/write?db=${db}&precision=ms`;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < bodies.length) {
      const body = bodies[next++] as Buffer;
      const res = await fetch(url, { method: 'POST', body });
      if (res.status !== 204) throw new Error(`InfluxDB write: ${res.status} ${await res.text()}`);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  const ms = performance.now() - started;
  const stored = await storedCount(ctx, db);
  ctx.figures.push({
    id: 'R_influx',
    label: `InfluxDB write, pre-encoded lines, batch ${batch}, ${inFlight} in flight`,
    value: (stored * 1000) / ms,
    unit: 'points/s',
    note: `${stored.toLocaleString('en-US')} of ${points.toLocaleString('en-US')} points stored in ${(ms / 1000).toFixed(1)} s`,
  });
}
