/**
 * Logging without flooding: the first event of a kind is logged at once, later ones are counted
 * and summarised at most once per `everyMs` (`{ suppressed: n }`).
 */
import type { Logger } from './logger.js';

interface Entry {
  lastLoggedAt: number;
  suppressed: number;
}

export class ThrottledLog {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly logger: Logger,
    private readonly everyMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  warn(key: string, fields: Record<string, unknown>, message: string): void {
    const now = this.now();
    const entry = this.entries.get(key);
    if (entry && now - entry.lastLoggedAt < this.everyMs) {
      entry.suppressed++;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.entries.set(key, { lastLoggedAt: now, suppressed: 0 });
    this.logger.warn(suppressed > 0 ? { ...fields, suppressed } : fields, message);
  }
}
