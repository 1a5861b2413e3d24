/**
 * Opening a disk queue (common/disk-queue.ts): its segments are listed and counted, and the cursor
 * is checked against them. What a crash or a power loss can leave is repaired, replaying rather than
 * skipping when unsure (a point delivered twice is harmless, a lost one is not):
 *
 * - a partial last record of the active segment (a write cut short) is cut off;
 * - a cursor that cannot be read or fails its checksum: replay from the oldest segment;
 * - a cursor beyond the end of its segment (power loss: segments are fsync'ed once a second, the
 *   cursor is renamed into place): moved back to the segment's last record boundary;
 * - a cursor inside a record: moved back to the start of that record;
 * - a cursor naming a segment that is gone: the next segment, from its start;
 * - a cursor beyond every segment: replay from the oldest.
 *
 * Entries known to be gone are counted as `truncated`, from the numbers the records carry: the
 * cursor remembers the highest number that was fsync'ed when it was saved.
 */
import { openSync, closeSync, ftruncateSync, readFileSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { readIfPresent } from './queue-lock.js';
import { SEGMENT_FILE, decodeCursor, parseRecord, segmentFile, type Cursor } from './queue-record.js';

export interface Segment {
  readonly n: number;
  /** Written by the previous version (no checksums): read, never appended to. */
  readonly legacy: boolean;
  size: number;
  /** Lines in it (after the cursor, in the cursor's segment). */
  lines: number;
}

/** A repair made at start, in words, for the log. */
export type StartNote = string;

export interface QueueState {
  /** Oldest first; the last one is the active segment (this version's format). */
  readonly segments: Segment[];
  readonly committed: { segment: number; offset: number };
  readonly expectSeq: number | undefined;
  readonly accountedThrough: number;
  readonly nextSeq: number;
  /** Entries found to be gone. */
  readonly truncated: number;
  readonly notes: StartNote[];
}

const NL = 0x0a;

function countLines(data: Buffer, from: number): number {
  let count = 0;
  for (let i = data.indexOf(NL, from); i !== -1; i = data.indexOf(NL, i + 1)) count++;
  return count;
}

/** The end of the last whole line at or before `offset` (0 if none). */
function boundaryAtOrBefore(data: Buffer, offset: number): number {
  if (offset <= 0) return 0;
  const at = Math.min(offset, data.length);
  if (data[at - 1] === NL) return at;
  const nl = data.lastIndexOf(NL, at - 1);
  return nl < 0 ? 0 : nl + 1;
}

/** The number of the last good record of a segment's data, if any. */
function lastSeq(data: Buffer): number | undefined {
  let end = data.lastIndexOf(NL);
  while (end >= 0) {
    const start = end === 0 ? 0 : data.lastIndexOf(NL, end - 1) + 1;
    const r = parseRecord(data, start, end + 1);
    if (r.ok) return r.seq;
    if (start === 0) return undefined;
    end = start - 1;
  }
  return undefined;
}

export function openQueueState(dir: string): QueueState {
  const notes: StartNote[] = [];
  const found = new Map<number, boolean>();
  for (const f of readdirSync(dir)) {
    const m = SEGMENT_FILE.exec(f);
    if (!m) continue;
    const n = Number(m[1]);
    if (found.has(n))
      throw new Error(
        `queue directory ${dir} holds two segments numbered ${n} (${segmentFile(n, true)} and ${segmentFile(n, false)}): remove the one that does not belong`,
      );
    found.set(n, m[2] === undefined);
  }
  const numbers = [...found.keys()].sort((a, b) => a - b);
  const data = new Map<number, Buffer>(numbers.map((n) => [n, readFileSync(join(dir, segmentFile(n, found.get(n) as boolean)))]));

  // The active segment's partial last record (a write cut short by a crash) is cut off.
  const lastN = numbers.at(-1);
  if (lastN !== undefined && !found.get(lastN)) {
    const d = data.get(lastN) as Buffer;
    const keep = boundaryAtOrBefore(d, d.length);
    if (keep < d.length) {
      const fd = openSync(join(dir, segmentFile(lastN, false)), 'r+');
      try {
        ftruncateSync(fd, keep);
      } finally {
        closeSync(fd);
      }
      data.set(lastN, d.subarray(0, keep));
    }
  }

  let highest = 0;
  for (const n of [...numbers].reverse()) {
    const seq = found.get(n) ? undefined : lastSeq(data.get(n) as Buffer);
    if (seq !== undefined) {
      highest = seq;
      break;
    }
  }

  const read = decodeCursor(readIfPresent(join(dir, 'cursor.json')));
  const cursor: Cursor | undefined = read.state === 'ok' ? read.cursor : undefined;
  if (read.state === 'bad') notes.push(`cursor.json unreadable (${read.why}): the queue is replayed from its oldest segment`);
  let committed: { segment: number; offset: number } | undefined;
  let expectSeq: number | undefined;
  /** Segments before the cursor were delivered: deleted (unless replaying from the oldest). */
  let trusted = false;
  if (cursor && numbers.length > 0) {
    const d = data.get(cursor.segment);
    if (d) {
      trusted = true;
      if (cursor.offset > d.length) {
        committed = { segment: cursor.segment, offset: boundaryAtOrBefore(d, d.length) };
        expectSeq = cursor.seq;
        notes.push(
          `cursor beyond the end of segment ${cursor.segment} (offset ${cursor.offset} of ${d.length} bytes: a power loss?): moved back to ${committed.offset}`,
        );
      } else if (boundaryAtOrBefore(d, cursor.offset) !== cursor.offset) {
        committed = { segment: cursor.segment, offset: boundaryAtOrBefore(d, cursor.offset) };
        notes.push(`cursor inside a record of segment ${cursor.segment} (offset ${cursor.offset}): moved back to ${committed.offset}, replaying that record`);
      } else {
        committed = { segment: cursor.segment, offset: cursor.offset };
        expectSeq = cursor.seq;
      }
    } else {
      const next = numbers.find((n) => n > cursor.segment);
      if (next !== undefined) {
        trusted = true;
        committed = { segment: next, offset: 0 };
        expectSeq = cursor.seq;
        notes.push(`cursor names segment ${cursor.segment}, which is gone: reading on from segment ${next}`);
      } else notes.push(`cursor names segment ${cursor.segment}, beyond the last one (${numbers.at(-1)}): the queue is replayed from its oldest segment`);
    }
  }
  committed ??= { segment: numbers[0] ?? 1, offset: 0 };

  // Entries fsync'ed before the cursor was saved, and no longer on disk, are lost: counted.
  let truncated = 0;
  let accountedThrough = 0;
  if (cursor?.durable !== undefined && cursor.durable > highest) {
    truncated = cursor.durable - Math.max(highest, (cursor.seq ?? 1) - 1);
    accountedThrough = cursor.durable;
    if (truncated > 0)
      notes.push(`${truncated} entries written before the last stop are no longer on disk (a segment cut short or missing): counted as truncated`);
  }
  const nextSeq = Math.max(highest, cursor?.durable ?? 0, (cursor?.seq ?? 1) - 1) + 1;

  const segments: Segment[] = [];
  for (const n of numbers) {
    const legacy = found.get(n) as boolean;
    if (n < committed.segment) {
      if (trusted) unlinkSync(join(dir, segmentFile(n, legacy)));
      else segments.push({ n, legacy, size: (data.get(n) as Buffer).length, lines: countLines(data.get(n) as Buffer, 0) });
      continue;
    }
    const d = data.get(n) as Buffer;
    segments.push({ n, legacy, size: d.length, lines: countLines(d, n === committed.segment ? committed.offset : 0) });
  }
  if (!trusted) committed = { segment: segments[0]?.n ?? committed.segment, offset: 0 };
  // Appends go to a segment of this version: a new one after a previous version's (or none).
  const last = segments.at(-1);
  if (!last || last.legacy) segments.push({ n: (last?.n ?? Math.max(0, committed.segment - 1)) + 1, legacy: false, size: 0, lines: 0 });
  if (!segments.some((s) => s.n === committed?.segment)) committed = { segment: (segments[0] as Segment).n, offset: 0 };
  return { segments, committed, expectSeq, accountedThrough, nextSeq, truncated, notes };
}
