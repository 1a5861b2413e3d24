/**
 * `hostpulse up`'s embedded broker on the write path: the publisher at full speed (QoS 1) for
 * BENCH_SECONDS, fanned out to BENCH_UP_SUBSCRIBERS plain MQTT.js subscribers (QoS 0), each in its
 * own process. The raw limit is bare aedes on each socket (bench/broker.ts), measured in the same
 * run with the same publisher and subscribers. Figures: messages per second each subscriber
 * received (the slowest), and socket writes per packet the broker sent (PUBLISH and PUBACK), read
 * from /proc/<pid>/io (syscw) of the broker process.
 */
import { writeCalls } from '../test/harness/proc.js';
import type { BrokerOptions } from './broker.js';
import { sleep, waitReceived, type BenchContext } from './context.js';
import { spawnScript, type ChildEvent } from './proc.js';
import type { PublisherOptions } from './publisher.js';
import type { RawSubscriberOptions } from './raw-subscriber.js';

const HOUR = 3_600_000;

interface Fanout {
  /** Messages per second the slowest subscriber received. */
  readonly rate: number;
  readonly writesPerPacket: number;
  readonly note: string;
}

async function fanout(ctx: BenchContext, kind: BrokerOptions['kind'], subscribers: number): Promise<Fanout> {
  const broker = spawnScript('broker.ts', { kind } satisfies BrokerOptions);
  const subs: ReturnType<typeof spawnScript>[] = [];
  try {
    const url = `mqtt://127.0.0.1:${(await broker.waitFor('listening', 30_000))['port'] as number}`;
    for (let i = 0; i < subscribers; i++)
      subs.push(spawnScript('raw-subscriber.ts', { url, clientId: `bench-fanout-${kind}-${i}`, qos: 0, clean: true } satisfies RawSubscriberOptions));
    await Promise.all(subs.map((s) => s.waitFor('subscribed', 30_000)));
    await sleep(500);
    const writes0 = writeCalls(broker.child);
    const { settings } = ctx;
    const publisher = spawnScript('publisher.ts', {
      url,
      prefix: `fanout-${kind}`,
      hosts: settings.hosts,
      window: settings.window,
      mode: 'max',
      seconds: settings.seconds,
      t0: Date.now() - HOUR,
    } satisfies PublisherOptions);
    let done: ChildEvent;
    try {
      await publisher.waitFor('started', 30_000);
      done = await publisher.waitFor('done', settings.seconds * 1000 + 120_000);
    } finally {
      await publisher.stop();
    }
    const acked = done['acked'] as number;
    const firstAt = done['firstAt'] as number;
    const got = await Promise.all(subs.map((s) => waitReceived(() => s.last('progress'), acked)));
    const writes = writeCalls(broker.child) - writes0;
    const received = got.reduce((n, g) => n + g.count, 0);
    const rate = Math.min(...got.map((g) => (g.count * 1000) / (g.lastAt - firstAt)));
    ctx.log(`up-broker ${kind}: ${acked} published, ${received} delivered to ${subscribers}, ${writes} writes`);
    return {
      rate,
      writesPerPacket: writes / (received + acked),
      note: `${acked.toLocaleString('en-US')} published (QoS 1), ${received.toLocaleString('en-US')} delivered to ${subscribers} subscribers (QoS 0); ${writes.toLocaleString('en-US')} write calls for ${(received + acked).toLocaleString('en-US')} packets`,
    };
  } finally {
    await Promise.all(subs.map((s) => s.stop()));
    await broker.stop();
  }
}

export async function upBrokerFanout(ctx: BenchContext): Promise<void> {
  const subscribers = Number(process.env['BENCH_UP_SUBSCRIBERS'] ?? 4);
  const raw = await fanout(ctx, 'aedes', subscribers);
  const up = await fanout(ctx, 'embedded', subscribers);
  ctx.figures.push(
    {
      id: 'R_aedes_fanout',
      label: `bare aedes on net.Socket → ${subscribers} plain subscribers, per subscriber`,
      value: raw.rate,
      unit: 'msg/s',
      note: raw.note,
    },
    { id: 'R_aedes_writes', label: 'bare aedes: socket writes per packet sent', value: raw.writesPerPacket, unit: 'writes' },
    {
      id: 'up_broker_fanout',
      label: `up's broker → ${subscribers} plain subscribers, per subscriber`,
      value: up.rate,
      unit: 'msg/s',
      ref: 'R_aedes_fanout',
      target: { op: '>=', bound: 0.9 },
      note: up.note,
    },
    {
      id: 'up_broker_writes',
      label: "up's broker: socket writes per packet sent",
      value: up.writesPerPacket,
      unit: 'writes',
      ref: 'R_aedes_writes',
      target: { op: '<=', bound: 1.1 },
    },
  );
}
