/** The bridge's counters. Later exposed on /metrics and stored for the pipeline-health dashboard. */
import { REJECT_REASONS, type RejectReason } from '../protocol/index.js';

export interface BridgeStats {
  /** Messages received from the broker. */
  received: number;
  /** Availability messages (`online`/`offline`), not stored as samples. */
  availability: number;
  /** Messages rejected by validation, by reason. */
  rejected: Record<RejectReason, number>;
  /** Points confirmed written by the database. */
  written: number;
  /** Points the database refused as malformed (400) and that were dropped. */
  dbRejected: number;
  /** Failed write attempts that were retried. */
  retries: number;
  /** Points waiting to be written. */
  buffered: number;
  /** Points accepted but never written (lost at shutdown, with an in-memory queue). */
  lost: number;
  /** Points the queue's size bound forced out (MAX_QUEUE_BYTES). */
  dropped: number;
  /** Samples agents numbered that never arrived: gaps in `seq` (lost at the broker or by the agent). */
  missing: number;
}

export function createStats(): BridgeStats {
  return {
    received: 0,
    availability: 0,
    rejected: Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>,
    written: 0,
    dbRejected: 0,
    retries: 0,
    buffered: 0,
    lost: 0,
    dropped: 0,
    missing: 0,
  };
}

export function totalRejected(stats: BridgeStats): number {
  return Object.values(stats.rejected).reduce((a, b) => a + b, 0);
}
