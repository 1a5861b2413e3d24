/**
 * A ledger of the embedded broker's retained messages, so that no login can grow the broker's
 * memory without bound (3,000 retained 60 KiB messages took `up` from 106 to 301 MB): each retained
 * topic is charged to the login that set it, by count and by bytes (topic + payload), and a retained
 * message that would take its login over either bound is refused. A deletion (empty payload) is
 * always allowed and gives its share back; a message replacing a retained one is charged the
 * difference. Without logins every client is one owner (""), so the bound holds for the whole broker.
 */

export interface RetainedLimits {
  /** Retained topics per login. */
  readonly maxTopics: number;
  /** Bytes of retained topics and payloads per login. */
  readonly maxBytes: number;
}

/**
 * An agent retains its availability and one Home Assistant discovery config per metric (~1–2 KB
 * each; a big PC has a few hundred metrics): 1,000 topics and 2 MiB is 3× what it needs.
 */
export const RETAINED_DEFAULTS: RetainedLimits = { maxTopics: 1000, maxBytes: 2 * 1024 * 1024 };

export type RetainedVerdict = 'stored' | 'deleted' | 'over_topics' | 'over_bytes';

interface Entry {
  readonly owner: string;
  readonly bytes: number;
}

interface Usage {
  topics: number;
  bytes: number;
}

export class RetainedQuota {
  private readonly topics = new Map<string, Entry>();
  private readonly usage = new Map<string, Usage>();

  constructor(private readonly limits: RetainedLimits) {}

  /**
   * Accounts a retained publish by `owner` and says whether the broker may store it: 'stored' and
   * 'deleted' are charged (or given back) here, the two refusals change nothing.
   */
  offer(owner: string, topic: string, payloadBytes: number): RetainedVerdict {
    const existing = this.topics.get(topic);
    if (payloadBytes === 0) {
      if (existing) this.release(topic, existing);
      return 'deleted';
    }
    const bytes = Buffer.byteLength(topic) + payloadBytes;
    const used = this.usage.get(owner) ?? { topics: 0, bytes: 0 };
    const replacing = existing?.owner === owner ? existing : undefined;
    if (used.topics + (replacing ? 0 : 1) > this.limits.maxTopics) return 'over_topics';
    if (used.bytes - (replacing?.bytes ?? 0) + bytes > this.limits.maxBytes) return 'over_bytes';
    if (existing) this.release(topic, existing);
    used.topics++;
    used.bytes += bytes;
    this.usage.set(owner, used);
    this.topics.set(topic, { owner, bytes });
    return 'stored';
  }

  /** What `owner` holds now. */
  held(owner: string): { readonly topics: number; readonly bytes: number } {
    const used = this.usage.get(owner);
    return { topics: used?.topics ?? 0, bytes: used?.bytes ?? 0 };
  }

  /** Retained topics and bytes over all owners. */
  total(): { readonly topics: number; readonly bytes: number } {
    let bytes = 0;
    for (const used of this.usage.values()) bytes += used.bytes;
    return { topics: this.topics.size, bytes };
  }

  private release(topic: string, entry: Entry): void {
    this.topics.delete(topic);
    const used = this.usage.get(entry.owner);
    if (!used) return;
    used.topics--;
    used.bytes -= entry.bytes;
    if (used.topics === 0) this.usage.delete(entry.owner);
  }
}
