/**
 * A durable FIFO of text lines, shared by the bridge (points waiting for InfluxDB) and the agent
 * (samples waiting for the broker). Appends are gathered in memory and made durable together by
 * `flush()` (a group commit: one write() for a whole burst of messages); the bridge flushes before
 * the burst's acknowledgements leave for the broker, and removes a point only once InfluxDB has
 * taken it. A `kill -9` loses nothing flushed (it is in the kernel's page cache once write()
 * returns); the queue is replayed on the next start. Against power loss, the active segment is
 * fsync'ed every `fsyncMs`.
 *
 *   <dir>/seg-000000001.log …   one entry per line (a line-protocol point, an agent's message), append-only, rolled at segmentBytes
 *   <dir>/cursor.json           {"segment": n, "offset": bytes}: everything before it is written
 *                               (saved with each fsync: after a crash, up to fsyncMs of delivered entries come again)
 *   <dir>/lock                  the pid of the process using the directory
 *
 * Bounded by `maxBytes`: beyond it the oldest whole segment is dropped and its points counted.
 * A point written twice (a crash between the database's answer and the cursor update) is harmless:
 * InfluxDB keeps one point per series and timestamp.
 */
import {
  closeSync, existsSync, fsyncSync, ftruncateSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { EMPTY_BATCH, batchLines, type LineBatch, type LineQueue } from './line-queue.js';

export interface DiskQueueOptions {
  readonly segmentBytes: number;
  readonly maxBytes: number;
  readonly fsyncMs: number;
}

export const DISK_QUEUE_DEFAULTS: DiskQueueOptions = { segmentBytes: 16 * 1024 * 1024, maxBytes: 1024 * 1024 * 1024, fsyncMs: 1000 };

interface Position {
  segment: number;
  offset: number;
}

/** Bytes of a segment read at once: several batches of points. */
const READ_AHEAD_BYTES = 512 * 1024;

/** Where a part of `chunk` came from: `length` bytes at `start` are bytes `base`… of `segment`. */
interface Piece {
  readonly segment: number;
  readonly base: number;
  readonly start: number;
  readonly length: number;
}

/** Lines read into memory from one or more segments: `ends` are the offsets in `chunk` just after each newline. */
interface ReadAhead {
  readonly chunk: Buffer;
  readonly ends: readonly number[];
  readonly pieces: readonly Piece[];
}

/** The file position just after byte `end` of the window (the end of a line). */
function positionIn(w: ReadAhead, end: number): Position {
  const piece = [...w.pieces].reverse().find((p) => p.start < end) as Piece;
  return { segment: piece.segment, offset: piece.base + (end - piece.start) };
}

/** The window without its first `count` lines (ending at `end`), or undefined when none is left. */
function advance(w: ReadAhead, end: number, count: number): ReadAhead | undefined {
  if (count >= w.ends.length) return undefined;
  const pieces = w.pieces
    .filter((p) => p.start + p.length > end)
    .map((p) => (p.start >= end ? { ...p, start: p.start - end } : { ...p, base: p.base + (end - p.start), start: 0, length: p.length - (end - p.start) }));
  return { chunk: w.chunk.subarray(end), ends: w.ends.slice(count).map((e) => e - end), pieces };
}

const SEGMENT = /^seg-(\d{9})\.log$/;
const name = (n: number): string => `seg-${String(n).padStart(9, '0')}.log`;

export class DiskQueueInUse extends Error {}

/** Appends held before `append` flushes by itself (a burst is flushed by its owner well before). */
const MAX_PENDING = 10_000;

export class DiskQueue implements LineQueue {
  readonly durable = true;
  /** Points flushed to the file and not yet removed. */
  private flushedLength = 0;
  /** Appended, not yet flushed. */
  private pending: string[] = [];
  /** Why a flush the queue did by itself failed, for the next `flush()` to throw. */
  private failure: Error | undefined;
  /** Points the size bound forced out. */
  dropped = 0;
  private totalBytes = 0;
  private segments: number[] = [];
  private sizes = new Map<number, number>();
  private lines = new Map<number, number>();
  private activeFd = -1;
  private committed: Position;
  /** Lines read ahead from the committed position, not yet removed. */
  private window: ReadAhead | undefined;
  private dirty = false;
  /** The committed position moved since cursor.json was written. */
  private cursorDirty = false;
  private readonly fsyncTimer: NodeJS.Timeout;

  constructor(
    private readonly dir: string,
    private readonly options: DiskQueueOptions = DISK_QUEUE_DEFAULTS,
  ) {
    mkdirSync(dir, { recursive: true });
    this.lock();
    this.segments = readdirSync(dir)
      .map((f) => SEGMENT.exec(f)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    if (this.segments.length === 0) this.segments.push(1);
    const cursor = this.readCursor();
    const first = this.segments[0] as number;
    this.committed = cursor && cursor.segment >= first && this.segments.includes(cursor.segment) ? cursor : { segment: first, offset: 0 };
    this.segments = this.segments.filter((s) => s >= this.committed.segment);
    for (const s of this.segments) this.scan(s);
    this.openActive();
    this.fsyncTimer = setInterval(() => this.sync(), options.fsyncMs);
    this.fsyncTimer.unref();
  }

  /** Points not yet removed, flushed or not. */
  get length(): number {
    return this.flushedLength + this.pending.length;
  }

  /** Bytes of unwritten points on disk. */
  get bytes(): number {
    return this.totalBytes - this.committed.offset;
  }

  append(line: string): void {
    this.pending.push(line);
    if (this.pending.length >= MAX_PENDING) this.flushQuietly();
  }

  /**
   * Writes what was appended since the last flush, in one write(). If that fails (disk full), the
   * file is cut back to its last whole line, the unflushed appends are forgotten, and the error is
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
    const data = Buffer.from(`${this.pending.join('\n')}\n`);
    this.pending = [];
    const active = this.active();
    const size = this.sizes.get(active) ?? 0;
    try {
      let done = 0;
      while (done < data.length) done += writeSync(this.activeFd, data, done, data.length - done);
    } catch (error) {
      try {
        ftruncateSync(this.activeFd, size);
      } catch {
        // the next start cuts a partial last line anyway
      }
      throw error;
    }
    this.sizes.set(active, size + data.length);
    this.totalBytes += data.length;
    this.lines.set(active, (this.lines.get(active) ?? 0) + count);
    this.flushedLength += count;
    this.dirty = true;
    if (size + data.length >= this.options.segmentBytes) this.roll();
    while (this.bytes > this.options.maxBytes && this.segments.length > 1) this.dropOldest();
  }

  /**
   * The oldest `max` lines (fewer at the end of a segment) as one buffer, read from the file once
   * and handed out without a string per line: the bridge posts it to InfluxDB as it is.
   */
  peekBatch(max: number): LineBatch {
    this.flushQuietly();
    const w = this.readAhead(max);
    const count = Math.min(max, w?.ends.length ?? 0);
    if (!w || count === 0) return EMPTY_BATCH;
    return { count, body: w.chunk.subarray(0, w.ends[count - 1]) };
  }

  peek(max: number): readonly string[] {
    return batchLines(this.peekBatch(max));
  }

  remove(count: number): void {
    if (count <= 0) return;
    const w = this.window;
    const end = w?.ends[count - 1];
    // The size bound dropped the peeked segment meanwhile: the cursor has moved past it already.
    if (!w || end === undefined) return;
    this.committed = positionIn(w, end);
    this.window = advance(w, end, count);
    // Lines per segment are tracked to keep `length` exact as whole segments are retired.
    this.flushedLength -= count;
    // The cursor file is rewritten with the fsync, not per batch: a crash replays at most a
    // second of points already written (harmless duplicates). Before a segment is deleted it is
    // written, so that it never names a deleted segment.
    this.cursorDirty = true;
    if (this.segments[0] !== undefined && this.segments[0] < this.committed.segment) {
      this.writeCursor();
      for (const s of [...this.segments]) {
        if (s >= this.committed.segment) break;
        this.retire(s);
      }
    }
  }

  /**
   * The lines from the committed position on, up to READ_AHEAD_BYTES, across segments; read again
   * when the window holds fewer than `max` lines and more have been flushed since.
   */
  private readAhead(max: number): ReadAhead | undefined {
    const cached = this.window;
    if (cached && cached.ends.length >= Math.min(max, this.flushedLength)) return cached;
    const pieces: Piece[] = [];
    const buffers: Buffer[] = [];
    let total = 0;
    const pos: Position = { ...this.committed };
    while (total < READ_AHEAD_BYTES) {
      const size = this.sizes.get(pos.segment) ?? 0;
      if (pos.offset < size) {
        const read = this.read(pos, Math.min(READ_AHEAD_BYTES - total, size - pos.offset));
        pieces.push({ segment: pos.segment, base: pos.offset, start: total, length: read.length });
        buffers.push(read);
        total += read.length;
        pos.offset += read.length;
        if (pos.offset < size) break; // the window is full
      }
      const next = this.segments.find((s) => s > pos.segment);
      if (next === undefined) break;
      pos.segment = next;
      pos.offset = 0;
    }
    const chunk = buffers.length === 1 ? (buffers[0] as Buffer) : Buffer.concat(buffers, total);
    const ends: number[] = [];
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) ends.push(i + 1);
    this.window = ends.length > 0 ? { chunk, ends, pieces } : undefined;
    return this.window;
  }

  private read(pos: Position, length: number): Buffer {
    const fd = openSync(join(this.dir, name(pos.segment)), 'r');
    try {
      const buffer = Buffer.allocUnsafe(length);
      return buffer.subarray(0, readSync(fd, buffer, 0, length, pos.offset));
    } finally {
      closeSync(fd);
    }
  }

  /** Flushes to disk and releases the directory. */
  close(): void {
    clearInterval(this.fsyncTimer);
    this.flushQuietly();
    this.sync();
    closeSync(this.activeFd);
    rmSync(join(this.dir, 'lock'), { force: true });
  }

  private active(): number {
    return this.segments[this.segments.length - 1] as number;
  }

  private sync(): void {
    if (this.cursorDirty) this.writeCursor();
    if (!this.dirty) return;
    fsyncSync(this.activeFd);
    this.dirty = false;
  }

  private openActive(): void {
    const path = join(this.dir, name(this.active()));
    this.activeFd = openSync(path, 'a+');
    // A crash in the middle of an append can leave a partial last line: cut it.
    const size = fstatSync(this.activeFd).size;
    if (size > 0) {
      const tail = Buffer.alloc(Math.min(size, 64 * 1024));
      readSync(this.activeFd, tail, 0, tail.length, size - tail.length);
      const lastNewline = tail.lastIndexOf(0x0a);
      const keep = lastNewline < 0 ? size - tail.length : size - tail.length + lastNewline + 1;
      if (keep < size) {
        ftruncateSync(this.activeFd, keep);
        this.scan(this.active());
      }
    }
  }

  private roll(): void {
    this.sync();
    closeSync(this.activeFd);
    const next = this.active() + 1;
    this.segments.push(next);
    this.sizes.set(next, 0);
    this.lines.set(next, 0);
    this.activeFd = openSync(join(this.dir, name(next)), 'a+');
  }

  /** Counts the unwritten lines and bytes of a segment (from the cursor in the first one). */
  private scan(segment: number): void {
    const path = join(this.dir, name(segment));
    const data = existsSync(path) ? readFileSync(path) : Buffer.alloc(0);
    let count = 0;
    const from = segment === this.committed.segment ? this.committed.offset : 0;
    for (let i = from; i < data.length; i++) if (data[i] === 0x0a) count++;
    const previous = this.lines.get(segment) ?? 0;
    this.totalBytes += data.length - (this.sizes.get(segment) ?? 0);
    this.sizes.set(segment, data.length);
    this.lines.set(segment, count);
    this.flushedLength += count - previous;
  }

  private dropOldest(): void {
    const oldest = this.segments[0] as number;
    const lost = this.committed.segment === oldest ? this.linesAfter(oldest, this.committed.offset) : (this.lines.get(oldest) ?? 0);
    this.dropped += lost;
    this.flushedLength -= lost;
    this.retire(oldest);
    this.committed = { segment: this.segments[0] as number, offset: 0 };
    this.window = undefined;
    this.writeCursor();
  }

  private linesAfter(segment: number, offset: number): number {
    const data = readFileSync(join(this.dir, name(segment)));
    let count = 0;
    for (let i = offset; i < data.length; i++) if (data[i] === 0x0a) count++;
    return count;
  }

  private retire(segment: number): void {
    if (segment === this.active()) return;
    unlinkSync(join(this.dir, name(segment)));
    this.totalBytes -= this.sizes.get(segment) ?? 0;
    this.segments = this.segments.filter((s) => s !== segment);
    this.sizes.delete(segment);
    this.lines.delete(segment);
  }

  private readCursor(): Position | undefined {
    try {
      const c = JSON.parse(readFileSync(join(this.dir, 'cursor.json'), 'utf8')) as Position;
      return Number.isSafeInteger(c.segment) && Number.isSafeInteger(c.offset) ? c : undefined;
    } catch {
      return undefined;
    }
  }

  private writeCursor(): void {
    this.cursorDirty = false;
    const tmp = join(this.dir, 'cursor.json.tmp');
    writeFileSync(tmp, JSON.stringify(this.committed));
    renameSync(tmp, join(this.dir, 'cursor.json'));
  }

  private lock(): void {
    const path = join(this.dir, 'lock');
    if (existsSync(path)) {
      const pid = Number(readFileSync(path, 'utf8'));
      if (Number.isSafeInteger(pid) && pid !== process.pid && alive(pid)) throw new DiskQueueInUse(`queue directory ${this.dir} is in use by process ${pid}`);
    }
    writeFileSync(path, String(process.pid));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
