/**
 * The agent's outbox: every sample is appended to a queue (on disk unless QUEUE_DIR=off) and
 * leaves it only once the broker has acknowledged it (QoS 1 PUBACK). While the broker is
 * unreachable the backlog grows on disk, bounded by size (the oldest samples go first) and by
 * age; both drops are counted. A restart replays what is left, each sample with its original
 * timestamp. A sample published twice (a crash between PUBACK and the queue update) is harmless:
 * InfluxDB keeps one point per series and timestamp.
 *
 * Entries are published in windows of `window` samples; a window leaves the queue when every
 * sample in it was acknowledged. A window that fails (the connection dropped) is published again
 * on the next connection.
 */
import type { LineQueue } from '../common/line-queue.js';
import type { Logger } from '../common/logger.js';
import { ThrottledLog } from '../common/throttle.js';

export interface Message {
  readonly topic: string;
  readonly payload: string;
}

/** What the outbox needs of a broker connection. */
export interface Publisher {
  readonly connected: boolean;
  publish(topic: string, payload: string, options: { qos: 1 }): Promise<void>;
  onConnect(handler: () => void): void;
}

export interface OutboxOptions {
  /** Samples older than this are dropped instead of published (counted as expired). */
  readonly maxAgeMs: number;
  /** Samples in flight at once. */
  readonly window: number;
}

export const OUTBOX_DEFAULTS: OutboxOptions = { maxAgeMs: 7 * 24 * 3_600_000, window: 500 };

export interface OutboxCounts {
  /** Samples the broker acknowledged. */
  published: number;
  /** Samples dropped for their age (MAX_QUEUE_AGE), and unreadable entries. */
  expired: number;
  corrupt: number;
  /** Samples that could not be written to the queue (disk full, or gone). */
  unwritable: number;
  /** Windows that failed and were published again. */
  retries: number;
}

/** One queue entry: `[sample time, topic, payload]`. */
type Entry = [number, string, string];

function parseEntry(line: string): Entry | undefined {
  try {
    const e = JSON.parse(line) as unknown;
    return Array.isArray(e) && e.length === 3 && typeof e[0] === 'number' && typeof e[1] === 'string' && typeof e[2] === 'string' ? (e as Entry) : undefined;
  } catch {
    return undefined;
  }
}

/** What an outbox works with. */
export interface OutboxDeps {
  readonly queue: LineQueue;
  readonly publisher: Publisher;
  readonly logger: Logger;
  /** Default OUTBOX_DEFAULTS. */
  readonly options?: OutboxOptions;
  /** The wall clock (default Date.now). */
  readonly now?: () => number;
}

export class Outbox {
  readonly counts: OutboxCounts = { published: 0, expired: 0, corrupt: 0, unwritable: 0, retries: 0 };
  private wake: (() => void) | undefined;
  private stopping = false;
  private closed = false;
  private loop: Promise<void> | undefined;
  private readonly warnings: ThrottledLog;

  private readonly queue: LineQueue;
  private readonly publisher: Publisher;
  private readonly logger: Logger;
  private readonly options: OutboxOptions;
  private readonly now: () => number;

  constructor(deps: OutboxDeps) {
    ({ queue: this.queue, publisher: this.publisher, logger: this.logger } = deps);
    this.options = deps.options ?? OUTBOX_DEFAULTS;
    this.now = deps.now ?? Date.now;
    this.warnings = new ThrottledLog(this.logger, 60_000);
    this.publisher.onConnect(() => this.poke());
  }

  /** Samples waiting for the broker. */
  get length(): number {
    return this.queue.length;
  }

  get bytes(): number {
    return this.queue.bytes;
  }

  get durable(): boolean {
    return this.queue.durable;
  }

  /**
   * Samples dropped so far, by reason: the size bound, the age bound, an unreadable entry (or a record
   * that failed its checksum on disk), records gone from the disk (a segment cut short), unwritable.
   */
  droppedByReason(): { queue_full: number; expired: number; corrupt: number; truncated: number; unwritable: number } {
    const lost = this.queue.lost;
    return {
      queue_full: this.queue.dropped,
      expired: this.counts.expired,
      corrupt: this.counts.corrupt + lost.corrupt,
      truncated: lost.truncated,
      unwritable: this.counts.unwritable,
    };
  }

  /** Every sample dropped so far, for any reason. */
  get dropped(): number {
    return Object.values(this.droppedByReason()).reduce((a, b) => a + b, 0);
  }

  /** Queues one round's samples, stamped `ts`. */
  put(messages: readonly Message[], ts: number): void {
    const before = this.queue.dropped;
    for (const m of messages) this.queue.append(JSON.stringify([ts, m.topic, m.payload] satisfies Entry));
    try {
      this.queue.flush();
    } catch (error) {
      this.counts.unwritable += messages.length;
      this.warnings.warn(
        'unwritable',
        { err: error instanceof Error ? error.message : String(error), dropped: messages.length },
        'queue not writable (disk full?): samples dropped',
      );
    }
    const forced = this.queue.dropped - before;
    if (forced > 0)
      this.warnings.warn(
        'full',
        { dropped: forced, queued: this.queue.length, bytes: this.queue.bytes },
        'queue full (MAX_QUEUE_BYTES): oldest samples dropped',
      );
    this.poke();
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops after the window in flight (bounded by `timeoutMs`); what is left stays queued. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    this.poke();
    await Promise.race([this.loop, new Promise((resolve) => setTimeout(resolve, timeoutMs).unref())]);
    this.closed = true;
    this.queue.close();
  }

  /** Resolves when the queue is empty (or `timeoutMs` passed): true if empty. */
  async drained(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.queue.length === 0;
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /**
   * Publishes while connected and something is queued; otherwise sleeps until poked: by `put`, by
   * every connection (the publisher's onConnect), by `stop`. No timer wakes an idle agent. The check
   * and the wait happen in one turn of the event loop, so a poke cannot fall between them.
   */
  private async run(): Promise<void> {
    while (!this.stopping) {
      if (!this.publisher.connected || this.queue.length === 0) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        continue;
      }
      await this.publishWindow();
    }
  }

  private async publishWindow(): Promise<void> {
    const lines = this.queue.peek(this.options.window);
    const oldest = this.now() - this.options.maxAgeMs;
    let expired = 0;
    let corrupt = 0;
    const sends: Promise<void>[] = [];
    for (const line of lines) {
      const entry = parseEntry(line);
      if (!entry) corrupt++;
      else if (entry[0] < oldest) expired++;
      else sends.push(this.publisher.publish(entry[1], entry[2], { qos: 1 }));
    }
    const results = await Promise.allSettled(sends);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      this.counts.retries++;
      this.warnings.warn('publish', { err: failed.reason, samples: sends.length }, 'publishing failed; the samples stay queued and are sent again');
      await new Promise((r) => setTimeout(r, 1000));
      return;
    }
    // Stopped while this window waited for the broker: it stays queued for the next run.
    if (this.closed) return;
    this.queue.remove(lines.length);
    this.counts.published += sends.length;
    this.counts.expired += expired;
    this.counts.corrupt += corrupt;
    if (expired > 0) this.warnings.warn('expired', { dropped: expired }, 'samples older than MAX_QUEUE_AGE dropped');
    if (corrupt > 0) this.logger.warn({ dropped: corrupt }, 'unreadable queue entries dropped');
  }
}
