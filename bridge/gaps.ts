/**
 * Losses no one else reports: every agent numbers its samples (`seq`, from 0 at each start, one
 * count per sample, delivered in order from its outbox). A jump in a host's numbers means samples
 * that were published but never reached the bridge — dropped by the broker (a queue limit while the
 * bridge was away, an oversize message) or by the agent's own bounds. Redeliveries (a number already
 * seen) are not gaps; a number far lower than the last, or 0, is a restarted agent.
 */

/** A drop this far below the last number is a restarted agent, not a redelivery. */
const RESTART_BELOW = 100_000;

export class SequenceGaps {
  private readonly last = new Map<string, number>();

  /** `maxHosts`: hosts tracked at most (new ones beyond it are not). */
  constructor(private readonly maxHosts: number) {}

  /** Records `seq` from `host`; returns how many samples are missing before it (0 if none). */
  observe(host: string, seq: number): number {
    const last = this.last.get(host);
    if (last === undefined) {
      if (this.last.size < this.maxHosts) this.last.set(host, seq);
      return 0;
    }
    if (seq === 0 || seq < last - RESTART_BELOW) {
      this.last.set(host, seq);
      return 0;
    }
    if (seq <= last) return 0;
    this.last.set(host, seq);
    return seq - last - 1;
  }
}
