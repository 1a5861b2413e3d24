/** A collector reads one family of sensors through the probe and returns readings. */
import { metricName, type MetricTemplate } from '../protocol/index.js';
import type { Probe } from './probe/index.js';

export interface Reading {
  readonly metric: string;
  readonly value: number;
}

export interface Collector {
  readonly name: string;
  /** The catalog templates this collector can produce, to list what a machine lacks. */
  readonly templates: readonly MetricTemplate[];
  collect(): Promise<readonly Reading[]>;
}

export interface CollectorContext {
  readonly probe: Probe;
  /** Monotonic milliseconds, for rates. */
  readonly monotonicMs: () => number;
  /** Where the host's / is mounted when the agent runs in a container (HOST_MOUNT_PREFIX). */
  readonly hostMountPrefix?: string | undefined;
}

export type CollectorFactory = (context: CollectorContext) => Collector;

/** Rounds to `digits` decimals, so payloads stay short. */
export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** Pushes a reading when the value is a real number; a missing sensor yields nothing. */
export function add(readings: Reading[], template: MetricTemplate, value: number | null | undefined, instance?: string | number, digits = 2): void {
  if (isNumber(value)) readings.push({ metric: metricName(template, instance), value: round(value, digits) });
}

/** Gives each raw instance name a unique slug: later duplicates get `_2`, `_3`, … */
export function uniqueSlugs(names: readonly string[], slug: (name: string) => string): Map<string, string> {
  const taken = new Set<string>();
  const result = new Map<string, string>();
  for (const name of names) {
    const base = slug(name);
    let candidate = base;
    for (let i = 2; taken.has(candidate); i++) candidate = `${base}_${i}`;
    taken.add(candidate);
    result.set(name, candidate);
  }
  return result;
}
