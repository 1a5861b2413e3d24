/**
 * Samples to InfluxDB line protocol through the catalog's storage mapping:
 *   <measurement>,host=<host>[,<instanceTag>=<instance>] <field>=<value> <ts ms>
 * Values are always written as floats (no `i` suffix), so a field never changes type.
 * Names are allowlisted by the contract already; escaping here is a second layer.
 */
import { availabilityStorage, pipelineStorage, type Sample } from '../protocol/index.js';
import type { BridgeStats } from './stats.js';

const KEY_SPECIAL = /[\\,= \n]/;
const MEASUREMENT_SPECIAL = /[\\, \n]/;
// Names almost never need escaping: test first, replace only then.
const escapeKey = (s: string): string => (KEY_SPECIAL.test(s) ? s.replace(/[\\,= ]/g, (c) => `\\${c}`).replace(/\n/g, '\\n') : s);
const escapeMeasurement = (s: string): string => (MEASUREMENT_SPECIAL.test(s) ? s.replace(/[\\, ]/g, (c) => `\\${c}`).replace(/\n/g, '\\n') : s);

/** A float in line protocol: JavaScript's shortest round-trip form, e.g. `42`, `42.5`, `1e-7`. */
function float(value: number): string {
  return String(value);
}

export function toLine(sample: Sample): string {
  const { measurement, field } = sample.metric.spec.influx;
  const tag = sample.metric.spec.instanceTag;
  let line = `${escapeMeasurement(measurement)},host=${escapeKey(sample.host)}`;
  if (tag && sample.metric.instance !== undefined) line += `,${escapeKey(tag)}=${escapeKey(sample.metric.instance)}`;
  return `${line} ${escapeKey(field)}=${float(sample.value)} ${sample.ts}`;
}

export function availabilityLine(host: string, online: boolean, ts: number): string {
  return `${availabilityStorage.measurement},host=${escapeKey(host)} ${availabilityStorage.field}=${online ? 1 : 0} ${ts}`;
}

/** The bridge's counters as one point: every counter a field, rejections also by reason (`rejected_<reason>`). */
export function statsLine(bridge: string, stats: BridgeStats, ts: number): string {
  const { rejected, ...counters } = stats;
  const fields: [string, number][] = [
    ...Object.entries(counters).map(([k, v]): [string, number] => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]),
    ['rejected', Object.values(rejected).reduce((a, b) => a + b, 0)],
    ...Object.entries(rejected).map(([reason, n]): [string, number] => [`rejected_${reason}`, n]),
  ];
  return `${pipelineStorage.measurement},${pipelineStorage.tag}=${escapeKey(bridge)} ${fields.map(([k, v]) => `${k}=${float(v)}`).join(',')} ${ts}`;
}
