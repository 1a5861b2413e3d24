/** The bridge's durable queue, on a real file system. */
import { appendFileSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskQueue, DiskQueueInUse } from '../../common/disk-queue.js';
import { segmentFile } from '../../common/queue-record.js';
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
    appendFileSync(join(dir, segmentFile(1, false)), '5c0f1a2e 3 cpu,host=pc3 usa');
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
    symlinkSync('/dev/full', join(dir, segmentFile(2, false)));
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

/** The one segment's file of a queue in `dir` (this version's format). */
const seg = (dir: string, n = 1): string => join(dir, segmentFile(n, false));

describe('disk queue integrity (issue 12)', () => {
  it('drops a record whose bytes were flipped, counts it as corrupt, and hands out the rest unchanged', async () => {
    const dir = await tempDir('dq');
    const q = new DiskQueue(dir, { ...options, segmentBytes: 1_000_000 });
    bursts(q, 0, 10);
    q.close();
    // Ten bytes of the fifth record flipped, as a bad disk or a stray write leaves them.
    const data = readFileSync(seg(dir));
    const fifth = data.indexOf(line(4));
    for (let i = 0; i < 10; i++) data[fifth + 4 + i] = (data[fifth + 4 + i] as number) ^ 0x5a;
    writeFileSync(seg(dir), data);
    const again = new DiskQueue(dir, options);
    expect(again.peek(100)).toEqual(Array.from({ length: 4 }, (_, i) => line(i)));
    again.remove(4);
    expect(again.peek(100)).toEqual([5, 6, 7, 8, 9].map(line));
    expect(again.lost).toEqual({ corrupt: 1, truncated: 0 });
    again.close();
  });

  it('counts the records of a segment cut short (truncated) and delivers the segments after it', async () => {
    const dir = await tempDir('dq');
    const q = new DiskQueue(dir, options);
    bursts(q, 0, 30);
    q.close();
    const files = readdirSync(dir)
      .filter((f) => f.startsWith('seg-'))
      .sort();
    expect(files.length).toBeGreaterThan(3);
    // The second segment loses its second half.
    const second = join(dir, files[1] as string);
    const size = readFileSync(second).length;
    truncateSync(second, Math.floor(size / 2));
    const again = new DiskQueue(dir, options);
    const delivered: string[] = [];
    for (let batch = again.peek(7); batch.length > 0; batch = again.peek(7)) {
      delivered.push(...batch);
      again.remove(batch.length);
    }
    expect(delivered.length + again.lost.truncated + again.lost.corrupt).toBe(30);
    expect(again.lost.truncated + again.lost.corrupt).toBeGreaterThan(0);
    expect(delivered.at(-1)).toBe(line(29));
    expect(delivered).toEqual([...delivered].sort((a, b) => Number(/usage=(\d+)/.exec(a)?.[1]) - Number(/usage=(\d+)/.exec(b)?.[1])));
    again.close();
  });

  it("reads the previous version's segments and cursor (no checksums), then appends in this version's format", async () => {
    const dir = await tempDir('dq');
    writeFileSync(join(dir, segmentFile(1, true)), `${[0, 1, 2, 3].map(line).join('\n')}\n`);
    writeFileSync(join(dir, 'cursor.json'), JSON.stringify({ segment: 1, offset: line(0).length + 1 }));
    const q = new DiskQueue(dir, options);
    expect(q.length).toBe(3);
    q.append(line(4));
    q.flush();
    expect(q.peek(10)).toEqual([1, 2, 3, 4].map(line));
    q.remove(4);
    expect(q.lost).toEqual({ corrupt: 0, truncated: 0 });
    q.close();
    expect(readdirSync(dir).filter((f) => f.startsWith('seg-'))).toEqual([segmentFile(2, false)]);
  });

  /** A queue with 6 points, 2 of them removed, and its cursor file replaced by `cursor`. */
  async function withCursor(cursor: string): Promise<{ dir: string; q: DiskQueue }> {
    const dir = await tempDir('dq');
    const q = new DiskQueue(dir, { ...options, segmentBytes: 1_000_000 });
    bursts(q, 0, 6);
    q.peek(2);
    q.remove(2);
    q.close();
    writeFileSync(join(dir, 'cursor.json'), cursor);
    return { dir, q: new DiskQueue(dir, { ...options, segmentBytes: 1_000_000 }) };
  }

  /** Appends points `from`…`to - 1` and takes everything out: what a restarted bridge would write. */
  function drain(q: DiskQueue, from: number, to: number): string[] {
    bursts(q, from, to);
    const out: string[] = [];
    for (let batch = q.peek(4); batch.length > 0; batch = q.peek(4)) {
      out.push(...batch);
      q.remove(batch.length);
    }
    return out;
  }

  it.each([
    ['a negative offset', '{"segment":1,"offset":-40}'],
    ['an offset that is not a number', '{"segment":1,"offset":"NaN"}'],
    ['flipped bytes in the cursor', '{"segment":1,"offset":9999999}'.replace('9', '\u0000')],
    ['a cursor beyond every segment', '{"segment":7,"offset":0}'],
  ])('%s: the queue is replayed from its oldest segment, and new points flow', async (_what, cursor) => {
    const { q } = await withCursor(cursor);
    expect(q.notes.length).toBe(1);
    expect(drain(q, 6, 10)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(line));
    q.close();
  });

  it('a cursor beyond the end of its segment: moved back to the last record, every new point is delivered', async () => {
    const { q } = await withCursor(JSON.stringify({ segment: 1, offset: 100_000 }));
    expect(q.notes[0]).toMatch(/beyond the end of segment 1/);
    expect(drain(q, 6, 506)).toEqual(Array.from({ length: 500 }, (_, i) => line(i + 6)));
    q.close();
  });

  it('a cursor inside a record: moved back to its start, that record is delivered again', async () => {
    const dir = await tempDir('dq');
    const first = new DiskQueue(dir, { ...options, segmentBytes: 1_000_000 });
    bursts(first, 0, 6);
    first.close();
    const data = readFileSync(seg(dir));
    const third = data.indexOf(line(2));
    writeFileSync(join(dir, 'cursor.json'), JSON.stringify({ segment: 1, offset: third + 5 }));
    const q = new DiskQueue(dir, options);
    expect(q.notes[0]).toMatch(/inside a record/);
    expect(drain(q, 6, 8)).toEqual([2, 3, 4, 5, 6, 7].map(line));
    q.close();
  });

  it('a segment shorter than the cursor (power loss): the entries lost are counted, the points acknowledged after the restart are all delivered', async () => {
    const dir = await tempDir('dq');
    const first = new DiskQueue(dir, { ...options, segmentBytes: 1_000_000, fsyncMs: 20 });
    bursts(first, 0, 10);
    first.peek(6);
    first.remove(6);
    await new Promise((r) => setTimeout(r, 100)); // fsync'ed, the cursor saved
    // The power loss: the segment keeps only its first 4 records, the cursor (after the 6th) survives.
    const data = readFileSync(seg(dir));
    truncateSync(seg(dir), data.indexOf(line(4)) - 'xxxxxxxx 5 '.length);
    const q = new DiskQueue(dir, { ...options, maxBytes: 1_000_000 });
    expect(q.notes.join(' ')).toMatch(/beyond the end of segment 1/);
    expect(q.lost.truncated).toBe(4); // points 6…9: acknowledged, not yet written, gone with the power
    expect(drain(q, 10, 210)).toEqual(Array.from({ length: 200 }, (_, i) => line(i + 10)));
    expect(q.lost.truncated).toBe(4);
    q.close();
  });

  it('a cursor naming a segment that is gone: reads on from the next one and counts what the gone one held', async () => {
    const dir = await tempDir('dq');
    const first = new DiskQueue(dir, { ...options, fsyncMs: 20 });
    bursts(first, 0, 30);
    first.peek(1);
    first.remove(1);
    await new Promise((r) => setTimeout(r, 100));
    first.close();
    rmSync(seg(dir, 1));
    const q = new DiskQueue(dir, options);
    expect(q.notes[0]).toMatch(/segment 1, which is gone/);
    const out = drain(q, 30, 31);
    expect(out.at(-1)).toBe(line(30));
    expect(out.length + q.lost.truncated).toBe(30);
    q.close();
  });

  it('a cursor that cannot be saved (its temporary file is a directory) throws nowhere, shows in `problem`, and is saved once it can be', async () => {
    const dir = await tempDir('dq');
    const q = new DiskQueue(dir, { ...options, fsyncMs: 20 });
    mkdirSync(join(dir, 'cursor.json.tmp'));
    bursts(q, 0, 30);
    q.peek(20);
    q.remove(20);
    await new Promise((r) => setTimeout(r, 100));
    expect(q.problem).toMatch(/cannot save the queue cursor/);
    expect(q.peek(100)).toEqual(Array.from({ length: 10 }, (_, i) => line(i + 20)));
    rmSync(join(dir, 'cursor.json.tmp'), { recursive: true });
    await new Promise((r) => setTimeout(r, 100));
    expect(q.problem).toBeUndefined();
    q.close();
    const again = new DiskQueue(dir, options);
    expect(again.length).toBe(10);
    again.close();
  });
});
