/**
 * Samples to InfluxDB line protocol through the catalog's storage mapping:
 *   <measurement>,host=<host>[,<instanceTag>=<instance>] <field>=<value> <ts ms>
 * Values are always written as floats (no `i` suffix), so a field never changes type.
 * Names are allowlisted by the contract already; escaping here is a second layer.
 */
import type { Sample } from '../protocol/index.js';

const escapeKey = (s: string): string => s.replace(/[\\,= ]/g, (c) => `\\${c}`).replace(/\n/g, '\\n');
const escapeMeasurement = (s: string): string => s.replace(/[\\, ]/g, (c) => `\\${c}`).replace(/\n/g, '\\n');

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
