/**
 * A sink writes a batch of line-protocol lines to a database. It knows nothing of MQTT, timers or
 * retries; the writer decides those from the SinkError's kind.
 */
import type { LineBatch } from '../common/line-queue.js';

export type { LineBatch };

export type SinkErrorKind =
  /** Worth retrying later: network failure, 5xx, 429, timeouts, a database that went away. */
  | 'transient'
  /** The database refused the data itself (400: malformed line, type conflict, limits): retrying cannot help. */
  | 'rejected'
  /** 413: the batch is over the server's body size; split it. */
  | 'too_large'
  /** Configuration is wrong (no such database or bucket, credentials refused): stop at start. */
  | 'fatal';

/** What a sink error says besides its message. */
export interface SinkErrorDetails {
  readonly kind: SinkErrorKind;
  /** The HTTP status, when the database answered. */
  readonly status?: number | undefined;
  /** From Retry-After (429, 503). */
  readonly retryAfterMs?: number | undefined;
  readonly cause?: unknown;
}

export class SinkError extends Error {
  readonly kind: SinkErrorKind;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(message: string, details: SinkErrorDetails) {
    super(message, 'cause' in details ? { cause: details.cause } : undefined);
    this.name = 'SinkError';
    this.kind = details.kind;
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
  }
}

export interface Sink {
  /** Where it writes, for logs (no secrets). */
  readonly target: string;
  /** Verifies at start that the database or bucket exists and accepts writes; throws a SinkError. */
  check(): Promise<void>;
  /** Writes a batch of points (line protocol, a point per line); throws a SinkError. */
  write(batch: LineBatch): Promise<void>;
}

/** Parses a Retry-After header (seconds or an HTTP date) into milliseconds. */
export function retryAfterMs(header: string | null | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** How a write's HTTP status is handled while running. */
export function kindOfStatus(status: number): SinkErrorKind {
  if (status === 400 || status === 422) return 'rejected';
  if (status === 413) return 'too_large';
  return 'transient';
}

/** The answer to the start-up check: 2xx passes; missing database, bucket or rights are fatal. */
export function checkStatus(status: number, message: string, target: string): void {
  if (status >= 200 && status < 300) return;
  // InfluxDB 2.x checks the bucket and the token first, then refuses the empty body with a 400:
  // that answer means the write would have been accepted.
  if (status === 400 && /writing requires points/i.test(message)) return;
  if (status === 401 || status === 403) throw new SinkError(`${target}: credentials refused (${status} ${message})`, { kind: 'fatal', status });
  if (status === 404 || /not found/i.test(message)) throw new SinkError(`${target}: ${message || 'not found'} (${status})`, { kind: 'fatal', status });
  throw new SinkError(`${target}: ${status} ${message}`, { kind: kindOfStatus(status) === 'transient' ? 'transient' : 'fatal', status });
}
