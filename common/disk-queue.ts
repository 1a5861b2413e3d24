/**
 * A durable FIFO of text lines, shared by the bridge (points waiting for InfluxDB) and the agent
 * (samples waiting for the broker). Appends are gathered in memory and made durable together by
 * `flush()` (a group commit: one write() for a whole burst of messages); the bridge flushes before
 * the burst's acknowledgements leave for the broker, and removes a point only once InfluxDB has
 * taken it. A `kill -9` loses nothing flushed (it is in the kernel's page cache once write()
 * returns); the queue is replayed on the next start. Against power loss, the active segment is
 * fsync'ed every `fsyncMs`.
 *
 *   <dir>/seg-000000001.v2.log  one record per line, `<crc32> <seq> <entry>` (common/queue-record.ts),
 *                               append-only, rolled at segmentBytes; a record that fails its checksum
 *                               is dropped and counted (`corrupt`), never handed out
 *   <dir>/seg-000000001.log     the previous version's segments (entries without checksum): read, not appended to
 *   <dir>/cursor.json           where reading resumes, with a checksum; saved with each fsync (after a
 *                               crash, up to fsyncMs of delivered entries come again)
 *   <dir>/lock                  the pid of the process using the directory (common/queue-lock.ts)
 *
 * At start the cursor is checked against the segments (common/queue-open.ts): one that points past
 * the end of its segment (power loss), into a record, or at a missing segment is moved back to the
 * last record boundary before it: when unsure, entries are delivered again (a point written twice is
 * harmless in InfluxDB: one point per series and timestamp), never skipped. Entries known to be gone
 * (a segment cut short, a missing segment) are counted (`truncated`), by their numbers.
 *
 * Bounded by `maxBytes`: beyond it the oldest whole segment is dropped and its entries counted.
 * Failures to write the cursor or to fsync (disk full) never throw out of a timer: they are kept in
 * `problem` (for /healthz) and retried; nothing is acknowledged that was not written.
 */
import { closeSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { EMPTY_BATCH, batchLines, type LineBatch, type LineQueue, type QueueLosses } from './line-queue.js';
import { acquireLock, releaseLock } from './queue-lock.js';
import { openQueueState, type Segment, type StartNote } from './queue-open.js';
import { encodeCursor, encodeRecord, parseRecord, segmentFile } from './queue-record.js';

export { DiskQueueInUse } from './queue-lock.js';

export interface DiskQueueOptions {
  readonly segmentBytes: number;
  readonly maxBytes: number;
  readonly fsyncMs: number;
}

export const DISK_QUEUE_DEFAULTS: DiskQueueOptions = { segmentBytes: 16 * 1024 * 1024, maxBytes: 1024 * 1024 * 1024, fsyncMs: 1000 };

/** Bytes of a segment read at once: several batches of points. */
const READ_AHEAD_BYTES = 512 * 1024;

/** Appends held before `append` flushes by itself (a burst is flushed by its owner well before). */
const MAX_PENDING = 10_000;

/** A record read ahead: where it ends in its segment, its entry (newline included), its number. */
interface Entry {
  readonly segment: number;
  readonly end: number;
  readonly payload: Buffer;
  readonly seq: number | undefined;
  readonly ok: boolean;
  /** It ends with a newline (a line counted in `length`); false for the cut-off tail of a segment. */
  readonly line: boolean;
}

/** The cursor file's fixed size (padded with spaces), so that it can be rewritten in place on a full disk. */
const CURSOR_BYTES = 160;
const NO_SPACE = new Set(['ENOSPC', 'EDQUOT']);

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export class DiskQueue implements LineQueue {
  readonly durable = true;
  /** Lines flushed to the files and not yet removed. */
  private flushedLength = 0;
  /** Appended, not yet flushed. */
  private pending: string[] = [];
  /** Why a flush the queue did by itself failed, for the next `flush()` to throw. */
  private failure: Error | undefined;
  /** Points the size bound forced out. */
  dropped = 0;
  readonly lost: QueueLosses = { corrupt: 0, truncated: 0 };
  /** What the start found and repaired (logged by the owner). */
  readonly notes: readonly StartNote[];
  private segments: Segment[];
  private activeFd = -1;
  private committed: { segment: number; offset: number };
  /** The number of the entry at the committed position, when known. */
  private expectSeq: number | undefined;
  /** Gaps in the numbers up to here are counted already. */
  private accountedThrough: number;
  /** Records that failed their checksum since the last good one. */
  private badSinceGood = 0;
  private nextSeq: number;
  private durableSeq: number;
  private window: Entry[] = [];
  private dirty = false;
  /** The committed position moved since cursor.json was written. */
  private cursorDirty = false;
  private cursorError: string | undefined;
  /** The last append failed (disk full): once everything is delivered, the active segment is replaced by an empty one, freeing its space. */
  private writeFailed = false;
  private syncError: string | undefined;
  private readError: string | undefined;
  private readonly fsyncTimer: NodeJS.Timeout;

  constructor(
    private readonly dir: string,
    private readonly options: DiskQueueOptions = DISK_QUEUE_DEFAULTS,
  ) {
    mkdirSync(dir, { recursive: true });
    acquireLock(dir);
    const state = openQueueState(dir);
    this.segments = state.segments;
    this.committed = state.committed;
    this.expectSeq = state.expectSeq;
    this.accountedThrough = state.accountedThrough;
    this.nextSeq = state.nextSeq;
    this.durableSeq = state.nextSeq - 1;
    this.lost.truncated += state.truncated;
    this.notes = state.notes;
    this.flushedLength = this.segments.reduce((n, s) => n + s.lines, 0);
    this.activeFd = openSync(join(dir, segmentFile(this.active().n, false)), 'a+');
    this.cursorDirty = state.notes.length > 0 || state.truncated > 0;
    this.fsyncTimer = setInterval(() => this.sync(), options.fsyncMs);
    this.fsyncTimer.unref();
  }

  /** Points not yet removed, flushed or not. */
  get length(): number {
    return this.flushedLength + this.pending.length;
  }

  /** Bytes of unwritten points on disk. */
  get bytes(): number {
    return Math.max(0, this.segments.reduce((n, s) => n + s.size, 0) - this.committed.offset);
  }

  /** Why the queue cannot keep its state on disk or read it right now (undefined while it can). */
  get problem(): string | undefined {
    return this.readError ?? this.cursorError ?? this.syncError;
  }

  append(line: string): void {
    this.pending.push(line);
    if (this.pending.length >= MAX_PENDING) this.flushQuietly();
  }

  /**
   * Writes what was appended since the last flush, in one write(). If that fails (disk full), the
   * file is cut back to its last whole record, the unflushed appends are forgotten, and the error is
   * thrown: the caller must not acknowledge them. A failure of a flush the queue did by itself
   * (before a peek, or with many appends held) is thrown here, by the next call.
   */
  flush(): void {
    const earlier = this.failure;
    this.failure = undefined;
    this.write();
    if (earlier) throw earlier;
  }

  private flushQuietly(): void {
    try {
      this.write();
    } catch (error) {
      this.failure ??= error instanceof Error ? error : new Error(String(error));
    }
  }

  private write(): void {
    if (this.pending.length === 0) return;
    const count = this.pending.length;
    const first = this.nextSeq;
    const data = Buffer.from(this.pending.map((line, i) => encodeRecord(first + i, line)).join(''));
    this.pending = [];
    const active = this.active();
    try {
      let done = 0;
      while (done < data.length) done += writeSync(this.activeFd, data, done, data.length - done);
    } catch (error) {
      try {
        ftruncateSync(this.activeFd, active.size);
      } catch {
        // the next start cuts a partial last record anyway
      }
      this.writeFailed = true;
      throw error;
    }
    this.writeFailed = false;
    this.nextSeq += count;
    active.size += data.length;
    active.lines += count;
    this.flushedLength += count;
    this.dirty = true;
    if (active.size >= this.options.segmentBytes) this.roll();
    while (this.bytes > this.options.maxBytes && this.segments.length > 1) this.dropOldest();
  }

  /**
   * The oldest `max` entries (fewer at a damaged record, which the next call drops and counts) as
   * one buffer, read from the files once: the bridge posts it to InfluxDB as it is.
   */
  peekBatch(max: number): LineBatch {
    this.flushQuietly();
    this.fill(max);
    this.dropLeadingDamage();
    let count = 0;
    while (count < max && count < this.window.length && (this.window[count] as Entry).ok) count++;
    if (count === 0) return EMPTY_BATCH;
    const payloads = this.window.slice(0, count).map((e) => e.payload);
    return { count, body: payloads.length === 1 ? (payloads[0] as Buffer) : Buffer.concat(payloads) };
  }

  peek(max: number): readonly string[] {
    return batchLines(this.peekBatch(max));
  }

  remove(count: number): void {
    const n = Math.min(count, this.window.length);
    if (n <= 0) return;
    for (const e of this.window.slice(0, n)) this.pass(e);
    this.window = this.window.slice(n);
    this.afterMove();
  }

  /** The committed position moves past `e`, counting any entries its number shows were lost before it. */
  private pass(e: Entry): void {
    if (e.ok && e.seq !== undefined) {
      const from = Math.max(this.expectSeq ?? e.seq, this.accountedThrough + 1);
      if (e.seq > from) this.lost[this.badSinceGood > 0 ? 'corrupt' : 'truncated'] += e.seq - from;
      this.accountedThrough = Math.max(this.accountedThrough, e.seq);
      this.expectSeq = e.seq + 1;
      this.badSinceGood = 0;
    } else if (!e.ok) this.badSinceGood++;
    this.committed = { segment: e.segment, offset: e.end };
    if (e.line) this.flushedLength--;
  }

  /** Damaged records at the head are dropped; at the end of what was written, counted now. */
  private dropLeadingDamage(): void {
    let moved = false;
    while (this.window[0] && !this.window[0].ok) {
      this.pass(this.window.shift() as Entry);
      moved = true;
      if (this.window.length === 0) this.fill(1);
    }
    if (!moved) return;
    const next = this.window[0];
    if (next?.seq !== undefined) {
      // The good record after them tells how many entries they held.
      const from = Math.max(this.expectSeq ?? next.seq, this.accountedThrough + 1);
      if (next.seq > from) this.lost.corrupt += next.seq - from;
      this.accountedThrough = Math.max(this.accountedThrough, next.seq - 1);
    } else if (this.window.length === 0 && this.badSinceGood > 0) {
      // Nothing good after them: their numbers run to the last one written.
      const from = Math.max(this.expectSeq ?? this.nextSeq, this.accountedThrough + 1);
      this.lost.corrupt += Math.max(this.badSinceGood, this.nextSeq - from);
      this.accountedThrough = this.nextSeq - 1;
      this.expectSeq = this.nextSeq;
      this.badSinceGood = 0;
    }
    this.afterMove();
  }

  /** Saves the cursor and deletes the segments it has left (the cursor first: it never names a deleted segment). */
  private afterMove(): void {
    this.cursorDirty = true;
    const active = this.active();
    if (this.writeFailed && this.committed.segment === active.n && this.committed.offset >= active.size && active.size > 0) {
      // Disk full and everything delivered: a new, empty segment, so that the old one's space is freed.
      try {
        this.roll();
        this.committed = { segment: this.active().n, offset: 0 };
      } catch (error) {
        this.cursorError = `cannot start a new queue segment: ${errorText(error)}`;
      }
    }
    if ((this.segments[0]?.n ?? 0) >= this.committed.segment) return;
    if (!this.writeCursor()) return; // kept until the cursor is on disk
    while (this.segments.length > 1 && (this.segments[0] as Segment).n < this.committed.segment) this.retire(this.segments[0] as Segment);
  }

  /** Reads records from the end of the window on, up to READ_AHEAD_BYTES, across segments, until it holds `max` entries. */
  private fill(max: number): void {
    if (this.window.length >= max) return;
    const last = this.window.at(-1);
    const pos = last ? { segment: last.segment, offset: last.end } : { ...this.committed };
    let total = 0;
    try {
      while (total < READ_AHEAD_BYTES) {
        const index = this.segments.findIndex((s) => s.n >= pos.segment);
        const seg = this.segments[index];
        if (!seg) break;
        if (seg.n > pos.segment) pos.offset = 0;
        pos.segment = seg.n;
        if (pos.offset < seg.size) {
          const want = Math.min(READ_AHEAD_BYTES - total, seg.size - pos.offset);
          const chunk = this.read(seg, pos.offset, want);
          if (chunk.length < want) {
            // The file is shorter than what was written to it (cut under us): counted again from disk.
            this.rescan();
            return this.fill(max);
          }
          const closed = seg !== this.active();
          let used = this.parse(seg, pos.offset, chunk, closed && pos.offset + chunk.length >= seg.size);
          if (used === 0 && total === 0 && chunk.length === READ_AHEAD_BYTES) {
            // No newline in a whole read-ahead (zeros a power loss left): one damaged stretch, passed over.
            this.window.push({ segment: seg.n, end: pos.offset + chunk.length, payload: Buffer.alloc(0), seq: undefined, ok: false, line: false });
            used = chunk.length;
          }
          total += chunk.length;
          pos.offset += used;
          if (pos.offset < seg.size) break; // the window is full
        }
        if (index === this.segments.length - 1) break;
        pos.segment = (this.segments[index + 1] as Segment).n;
        pos.offset = 0;
      }
      this.readError = undefined;
    } catch (error) {
      this.readError = `queue not readable: ${errorText(error)}`;
      throw error;
    }
  }

  /** Splits `chunk` (bytes `base`… of `seg`) into records appended to the window; returns the bytes used. */
  private parse(seg: Segment, base: number, chunk: Buffer, atClosedEnd: boolean): number {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      const end = nl + 1;
      if (seg.legacy) this.window.push({ segment: seg.n, end: base + end, payload: chunk.subarray(start, end), seq: undefined, ok: true, line: true });
      else {
        const r = parseRecord(chunk, start, end);
        this.window.push({ segment: seg.n, end: base + end, payload: chunk.subarray(r.payloadStart, end), seq: r.seq, ok: r.ok, line: true });
      }
      start = end;
    }
    if (atClosedEnd && start < chunk.length) {
      // A closed segment that does not end with a newline was cut short: its last record is broken.
      this.window.push({ segment: seg.n, end: base + chunk.length, payload: Buffer.alloc(0), seq: undefined, ok: false, line: false });
      start = chunk.length;
    }
    return start;
  }

  private read(seg: Segment, offset: number, length: number): Buffer {
    const fd = openSync(join(this.dir, segmentFile(seg.n, seg.legacy)), 'r');
    try {
      const buffer = Buffer.allocUnsafe(length);
      return buffer.subarray(0, readSync(fd, buffer, 0, length, offset));
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Sizes and lines counted again from the files, after one was found shorter than what was written
   * to it (cut, or deleted, by something else): what is gone shows as a gap in the numbers.
   */
  private rescan(): void {
    this.window = [];
    this.flushedLength = 0;
    for (const seg of this.segments) {
      let data: Buffer;
      try {
        data = readFileSync(join(this.dir, segmentFile(seg.n, seg.legacy)));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        data = Buffer.alloc(0);
      }
      const from = seg.n === this.committed.segment ? Math.min(this.committed.offset, data.length) : 0;
      if (seg.n === this.committed.segment) this.committed = { segment: seg.n, offset: from };
      seg.size = data.length;
      seg.lines = 0;
      for (let i = data.indexOf(0x0a, from); i !== -1; i = data.indexOf(0x0a, i + 1)) seg.lines++;
      this.flushedLength += seg.lines;
    }
  }

  /** Flushes to disk and releases the directory. */
  close(): void {
    clearInterval(this.fsyncTimer);
    this.flushQuietly();
    this.sync();
    closeSync(this.activeFd);
    releaseLock(this.dir);
  }

  private active(): Segment {
    return this.segments[this.segments.length - 1] as Segment;
  }

  /** The fsync timer: the active segment first, then the cursor (whose `durable` then holds). Never throws. */
  private sync(): void {
    if (this.dirty) {
      try {
        fsyncSync(this.activeFd);
        this.dirty = false;
        this.durableSeq = this.nextSeq - 1;
        this.cursorDirty = true;
        this.syncError = undefined;
      } catch (error) {
        this.syncError = `cannot fsync the queue: ${errorText(error)}`;
      }
    }
    if (this.cursorDirty || this.cursorError) this.writeCursor();
  }

  private roll(): void {
    const next = this.active().n + 1;
    const fd = openSync(join(this.dir, segmentFile(next, false)), 'a+');
    try {
      fsyncSync(this.activeFd);
      this.durableSeq = this.nextSeq - 1;
    } catch (error) {
      this.syncError = `cannot fsync the queue: ${errorText(error)}`;
    }
    closeSync(this.activeFd);
    this.activeFd = fd;
    this.segments.push({ n: next, legacy: false, size: 0, lines: 0 });
    this.syncDir();
  }

  /** A new segment's name is made durable too (else a power loss could lose the whole file). */
  private syncDir(): void {
    try {
      const fd = openSync(this.dir, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch {
      // not supported everywhere (Windows): the data itself is fsync'ed
    }
  }

  private dropOldest(): void {
    const oldest = this.segments[0] as Segment;
    const lost = this.committed.segment === oldest.n ? this.linesAfter(oldest, this.committed.offset) : oldest.lines;
    this.dropped += lost;
    this.flushedLength -= lost;
    this.retire(oldest);
    const first = this.segments[0] as Segment;
    this.committed = { segment: first.n, offset: 0 };
    this.expectSeq = undefined;
    this.window = [];
    this.writeCursor();
  }

  private linesAfter(seg: Segment, offset: number): number {
    const fd = openSync(join(this.dir, segmentFile(seg.n, seg.legacy)), 'r');
    try {
      const data = Buffer.allocUnsafe(Math.max(0, seg.size - offset));
      const got = readSync(fd, data, 0, data.length, offset);
      let count = 0;
      for (let i = data.indexOf(0x0a); i !== -1 && i < got; i = data.indexOf(0x0a, i + 1)) count++;
      return Math.min(count, seg.lines);
    } finally {
      closeSync(fd);
    }
  }

  private retire(seg: Segment): void {
    if (seg === this.active()) return;
    this.segments = this.segments.filter((s) => s !== seg);
    try {
      unlinkSync(join(this.dir, segmentFile(seg.n, seg.legacy)));
    } catch {
      // gone already, or removed at the next start (it is before the cursor)
    }
  }

  /**
   * Saves the cursor: written to a temporary file, renamed into place. On a full disk (no block for
   * the temporary file) it is overwritten in place instead: always CURSOR_BYTES long, it needs no new
   * block; a write torn there fails the cursor's checksum, and the next start replays from the
   * oldest segment. False, kept in `problem`, if it could not be saved.
   */
  private writeCursor(): boolean {
    const text = encodeCursor({ ...this.committed, seq: this.expectSeq, durable: Math.max(this.durableSeq, this.accountedThrough) }).padEnd(CURSOR_BYTES, ' ');
    const path = join(this.dir, 'cursor.json');
    try {
      const tmp = join(this.dir, 'cursor.json.tmp');
      try {
        writeFileSync(tmp, text);
        renameSync(tmp, path);
      } catch (error) {
        if (!NO_SPACE.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
        const fd = openSync(path, 'r+');
        try {
          writeSync(fd, text, 0);
        } finally {
          closeSync(fd);
        }
      }
      this.cursorDirty = false;
      this.cursorError = undefined;
      return true;
    } catch (error) {
      this.cursorError = `cannot save the queue cursor: ${errorText(error)}`;
      return false;
    }
  }
}
