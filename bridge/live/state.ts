/**
 * The live view's state, kept in memory by the bridge: every host with its availability, when it was
 * last heard from, the latest value of each metric, and an hour of history for the sparklines.
 */
import { resolveMetric, type Sample } from '../../protocol/index.js';

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
  /**
   * Sparkline points flat, `[t0, v0, t1, v1, …]`: an array of doubles, 16 bytes a point instead of
   * ~60 for an array per point (2,000 hosts × 5 sparklines × an hour at 15 s: 38 MB against 140).
   */
  history: Record<string, number[]>;
}

/** A host as the page and the API see it (a copy: the live state moves on). */
function view(h: MutableHost): HostView {
  const history: Record<string, [number, number][]> = {};
  for (const [name, flat] of Object.entries(h.history)) {
    const points: [number, number][] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) points.push([flat[i] as number, flat[i + 1] as number]);
    history[name] = points;
  }
  const values: Record<string, [number, number]> = {};
  for (const [name, [value, ts]] of Object.entries(h.values)) values[name] = [value, ts];
  return { host: h.host, online: h.online, lastSeen: h.lastSeen, values, history };
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
    // Updated in place: this runs for every message the bridge takes.
    const previous = h.values[name];
    if (!previous) h.values[name] = [sample.value, sample.ts];
    else if (previous[1] <= sample.ts) {
      previous[0] = sample.value;
      previous[1] = sample.ts;
    }
    h.lastSeen = this.now();
    if (!SPARKLINES.has(sample.metric.template)) return;
    const points = (h.history[name] ??= []);
    const n = points.length;
    const lastTs = n >= 2 ? (points[n - 2] as number) : undefined;
    if (lastTs !== undefined && sample.ts < lastTs) return; // late redelivery: the sparkline only moves forward
    if (lastTs !== undefined && Math.floor(lastTs / this.options.stepMs) === Math.floor(sample.ts / this.options.stepMs)) {
      points[n - 2] = sample.ts;
      points[n - 1] = sample.value;
      return;
    }
    points.push(sample.ts, sample.value);
    const oldest = sample.ts - this.options.historyMs;
    let drop = 0;
    while (drop < points.length && (points[drop] as number) < oldest) drop += 2;
    if (drop > 0) points.splice(0, drop);
  }

  /** `null`: the retained availability was deleted, so whether the host is online is unknown again. */
  availability(host: string, online: boolean | null): void {
    // A deletion does not make a host known.
    const h = online === null && !this.hosts.has(host) ? undefined : this.entry(host);
    if (!h) return;
    h.online = online;
    if (online !== null) h.lastSeen = this.now();
  }

  /** Every host, as JSON-ready views. */
  snapshot(): HostView[] {
    return [...this.hosts.values()].map(view);
  }

  /** The hosts changed since the last call. */
  takeChanged(): HostView[] {
    const changed = this.changed;
    this.changed = new Set();
    return [...changed].flatMap((host) => {
      const h = this.hosts.get(host);
      return h ? [view(h)] : [];
    });
  }

  /** Units for the page, from the catalog. */
  static units(views: readonly HostView[]): Record<string, string> {
    const units: Record<string, string> = {};
    for (const v of views) for (const name of Object.keys(v.values)) units[name] ??= resolveMetric(name)?.spec.unit ?? '';
    return units;
  }
}
