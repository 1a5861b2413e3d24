/**
 * The write path: a queue of encoded points, drained in batches (by size, or every flush
 * interval) to a sink, one batch at a time.
 *
 * - A batch leaves the queue only after the sink has taken it (or refused it for good), so a
 *   durable queue can replace the in-memory one without changing this loop.
 * - Transient failures (database down, 5xx, 429) are retried with jittered backoff, honouring
 *   Retry-After, for as long as it takes; meanwhile the queue fills up to its bound, then `push`
 *   waits, which pauses MQTT intake and leaves the messages queued at the broker.
 * - A batch refused as malformed (400) or too large (413) is split in halves until the bad lines
 *   are isolated; those are counted and dropped, the rest is written. (InfluxDB 1.x has already
 *   written the good lines of a 400 batch; writing them again is harmless, a point is keyed by
 *   series and timestamp.)
 * - A backlog is written batch after batch without waiting: a batch is cut at what a durable queue
 *   reads at once (512 KiB), and one cut there is followed at once by the next, so that a BATCH_SIZE
 *   larger than that does not drain one read per flush interval.
 */
import { backoffDelay, sleep } from '../common/backoff.js';
import { MemoryLineQueue, batchLines, linesBatch, type LineBatch, type LineQueue } from '../common/line-queue.js';
import type { Logger } from '../common/logger.js';
import { ThrottledLog } from '../common/throttle.js';
import { Histogram } from './metrics.js';
import { SinkError, type Sink } from './sink.js';
import type { BridgeStats } from './stats.js';

export interface WriterOptions {
  readonly batchSize: number;
  readonly flushIntervalMs: number;
  /** Most points held before `push` waits. */
  readonly maxBuffered: number;
  /** Points pending and none written for this long, the database answering: the writer is stalled (default 60 s). */
  readonly stallMs?: number;
}

/** The writer's part of /healthz: whether it can make progress, and if not, why. */
export interface WriterHealth {
  readonly ok: boolean;
  readonly problem?: string;
}

const STALL_MS = 60_000;

/** Where points wait to be written: on disk (DiskQueue) or in memory (MemoryLineQueue). */
export type PointQueue = LineQueue;

const BACKOFF = { baseMs: 500, maxMs: 30_000 } as const;

export class Writer {
  private wake: (() => void) | undefined;
  private spaceWaiters: (() => void)[] = [];
  private stopping = false;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly warnings: ThrottledLog;
  /** False from a failed write until the next successful one; false before start. */
  writable = false;
  /** Why the last flush could not make the points durable (disk full), until one succeeds. */
  private unflushable: string | undefined;
  /** When points last left the queue (or it was last seen empty). */
  private progressAt: number;
  /**
   * The last batch was cut short by what the queue reads at once (a disk queue: 512 KiB), not by
   * BATCH_SIZE or by what was queued: the next is written at once, not a flush interval later.
   */
  private cutShort = false;
  /** How long successful writes took. */
  readonly writeSeconds = new Histogram();

  constructor(
    private readonly sink: Sink,
    private readonly options: WriterOptions,
    private readonly stats: BridgeStats,
    private readonly logger: Logger,
    private readonly queue: PointQueue = new MemoryLineQueue(),
    private readonly now: () => number = Date.now,
  ) {
    this.warnings = new ThrottledLog(logger, 30_000);
    this.progressAt = now();
  }

  start(): void {
    this.writable = true;
    this.loop ??= this.run();
  }

  /** Queues a point; when the queue is full, the returned promise resolves once there is room. */
  push(line: string): void | Promise<void> {
    this.queue.append(line);
    this.stats.buffered = this.queue.length;
    this.stats.dropped = this.queue.dropped;
    if (this.queue.length >= this.options.batchSize) this.wake?.();
    if (this.queue.length < this.options.maxBuffered) return undefined;
    return new Promise((resolve) => this.spaceWaiters.push(resolve));
  }

  /** Makes the points pushed so far durable (throws if the queue cannot be written: they are forgotten). */
  flush(): void {
    try {
      this.queue.flush();
      this.unflushable = undefined;
    } catch (error) {
      this.unflushable = `queue not writable: ${error instanceof Error ? error.message : String(error)}`;
      this.warnings.warn('flush', { err: this.unflushable }, 'points could not be made durable (disk full?): not acknowledged, the broker delivers them again');
      throw error;
    }
  }

  /** Entries the durable queue lost to damage on disk, by reason. */
  get queueLost(): { readonly corrupt: number; readonly truncated: number } {
    return this.queue.lost;
  }

  /**
   * Not ok while the queue cannot be written or read, or its state not saved (disk full, I/O
   * errors), and while points are pending and none has been written for `stallMs` although the
   * database answered its last write.
   */
  health(): WriterHealth {
    const problem = this.unflushable ?? this.queue.problem;
    if (problem) return { ok: false, problem };
    if (this.queue.length === 0) this.progressAt = this.now();
    const idle = this.now() - this.progressAt;
    if (this.writable && idle > (this.options.stallMs ?? STALL_MS)) {
      return { ok: false, problem: `writer stalled: ${this.queue.length} points queued, none written for ${Math.round(idle / 1000)} s` };
    }
    return { ok: true };
  }

  get durable(): boolean {
    return this.queue.durable;
  }

  /** Bytes of the queue on disk, for a durable queue. */
  get queueBytes(): number | undefined {
    return this.queue.durable ? this.queue.bytes : undefined;
  }

  /**
   * Stops after writing what is queued, or at the deadline. Resolves with the number of points
   * that could not be written (still on disk for the next start, with a durable queue).
   */
  async stop(timeoutMs: number): Promise<number> {
    this.stopping = true;
    this.wake?.();
    const deadline = setTimeout(() => this.abort.abort(), timeoutMs);
    await this.loop;
    clearTimeout(deadline);
    this.releaseWaiters();
    return this.queue.length;
  }

  /** The loop, restarted after anything unexpected (logged): the writer never stops by itself. */
  private async run(): Promise<void> {
    while (!this.abort.signal.aborted) {
      try {
        if (await this.step()) return;
      } catch (error) {
        this.warnings.warn('loop', { err: error instanceof Error ? error.message : String(error) }, 'writer failed, retrying');
        await sleep(this.options.flushIntervalMs, this.abort.signal);
      }
    }
  }

  /** One batch; true when the loop is done (stopped). */
  private async step(): Promise<boolean> {
    if (this.queue.length === 0 && this.stopping) return true;
    if (this.queue.length < this.options.batchSize && !this.stopping && !this.cutShort) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.options.flushIntervalMs);
        this.wake = done;
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
      });
      this.wake = undefined;
    }
    this.cutShort = false;
    let batch: LineBatch | undefined;
    let queued = 0;
    try {
      batch = this.queue.peekBatch(this.options.batchSize);
      queued = this.queue.length;
    } catch (error) {
      this.warnings.warn('read', { err: error instanceof Error ? error.message : String(error) }, 'queue not readable, retrying');
    }
    this.stats.buffered = this.queue.length;
    if (!batch || batch.count === 0) {
      // Nothing readable although points are held (the queue failed): do not spin.
      if (this.queue.length > 0) await sleep(this.options.flushIntervalMs, this.abort.signal);
      return false;
    }
    if (!(await this.writeBatch(batch))) return true;
    this.queue.remove(batch.count);
    this.cutShort = batch.count < Math.min(this.options.batchSize, queued);
    this.progressAt = this.now();
    this.stats.buffered = this.queue.length;
    this.releaseWaiters();
    return false;
  }

  private releaseWaiters(): void {
    if (this.queue.length >= this.options.maxBuffered && !this.abort.signal.aborted) return;
    const waiters = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const w of waiters) w();
  }

  /** Writes a batch, retrying transient failures; false only when stopped at the deadline. */
  private async writeBatch(batch: LineBatch): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        const started = performance.now();
        await this.sink.write(batch);
        this.writeSeconds.observe((performance.now() - started) / 1000);
        this.writable = true;
        this.progressAt = this.now();
        this.stats.written += batch.count;
        if (attempt > 0) this.logger.info({ target: this.sink.target, attempts: attempt + 1 }, 'database writable again');
        return true;
      } catch (error) {
        const e = error instanceof SinkError ? error : new SinkError(String(error), { kind: 'transient', cause: error });
        if (e.kind === 'rejected' || e.kind === 'too_large') return this.split(batchLines(batch), e);
        if (this.abort.signal.aborted) return false;
        this.writable = false;
        this.stats.retries++;
        const delay = Math.max(backoffDelay(attempt, BACKOFF), e.retryAfterMs ?? 0);
        this.warnings.warn('write', { err: e.message, status: e.status, points: batch.count, retryInMs: delay }, 'write failed, retrying');
        await sleep(delay, this.abort.signal);
        if (this.abort.signal.aborted) return false;
      }
    }
  }

  private async split(lines: readonly string[], error: SinkError): Promise<boolean> {
    if (lines.length <= 1) {
      this.stats.dbRejected++;
      this.warnings.warn(`rejected:${error.kind}`, { err: error.message, status: error.status, line: lines[0] }, 'database refused a point, dropped');
      return true;
    }
    const half = Math.ceil(lines.length / 2);
    return (await this.writeBatch(linesBatch(lines.slice(0, half)))) && this.writeBatch(linesBatch(lines.slice(half)));
  }
}
