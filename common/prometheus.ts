/** Counters in Prometheus' text exposition format (version 0.0.4), for GET /metrics. */

/** Cumulative histogram of durations, in seconds. */
export class Histogram {
  static readonly BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
  readonly counts: number[] = Histogram.BOUNDS.map(() => 0);
  count = 0;
  sum = 0;

  observe(seconds: number): void {
    this.count++;
    this.sum += seconds;
    Histogram.BOUNDS.forEach((bound, i) => {
      if (seconds <= bound) this.counts[i] = (this.counts[i] ?? 0) + 1;
    });
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Builds one exposition: each family with its HELP and TYPE, then its samples. */
export class PrometheusText {
  private readonly out: string[] = [];

  /** A single value, or one sample per label value: `{ [value of label]: n }`. */
  counter(name: string, help: string, value: number | Readonly<Record<string, number>>, label = 'reason'): this {
    return this.family(name, 'counter', help, value, label);
  }

  gauge(name: string, help: string, value: number | Readonly<Record<string, number>>, label = 'reason'): this {
    return this.family(name, 'gauge', help, value, label);
  }

  histogram(name: string, help: string, h: Histogram): this {
    this.head(name, 'histogram', help);
    Histogram.BOUNDS.forEach((bound, i) => this.out.push(`${name}_bucket{le="${bound}"} ${h.counts[i] ?? 0}`));
    this.out.push(`${name}_bucket{le="+Inf"} ${h.count}`, `${name}_sum ${h.sum}`, `${name}_count ${h.count}`);
    return this;
  }

  toString(): string {
    return `${this.out.join('\n')}\n`;
  }

  private family(name: string, type: 'counter' | 'gauge', help: string, value: number | Readonly<Record<string, number>>, label: string): this {
    this.head(name, type, help);
    if (typeof value === 'number') this.out.push(`${name} ${value}`);
    else for (const [key, n] of Object.entries(value)) this.out.push(`${name}{${label}="${key}"} ${n}`);
    return this;
  }

  private head(name: string, type: string, help: string): void {
    this.out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  }
}
