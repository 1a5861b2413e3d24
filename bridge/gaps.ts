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
 */

/** A drop this far below the last number is a restarted agent, not a redelivery. */
const RESTART_BELOW = 100_000;
/** How long a hole may wait for its numbers (a resend after a reconnect) before it counts as missing. */
export const REORDER_MS = 5_000;
/** Open holes kept per host; beyond it the oldest counts at once. */
const MAX_HOLES = 64;

interface Hole {
  from: number;
  to: number;
  readonly at: number;
}

interface HostSeq {
  last: number;
  holes: Hole[];
}

const size = (holes: readonly Hole[]): number => holes.reduce((n, h) => n + h.to - h.from + 1, 0);

export class SequenceGaps {
  private readonly hosts = new Map<string, HostSeq>();

  /** `maxHosts`: hosts tracked at most (new ones beyond it are not). */
  constructor(
    private readonly maxHosts: number,
    private readonly reorderMs = REORDER_MS,
  ) {}

  /** Records `seq` from `host` at `now` (ms); returns how many of its samples are now known to be missing. */
  observe(host: string, seq: number, now: number): number {
    const h = this.hosts.get(host);
    if (h === undefined) {
      if (this.hosts.size < this.maxHosts) this.hosts.set(host, { last: seq, holes: [] });
      return 0;
    }
    if (seq === 0 || seq < h.last - RESTART_BELOW) {
      // A restarted agent: what its last run left open is lost for good.
      const lost = size(h.holes);
      h.holes = [];
      h.last = seq;
      return lost;
    }
    let missing = 0;
    if (seq <= h.last) this.fill(h, seq);
    else {
      if (seq > h.last + 1) {
        h.holes.push({ from: h.last + 1, to: seq - 1, at: now });
        if (h.holes.length > MAX_HOLES) missing += size(h.holes.splice(0, 1));
      }
      h.last = seq;
    }
    return missing + this.expire(h, now);
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
