/**
 * The one publisher of every stage, run as its own process (bench/proc.ts `spawnScript`).
 *
 * Message i goes to host `<prefix>-<i % hosts>` on `sensors/<host>/cpu_usage` with the agent's
 * payload `{"value","ts","unit","seq"}` (seq: that host's count, value seq % 100), built by a
 * template. QoS 1 always.
 * - `max`: as fast as the broker acknowledges, at most `window` messages in flight, for `seconds`
 *   or until `count` messages.
 * - `paced`: `rate` messages per second (all hosts together) for `seconds`.
 * `ts` is `t0 + seq` (unique per host, so InfluxDB keeps every point), or with `tsNow` the time of
 * publishing (for latency).
 *
 * Reports `started` {at}, `progress` {acked} every second, `done` {sent, acked, firstAt, lastAckAt}.
 */
import { createLogger } from '../common/logger.js';
import { MqttConnection } from '../common/mqtt.js';
import { childOptions, report } from './proc.js';

export interface PublisherOptions {
  readonly url: string;
  readonly prefix: string;
  readonly hosts: number;
  readonly mode: 'max' | 'paced';
  readonly seconds?: number;
  readonly count?: number;
  readonly rate?: number;
  readonly window: number;
  readonly t0: number;
  readonly tsNow?: boolean;
}

const o = childOptions<PublisherOptions>();
const logger = createLogger({ name: 'bench-publisher', level: 'warn', fd: 2 });
const connection = new MqttConnection({ url: o.url, clientId: `bench-pub-${process.pid}`, clean: true, reconnect: false }, logger);
await connection.waitConnected(10_000);

const topics = Array.from({ length: o.hosts }, (_, h) => `sensors/${o.prefix}-${h}/cpu_usage`);
const limit = o.count ?? Number.POSITIVE_INFINITY;
let sent = 0;
let acked = 0;
let inFlight = 0;
let lastAckAt = 0;
let finished = false;
const firstAt = Date.now();
const deadline = o.seconds === undefined ? Number.POSITIVE_INFINITY : firstAt + o.seconds * 1000;
report('started', { at: firstAt });
const progress = setInterval(() => report('progress', { acked, sent }), 1000);

const done = new Promise<void>((resolve) => {
  const acknowledged = (): void => {
    acked++;
    inFlight--;
    lastAckAt = Date.now();
    if (o.mode === 'max') pump();
    if (finished && inFlight === 0) resolve();
  };
  const failed = (error: unknown): void => {
    process.stderr.write(`publish failed: ${String(error)}\n`);
    process.exit(1);
  };
  const publishOne = (): void => {
    const h = sent % o.hosts;
    const seq = Math.floor(sent / o.hosts);
    const ts = o.tsNow ? Date.now() : o.t0 + seq;
    sent++;
    inFlight++;
    connection.publish(topics[h] as string, `{"value":${seq % 100},"ts":${ts},"unit":"%","seq":${seq}}`, { qos: 1 }).then(acknowledged, failed);
  };
  const finish = (): void => {
    finished = true;
    if (inFlight === 0) resolve();
  };
  const pump = (): void => {
    if (finished) return;
    if (sent >= limit || Date.now() >= deadline) return finish();
    while (inFlight < o.window && sent < limit) publishOne();
  };
  if (o.mode === 'max') {
    pump();
    // A stage bounded by time ends even if no acknowledgement comes to call pump.
    if (deadline !== Number.POSITIVE_INFINITY) setTimeout(() => pump(), deadline - Date.now() + 1);
    return;
  }
  const rate = o.rate ?? 1000;
  const tick = setInterval(() => {
    const now = Date.now();
    if (now >= deadline) {
      clearInterval(tick);
      return finish();
    }
    const due = Math.min(limit, Math.floor(((now - firstAt) * rate) / 1000));
    while (sent < due) publishOne();
  }, 5);
});

await done;
clearInterval(progress);
report('done', { sent, acked, firstAt, lastAckAt });
await connection.close();
process.exit(0);
