/**
 * Losses no one else reports: every agent numbers its samples (`seq`, from 0 at each start, one
 * count per sample, delivered in order from its outbox). A jump in a host's numbers means samples
 * that were published but never reached the bridge — dropped by the broker (a queue limit while the
 * bridge was away, an oversize message) or by the agent's own bounds. Redeliveries (a number already
 * seen) are not gaps; a number far lower than the last, or 0, is a restarted agent.
 *
 * A hole is counted only once it has stayed open REORDER_MS: after a reconnect a publisher may send
 * a new sample before it resends an unacknowledged older one, so n+1 can arrive before n. A number
 * that arrives late fills its hole, and nothing is counted for it.
 *
 * A jump must fit the samples' own times: no host sends more than `maxRate` samples a second (the
 * bridge's HOST_RATE_LIMIT), so a jump is plausible only up to `maxRate` per second of sample time
 * gained since the host's latest sample, plus a second's worth of credit (samples of one round
 * share a timestamp) that refills with sample time. Beyond it the jump is a reset of the numbering,
 * counted by reason, not `missing` (`seq` 1 then 2^53−2 is one publisher's invention, not 9e15 lost
 * samples). Sample times older than `maxAgeMs` before receipt count from there, so that an invented
 * ancient timestamp buys nothing: over a host's life, what it can add to `missing` is at most a
 * second's worth plus `maxRate` times the span of its (clamped) sample times.
 */

/** A drop this far below the last number is a restarted agent, not a redelivery. */
const RESTART_BELOW = 100_000;
/** How long a hole may wait for its numbers (a resend after a reconnect) before it counts as missing. */
export const REORDER_MS = 5_000;
/** Open holes kept per host; beyond it the oldest counts at once. */
const MAX_HOLES = 64;
/** The credit for jumps without sample time to show for them (a round's samples share one timestamp). */
const CREDIT_SECONDS = 1;
/** The longest an agent keeps a sample in its outbox by default (its MAX_QUEUE_AGE). */
export const MAX_SAMPLE_AGE_MS = 7 * 24 * 3_600_000;

/** Why a host's numbering started over: a restarted agent, or a jump its sample times cannot explain. */
export const RESET_REASONS = ['restart', 'implausible_jump'] as const;
export type SequenceReset = (typeof RESET_REASONS)[number];

export interface GapOptions {
  /** Hosts tracked at most (new ones beyond it are not). */
  readonly maxHosts: number;
  /** Samples a second a host may send at the most (HOST_RATE_LIMIT). */
  readonly maxRate: number;
  readonly reorderMs?: number;
  /** Sample times further back than this before receipt count as this far back. */
  readonly maxAgeMs?: number;
}

export interface Observed {
  /** Samples of this host now known to be missing. */
  readonly missing: number;
  /** Set when this number started the host's numbering over. */
  readonly reset?: SequenceReset;
}

interface Hole {
  from: number;
  to: number;
  readonly at: number;
}

interface HostSeq {
  last: number;
  holes: Hole[];
  /** The latest sample time seen (clamped), ms; undefined until a sample with a time. */
  latest: number | undefined;
  /** Numbers a jump may skip without sample time to show for them, at most a second's worth. */
  credit: number;
}

const size = (holes: readonly Hole[]): number => holes.reduce((n, h) => n + h.to - h.from + 1, 0);

export class SequenceGaps {
  private readonly hosts = new Map<string, HostSeq>();
  /** Numberings started over, by reason (exposed on /metrics). */
  readonly resets: Record<SequenceReset, number> = { restart: 0, implausible_jump: 0 };
  private readonly reorderMs: number;
  private readonly maxAgeMs: number;
  private readonly maxCredit: number;

  constructor(private readonly options: GapOptions) {
    this.reorderMs = options.reorderMs ?? REORDER_MS;
    this.maxAgeMs = options.maxAgeMs ?? MAX_SAMPLE_AGE_MS;
    this.maxCredit = options.maxRate * CREDIT_SECONDS;
  }

  /**
   * Records `seq` from `host`, a sample taken at `ts` (undefined when the message had no valid
   * time: no sample time is gained) and received at `now` (ms).
   */
  observe(host: string, seq: number, ts: number | undefined, now: number): Observed {
    const h = this.hosts.get(host);
    if (h === undefined) {
      if (this.hosts.size < this.options.maxHosts) this.hosts.set(host, { last: seq, holes: [], latest: this.clamp(ts, now), credit: this.maxCredit });
      return { missing: 0 };
    }
    const budget = h.credit + this.gained(h, ts, now);
    if (seq !== h.last && (seq === 0 || seq < h.last - RESTART_BELOW)) return this.reset(h, seq, budget, 'restart');
    let missing = 0;
    if (seq <= h.last) {
      this.fill(h, seq);
      h.credit = Math.min(this.maxCredit, budget);
    } else {
      const skipped = seq - h.last - 1;
      if (skipped > budget) return this.reset(h, seq, budget, 'implausible_jump');
      if (skipped > 0) {
        h.holes.push({ from: h.last + 1, to: seq - 1, at: now });
        if (h.holes.length > MAX_HOLES) missing += size(h.holes.splice(0, 1));
      }
      h.credit = Math.min(this.maxCredit, budget - skipped);
      h.last = seq;
    }
    return { missing: missing + this.expire(h, now) };
  }

  /** Holes open for REORDER_MS by `now`, counted as missing: samples per host (hosts with none left out). */
  sweep(now: number): Map<string, number> {
    const found = new Map<string, number>();
    for (const [host, h] of this.hosts) {
      if (h.holes.length === 0) continue;
      const missing = this.expire(h, now);
      if (missing > 0) found.set(host, missing);
    }
    return found;
  }

  /** The numbering starts over at `seq`: what the last run left open is lost for good (it fitted its times). */
  private reset(h: HostSeq, seq: number, budget: number, reason: SequenceReset): Observed {
    this.resets[reason]++;
    const lost = size(h.holes);
    h.holes = [];
    h.last = seq;
    h.credit = Math.min(this.maxCredit, budget);
    return { missing: lost, reset: reason };
  }

  /** A sample time no older than maxAgeMs before `now`. */
  private clamp(ts: number | undefined, now: number): number | undefined {
    return ts === undefined ? undefined : Math.max(ts, now - this.maxAgeMs);
  }

  /** Numbers the sample time gained since the host's latest sample allows (moving `latest` on). */
  private gained(h: HostSeq, ts: number | undefined, now: number): number {
    const at = this.clamp(ts, now);
    if (at === undefined) return 0;
    if (h.latest === undefined || at <= h.latest) {
      h.latest ??= at;
      return 0;
    }
    const gained = ((at - h.latest) / 1000) * this.options.maxRate;
    h.latest = at;
    return gained;
  }

  /** A late number fills its hole (a redelivery of a number seen before changes nothing). */
  private fill(h: HostSeq, seq: number): void {
    const i = h.holes.findIndex((hole) => seq >= hole.from && seq <= hole.to);
    const hole = h.holes[i];
    if (hole === undefined) return;
    if (hole.from === hole.to) h.holes.splice(i, 1);
    else if (seq === hole.from) hole.from++;
    else if (seq === hole.to) hole.to--;
    else h.holes.splice(i, 1, { from: hole.from, to: seq - 1, at: hole.at }, { from: seq + 1, to: hole.to, at: hole.at });
  }

  private expire(h: HostSeq, now: number): number {
    // The common case, per sample: nothing open, nothing allocated.
    if (h.holes.length === 0) return 0;
    const due = h.holes.filter((hole) => now - hole.at >= this.reorderMs);
    if (due.length === 0) return 0;
    h.holes = h.holes.filter((hole) => now - hole.at < this.reorderMs);
    return size(due);
  }
}
