/**
 * Runs the collectors for one round. A collector that fails or hangs is logged (throttled) and
 * skipped for that round; the others still report. A collector that reports nothing on its first
 * round is switched off (the machine lacks that hardware), and every metric the machine lacks is
 * listed once.
 */
import type { Logger } from '../common/logger.js';
import { ThrottledLog } from '../common/throttle.js';
import { resolveMetric } from '../protocol/index.js';
import type { Collector, Reading } from './collector.js';

export interface SamplerOptions {
  /** A collector still running after this long is skipped for the round. */
  readonly timeoutMs: number;
}

const TIMEOUT = Symbol('timeout');

export class Sampler {
  private readonly active = new Set<Collector>();
  private readonly running = new Set<Collector>();
  private readonly reported = new Set<Collector>();
  private readonly failures: ThrottledLog;

  constructor(
    collectors: readonly Collector[],
    private readonly logger: Logger,
    private readonly options: SamplerOptions,
  ) {
    for (const c of collectors) this.active.add(c);
    this.failures = new ThrottledLog(logger, 60_000);
  }

  /** One round whose readings are thrown away: collectors that compute rates take their baseline. */
  async prime(): Promise<void> {
    await Promise.all([...this.active].map((c) => this.run(c)));
  }

  async round(): Promise<Reading[]> {
    const collectors = [...this.active];
    const results = await Promise.all(collectors.map((c) => this.run(c)));
    const readings: Reading[] = [];
    collectors.forEach((c, i) => {
      const result = results[i];
      if (result === undefined) return;
      if (!this.reported.has(c)) {
        this.reported.add(c);
        this.reportMissing(c, result);
      }
      readings.push(...result);
    });
    return readings;
  }

  /** The readings of a collector, or undefined when it failed, hung or is still busy. */
  private async run(c: Collector): Promise<readonly Reading[] | undefined> {
    if (this.running.has(c)) {
      this.failures.warn(`busy:${c.name}`, { collector: c.name }, 'collector still busy from the last round, skipped');
      return undefined;
    }
    this.running.add(c);
    let timer: NodeJS.Timeout | undefined;
    const call = c.collect().finally(() => this.running.delete(c));
    const timeout = new Promise<typeof TIMEOUT>((resolve) => {
      timer = setTimeout(() => resolve(TIMEOUT), this.options.timeoutMs);
    });
    try {
      const result = await Promise.race([call, timeout]);
      if (result === TIMEOUT) {
        call.catch(() => undefined);
        this.failures.warn(`timeout:${c.name}`, { collector: c.name, timeoutMs: this.options.timeoutMs }, 'collector timed out, skipped');
        return undefined;
      }
      return result;
    } catch (error) {
      this.failures.warn(`error:${c.name}`, { collector: c.name, err: error }, 'collector failed, skipped');
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  private reportMissing(c: Collector, readings: readonly Reading[]): void {
    const produced = new Set(readings.map((r) => resolveMetric(r.metric)?.template));
    const missing = c.templates.filter((t) => !produced.has(t));
    if (readings.length === 0) {
      this.active.delete(c);
      this.logger.info({ collector: c.name, metrics: missing }, 'not available on this machine, not published');
    } else if (missing.length > 0) {
      this.logger.info({ collector: c.name, metrics: missing }, 'some metrics not available on this machine, not published');
    }
  }
}
