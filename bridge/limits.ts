/**
 * Guards against floods and runaway cardinality, per host: a token bucket on messages (a burst
 * allowance of a minute's worth, so an agent replaying a backlog after an outage gets through), a
 * bound on the number of hosts, and on the distinct metric names of each host (instance names such
 * as disk_<name>_usage could otherwise be invented without end).
 */
import type { RejectReason } from '../protocol/index.js';

export interface LimitOptions {
  readonly maxHosts: number;
  readonly maxMetricsPerHost: number;
  /** Messages per second per host, sustained. */
  readonly hostRate: number;
  /** Seconds of hostRate a host may send at once. */
  readonly burstSeconds: number;
}

interface Bucket {
  tokens: number;
  at: number;
  metrics: Set<string>;
}

export class Limits {
  private readonly hosts = new Map<string, Bucket>();

  constructor(
    private readonly options: LimitOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** Why this sample must be dropped, or undefined when it may pass. */
  check(host: string, metric: string): RejectReason | undefined {
    const now = this.now();
    const burst = this.options.hostRate * this.options.burstSeconds;
    let bucket = this.hosts.get(host);
    if (!bucket) {
      if (this.hosts.size >= this.options.maxHosts) return 'too_many_hosts';
      bucket = { tokens: burst, at: now, metrics: new Set() };
      this.hosts.set(host, bucket);
    }
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * this.options.hostRate);
    bucket.at = now;
    if (bucket.tokens < 1) return 'rate_limited';
    if (!bucket.metrics.has(metric)) {
      if (bucket.metrics.size >= this.options.maxMetricsPerHost) return 'too_many_metrics';
      bucket.metrics.add(metric);
    }
    bucket.tokens -= 1;
    return undefined;
  }
}
