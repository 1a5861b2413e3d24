/**
 * The agent's outbox on a real Mosquitto: bounded by size (MAX_QUEUE_BYTES) and by age
 * (MAX_QUEUE_AGE), the drops counted and logged once, the rest delivered in order.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Outbox } from '../../agent/outbox.js';
import { DiskQueue } from '../../common/disk-queue.js';
import { MqttConnection } from '../../common/mqtt.js';
import { captureLogger } from '../harness/logs.js';
import { capture, waitFor } from '../harness/mqtt.js';
import { useBroker } from '../harness/servers.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const servers = useBroker();

describe('outbox bounds', () => {
  /** A round of 100 samples of about 100 bytes each, numbered from `index * 100`. */
  const round = (host: string, index: number): { topic: string; payload: string }[] =>
    Array.from({ length: 100 }, (_, i) => ({
      topic: `sensors/${host}/cpu_usage`,
      payload: JSON.stringify({ value: i, ts: index, unit: '%', seq: index * 100 + i, pad: 'x'.repeat(40) }),
    }));
  const seqs = (messages: readonly { payload: string }[]): number[] => messages.map((m) => (JSON.parse(m.payload) as { seq: number }).seq);

  /** An outbox on a real broker connection, filled while not yet started (as while the broker is away). */
  async function outboxFor(name: string, maxBytes: number, maxAgeMs: number, now: () => number = Date.now) {
    const { logger, lines } = captureLogger(name);
    const queue = new DiskQueue(mkdtempSync(join(tmpdir(), 'hostpulse-outbox-')), { segmentBytes: maxBytes / 8, maxBytes, fsyncMs: 1000 });
    const mqtt = new MqttConnection({ url: servers.broker.url, clientId: name, clean: true, reconnect: true }, logger);
    await mqtt.waitConnected(5000);
    const seen = await capture(servers.broker.url, `sensors/${name}/#`);
    const outbox = new Outbox({ queue, publisher: mqtt, logger, options: { maxAgeMs, window: 500 }, now });
    const close = async (): Promise<void> => {
      await outbox.stop(1000);
      await Promise.all([mqtt.close(), seen.close()]);
    };
    return { outbox, queue, lines, seen, close };
  }

  it('drops the oldest samples beyond MAX_QUEUE_BYTES, counts them, and delivers the rest in order', async () => {
    const { outbox, queue, lines, seen, close } = await outboxFor('bounded-pc', 1024 * 1024, 3_600_000);
    const now = Date.now();
    // 200 rounds of ~14 KiB: about 2.7 MiB into a 1 MiB bound.
    for (let n = 0; n < 200; n++) outbox.put(round('bounded-pc', n), now - 200_000 + n * 1000);
    const dropped = outbox.droppedByReason().queue_full;
    expect(dropped).toBeGreaterThan(100 * 100);
    expect(outbox.length + dropped).toBe(200 * 100);
    expect(queue.bytes).toBeLessThanOrEqual(1024 * 1024);
    // Logged once, not once per round.
    expect(lines.filter((l) => l.msg === 'queue full (MAX_QUEUE_BYTES): oldest samples dropped')).toHaveLength(1);

    outbox.start();
    await waitFor('the kept samples delivered', () => (outbox.length === 0 ? true : undefined), 30_000);
    await waitFor('all received', () => (seen.messages.length >= 200 * 100 - dropped ? true : undefined));
    // The newest samples survive, the oldest went first, and order is kept.
    expect(seqs(seen.messages)).toEqual(Array.from({ length: 200 * 100 - dropped }, (_, i) => dropped + i));
    expect(outbox.counts.published).toBe(200 * 100 - dropped);
    await close();
  }, 60_000);

  it('drops samples older than MAX_QUEUE_AGE instead of delivering them, and counts them', async () => {
    let clock = Date.now();
    const { outbox, lines, seen, close } = await outboxFor('aging-pc', 8 * 1024 * 1024, 60_000, () => clock);
    const t0 = clock;
    outbox.put(round('aging-pc', 0), t0);
    outbox.put(round('aging-pc', 1), t0 + 30_000);
    clock = t0 + 75_000; // the broker is back 75 s later: the first round is too old, the second is not
    outbox.start();
    await waitFor('the queue emptied', () => (outbox.length === 0 ? true : undefined), 30_000);
    await waitFor('the fresh round received', () => (seen.messages.length >= 100 ? true : undefined));
    await sleep(300);
    expect(seqs(seen.messages)).toEqual(Array.from({ length: 100 }, (_, i) => 100 + i));
    expect(outbox.droppedByReason()).toEqual({ queue_full: 0, expired: 100, corrupt: 0, truncated: 0, unwritable: 0 });
    expect(lines.filter((l) => l.msg === 'samples older than MAX_QUEUE_AGE dropped')).toHaveLength(1);
    await close();
  }, 60_000);
});
