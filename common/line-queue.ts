/**
 * A FIFO of text lines that entries leave only once they were delivered: peek the oldest, deliver
 * them, then remove that many. The disk queue (common/disk-queue.ts) survives a crash; this one
 * lives in memory. Both are bounded in bytes and drop their oldest entries beyond the bound,
 * counting them.
 */

/** Lines as one buffer, each ending in a newline: what a sink posts as it is. */
export interface LineBatch {
  readonly count: number;
  readonly body: Buffer;
}

export const EMPTY_BATCH: LineBatch = { count: 0, body: Buffer.alloc(0) };

/** The lines of a batch as strings (for the rare paths that need them one by one). */
export function batchLines(batch: LineBatch): string[] {
  if (batch.count === 0) return [];
  const text = batch.body.toString('utf8');
  return (text.endsWith('\n') ? text.slice(0, -1) : text).split('\n');
}

/** A batch of the given lines. */
export function linesBatch(lines: readonly string[]): LineBatch {
  return lines.length === 0 ? EMPTY_BATCH : { count: lines.length, body: Buffer.from(`${lines.join('\n')}\n`) };
}

/** Entries lost to damage on disk, by reason. */
export interface QueueLosses {
  /** Records that failed their checksum (flipped bytes, a torn write): dropped, never handed out. */
  corrupt: number;
  /** Records gone from the disk: a segment cut short (power loss) or missing. */
  truncated: number;
}

export interface LineQueue {
  /** Survives a crash of the process (entries left in it are delivered after a restart). */
  readonly durable: boolean;
  readonly length: number;
  /** Entries the size bound forced out. */
  readonly dropped: number;
  /** Entries lost to damage on disk, by reason (always 0 in memory). */
  readonly lost: Readonly<QueueLosses>;
  /** Why the queue cannot keep its state or read it right now (disk full, I/O error); undefined while it can. */
  readonly problem: string | undefined;
  /** Bytes of the entries held. */
  readonly bytes: number;
  /** Adds an entry; it survives a crash only once flushed (a durable queue gathers appends). */
  append(line: string): void;
  /**
   * Makes the appended entries durable together; throws if they could not be (disk full), forgetting
   * them, also when the queue had tried by itself since the last call (a peek flushes first).
   */
  flush(): void;
  /** The oldest `max` entries, left in the queue. */
  peek(max: number): readonly string[];
  /** The oldest entries, at most `max`, as one buffer, left in the queue. */
  peekBatch(max: number): LineBatch;
  /** Removes the oldest `count` entries, once delivered. */
  remove(count: number): void;
  /** Releases what the queue holds open (files, timers). */
  close(): void;
}

export class MemoryLineQueue implements LineQueue {
  readonly durable = false;
  dropped = 0;
  readonly lost: Readonly<QueueLosses> = { corrupt: 0, truncated: 0 };
  readonly problem = undefined;
  bytes = 0;
  private items: string[] = [];
  private head = 0;

  constructor(private readonly maxBytes = Number.POSITIVE_INFINITY) {}

  get length(): number {
    return this.items.length - this.head;
  }

  append(line: string): void {
    this.items.push(line);
    this.bytes += Buffer.byteLength(line) + 1;
    while (this.bytes > this.maxBytes && this.length > 1) {
      this.bytes -= Buffer.byteLength(this.items[this.head] as string) + 1;
      this.head++;
      this.dropped++;
    }
    this.compact();
  }

  flush(): void {}

  peek(max: number): readonly string[] {
    return this.items.slice(this.head, this.head + max);
  }

  peekBatch(max: number): LineBatch {
    return linesBatch(this.peek(max));
  }

  remove(count: number): void {
    const n = Math.min(count, this.length);
    for (let i = this.head; i < this.head + n; i++) this.bytes -= Buffer.byteLength(this.items[i] as string) + 1;
    this.head += n;
    this.compact();
  }

  close(): void {}

  private compact(): void {
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
