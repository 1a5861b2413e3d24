/**
 * The bridge's write loop (bridge/writer.ts) over its durable queue, with a sink that records what
 * it is given and the flush interval's timer under the test's control (fake setTimeout; the queue's
 * fsync timer stays real).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { LineBatch, Sink } from '../../bridge/sink.js';
import { createStats } from '../../bridge/stats.js';
import { Writer } from '../../bridge/writer.js';
import { DiskQueue } from '../../common/disk-queue.js';
import { MemoryLineQueue, type LineQueue } from '../../common/line-queue.js';
import { captureLogger } from '../harness/logs.js';
import { tempDir } from '../harness/process.js';

/** A point of ~110 bytes, so that one read of the disk queue (512 KiB) holds ~4,000 of them. */
const point = (i: number) =>
  `cpu,host=desktop-${String(i % 100).padStart(3, '0')},core=all usage_percent=${(i % 1000) / 10},temp_c=45.5 ${1_763_683_200_000 + i}`;

function recordingSink(): Sink & { readonly batches: number[] } {
  const batches: number[] = [];
  return {
    target: 'test',
    batches,
    check: async () => undefined,
    write: async (batch: LineBatch) => {
      batches.push(batch.count);
    },
  };
}

/** Lets the loop run its awaits (the sink answers at once) without moving the faked clock. */
async function settle(): Promise<void> {
  for (let i = 0; i < 200; i++) await new Promise((resolve) => setImmediate(resolve));
}

const FLUSH_MS = 60_000;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('the write loop', () => {
  it('writes a backlog larger than one read of the disk queue in one flush interval, not one read per interval', async () => {
    const queue = new DiskQueue(await tempDir('writer-backlog'));
    for (let i = 0; i < 40_000; i++) queue.append(point(i));
    queue.flush();
    const sink = recordingSink();
    const { logger } = captureLogger();
    // BATCH_SIZE at its maximum: larger than what one read of the queue holds.
    const writer = new Writer(sink, { batchSize: 100_000, flushIntervalMs: FLUSH_MS, maxBuffered: 200_000 }, createStats(), logger, queue);
    writer.start();
    await vi.advanceTimersByTimeAsync(FLUSH_MS);
    await settle();
    expect(sink.batches.reduce((a, b) => a + b, 0)).toBe(40_000);
    expect(sink.batches.length).toBeGreaterThan(1); // each batch was cut at one read
    expect(queue.length).toBe(0);
    await writer.stop(1000);
    queue.close();
  });

  it('still gathers a trickle for a flush interval before writing it (no batch per point)', async () => {
    const queue = new DiskQueue(await tempDir('writer-trickle'));
    const sink = recordingSink();
    const { logger } = captureLogger();
    const writer = new Writer(sink, { batchSize: 5000, flushIntervalMs: FLUSH_MS, maxBuffered: 100_000 }, createStats(), logger, queue);
    writer.start();
    for (let i = 0; i < 10; i++) {
      void writer.push(point(i));
      writer.flush();
      await settle();
    }
    expect(sink.batches).toEqual([]);
    await vi.advanceTimersByTimeAsync(FLUSH_MS);
    await settle();
    expect(sink.batches).toEqual([10]);
    await writer.stop(1000);
    queue.close();
  });
});

describe('the write loop when its queue fails', () => {
  it('goes on after removing a written batch failed (an I/O error), and writes what comes next', async () => {
    const inner = new MemoryLineQueue();
    let failures = 1;
    // A queue whose first remove throws (an I/O error), as the disk queue's could before it was hardened.
    const queue: LineQueue = {
      durable: false,
      dropped: 0,
      lost: inner.lost,
      problem: undefined,
      get length() {
        return inner.length;
      },
      get bytes() {
        return inner.bytes;
      },
      append: (line) => inner.append(line),
      flush: () => inner.flush(),
      peek: (max) => inner.peek(max),
      peekBatch: (max) => inner.peekBatch(max),
      remove(count) {
        if (failures-- > 0) throw new Error('EIO: i/o error, unlink');
        inner.remove(count);
      },
      close: () => inner.close(),
    };
    const sink = recordingSink();
    const { logger, lines } = captureLogger();
    const writer = new Writer(sink, { batchSize: 3, flushIntervalMs: 10, maxBuffered: 100 }, createStats(), logger, queue);
    writer.start();
    for (let i = 0; i < 3; i++) void writer.push(point(i));
    await vi.advanceTimersByTimeAsync(100);
    for (let i = 3; i < 6; i++) void writer.push(point(i));
    await vi.advanceTimersByTimeAsync(100);
    await settle();
    // The first batch was written again (a duplicate is harmless), then the second.
    expect(sink.batches).toEqual([3, 3, 3]);
    expect(inner.length).toBe(0);
    expect(lines.some((l) => l.msg === 'writer failed, retrying' && String(l['err']).includes('EIO'))).toBe(true);
    await writer.stop(1000);
  });
});
