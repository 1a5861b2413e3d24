/**
 * The live view's state, kept in memory by the bridge: every host with its availability, when it was
 * last heard from, the latest value of each metric, and an hour of history for the sparklines.
 */
import { resolveMetric, type Sample } from '../protocol/index.js';

export interface HostView {
  readonly host: string;
  /** From the retained availability topic; null until one arrives. */
  readonly online: boolean | null;
  /** When the bridge last received anything from this host, ms. */
  readonly lastSeen: number;
  /** Latest value per metric: [value, sample time ms]. */
  readonly values: Readonly<Record<string, readonly [number, number]>>;
  /** Sparkline metrics: [sample time ms, value][], oldest first. */
  readonly history: Readonly<Record<string, readonly (readonly [number, number])[]>>;
}

export interface LiveOptions {
  readonly historyMs: number;
  /** At most one history point per metric per step (the latest wins). */
  readonly stepMs: number;
  /** Hosts beyond this are not tracked (a flood of invented host names cannot grow memory). */
  readonly maxHosts: number;
}

export const DEFAULT_LIVE: LiveOptions = { historyMs: 3_600_000, stepMs: 15_000, maxHosts: 2000 };

/** Metrics drawn as sparklines. */
const SPARKLINES = new Set(['cpu_temp', 'cpu_usage', 'mem_usage', 'gpu{n}_temp', 'gpu{n}_usage']);

interface MutableHost {
  host: string;
  online: boolean | null;
  lastSeen: number;
  values: Record<string, [number, number]>;
  history: Record<string, [number, number][]>;
}

export class LiveState {
  private readonly hosts = new Map<string, MutableHost>();
  private changed = new Set<string>();

  constructor(
    private readonly options: LiveOptions = DEFAULT_LIVE,
    private readonly now: () => number = Date.now,
  ) {}

  private entry(host: string): MutableHost | undefined {
    let h = this.hosts.get(host);
    if (!h) {
      if (this.hosts.size >= this.options.maxHosts) return undefined;
      h = { host, online: null, lastSeen: 0, values: {}, history: {} };
      this.hosts.set(host, h);
    }
    this.changed.add(host);
    return h;
  }

  sample(sample: Sample): void {
    const h = this.entry(sample.host);
    if (!h) return;
    const name = sample.metric.name;
    const previous = h.values[name];
    if (!previous || previous[1] <= sample.ts) h.values[name] = [sample.value, sample.ts];
    h.lastSeen = this.now();
    if (!SPARKLINES.has(sample.metric.template)) return;
    const points = (h.history[name] ??= []);
    const last = points.at(-1);
    if (last && sample.ts < last[0]) return; // late redelivery: the sparkline only moves forward
    if (last && Math.floor(last[0] / this.options.stepMs) === Math.floor(sample.ts / this.options.stepMs)) points[points.length - 1] = [sample.ts, sample.value];
    else points.push([sample.ts, sample.value]);
    const oldest = sample.ts - this.options.historyMs;
    while (points.length > 0 && (points[0] as [number, number])[0] < oldest) points.shift();
  }

  availability(host: string, online: boolean): void {
    const h = this.entry(host);
    if (!h) return;
    h.online = online;
    h.lastSeen = this.now();
  }

  /** Every host, as JSON-ready views. */
  snapshot(): HostView[] {
    return [...this.hosts.values()].map((h) => structuredClone(h));
  }

  /** The hosts changed since the last call. */
  takeChanged(): HostView[] {
    const changed = this.changed;
    this.changed = new Set();
    return [...changed].flatMap((host) => {
      const h = this.hosts.get(host);
      return h ? [structuredClone(h)] : [];
    });
  }

  /** Units for the page, from the catalog. */
  static units(views: readonly HostView[]): Record<string, string> {
    const units: Record<string, string> = {};
    for (const v of views) for (const name of Object.keys(v.values)) units[name] ??= resolveMetric(name)?.spec.unit ?? '';
    return units;
  }
}
