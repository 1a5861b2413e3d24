/** The bridge's durable queue, on a real file system. */
import { appendFileSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskQueue, DiskQueueInUse } from '../../common/disk-queue.js';
import { tempDir } from '../harness/process.js';

const options = { segmentBytes: 200, maxBytes: 10_000, fsyncMs: 1000 };
const line = (i: number) => `cpu,host=pc${i} usage=${i} ${1_763_683_200_000 + i}`;
/** Appends points `from`…`to - 1`, `per` to a flush (a burst of messages). */
function bursts(q: DiskQueue, from: number, to: number, per = 3): void {
  for (let i = from; i < to; i++) {
    q.append(line(i));
    if ((i - from + 1) % per === 0) q.flush();
  }
  q.flush();
}

describe('disk queue', () => {
  it('hands points out in order, across segments, and forgets only what was removed', async () => {
    const dir = await tempDir('dq');
    const q = new DiskQueue(dir, options);
    bursts(q, 0, 30);
    expect(q.length).toBe(30);
    expect(readdirSync(dir).filter((f) => f.startsWith('seg-')).length).toBeGreaterThan(3);
    expect(q.peek(10)).toEqual(Array.from({ length: 10 }, (_, i) => line(i)));
    q.remove(10);
    expect(q.peek(25)).toEqual(Array.from({ length: 20 }, (_, i) => line(i + 10)));
    q.remove(5);
    expect(q.length).toBe(15);
    q.close();
  });

  it('replays what was not removed after a restart, without the removed points', async () => {
    const dir = await tempDir('dq');
    const first = new DiskQueue(dir, { ...options, fsyncMs: 50 });
    bursts(first, 0, 12);
    first.peek(5);
    first.remove(5);
    // The removal is saved with the next fsync (every 50 ms here).
    await new Promise((r) => setTimeout(r, 150));
    // no close(): as after kill -9 (the lock names a dead process only in a real crash; reuse is allowed for our own pid)
    const second = new DiskQueue(dir, options);
    expect(second.length).toBe(7);
    expect(second.peek(100)).toEqual(Array.from({ length: 7 }, (_, i) => line(i + 5)));
    second.close();
  });

  it('cuts a point half-written by a crash', async () => {
    const dir = await tempDir('dq');
    const q = new DiskQueue(dir, { ...options, segmentBytes: 1_000_000 });
    q.append(line(1));
    q.append(line(2));
    q.close();
    appendFileSync(join(dir, 'seg-000000001.log'), 'cpu,host=pc3 usa');
    const again = new DiskQueue(dir, options);
    expect(again.peek(10)).toEqual([line(1), line(2)]);
    again.append(line(3));
    expect(again.peek(10)).toEqual([line(1), line(2), line(3)]);
    again.close();
  });

  it('drops the oldest points beyond its size bound, and counts them', async () => {
    const dir = await tempDir('dq');
    const q = new DiskQueue(dir, { segmentBytes: 500, maxBytes: 2000, fsyncMs: 1000 });
    bursts(q, 0, 200);
    expect(q.bytes).toBeLessThanOrEqual(2000 + 500);
    expect(q.dropped + q.length).toBe(200);
    expect(q.dropped).toBeGreaterThan(0);
    const kept = q.peek(1000);
    expect(kept.at(-1)).toBe(line(199));
    expect(kept[0]).toBe(line(q.dropped));
    q.close();
  });

  it('keeps through a crash what was flushed, in one write per burst, not what was only appended', async () => {
    const dir = await tempDir('dq');
    const q = new DiskQueue(dir, { ...options, segmentBytes: 1_000_000 });
    for (let i = 0; i < 5; i++) q.append(line(i));
    expect(readdirSync(dir).length).toBeGreaterThan(0);
    q.flush();
    q.append(line(5));
    q.append(line(6));
    expect(q.length).toBe(7);
    // no flush, no close: as after kill -9
    const again = new DiskQueue(dir, options);
    expect(again.length).toBe(5);
    expect(again.peek(10)).toEqual(Array.from({ length: 5 }, (_, i) => line(i)));
    again.close();
  });

  it('a flush that cannot write (disk full) throws and forgets the unflushed points; the queue goes on', async () => {
    const dir = await tempDir('dq');
    const q = new DiskQueue(dir, options);
    // The next segment is /dev/full: every write to it fails with ENOSPC.
    symlinkSync('/dev/full', join(dir, 'seg-000000002.log'));
    bursts(q, 0, 6, 6);
    expect(q.length).toBe(6);
    q.append(line(6));
    q.append(line(7));
    expect(() => q.flush()).toThrow(/ENOSPC/);
    expect(q.length).toBe(6);
    // A peek flushes first; its failure is not the reader's business, it is thrown by the next flush.
    q.append(line(8));
    expect(q.peek(10)).toEqual(Array.from({ length: 6 }, (_, i) => line(i)));
    expect(q.length).toBe(6);
    expect(() => q.flush()).toThrow(/ENOSPC/);
    expect(() => q.flush()).not.toThrow();
  });

  it('refuses a directory another live process uses', async () => {
    const dir = await tempDir('dq');
    appendFileSync(join(dir, 'lock'), String(process.ppid));
    expect(() => new DiskQueue(dir, options)).toThrow(DiskQueueInUse);
  });
});
