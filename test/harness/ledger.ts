/** Compares what agents published with what InfluxDB holds, metric by metric. */
import { catalog, metricName, type MetricSpec, type MetricTemplate } from '../../protocol/index.js';
import type { InfluxDB } from './influxdb.js';
import type { Captured } from './mqtt.js';

export interface PublishedSample {
  readonly metric: string;
  readonly value: number;
  readonly ts: number;
}

/** The samples among captured messages (availability left out). */
export function published(messages: readonly Captured[]): PublishedSample[] {
  return messages
    .filter((m) => !m.topic.endsWith('/availability'))
    .map((m) => {
      const { value, ts } = JSON.parse(m.payload) as { value: number; ts: number };
      return { metric: m.topic.split('/')[2] as string, value, ts };
    });
}

const byStorage = new Map<string, MetricTemplate>(
  (Object.entries(catalog) as [MetricTemplate, MetricSpec][]).map(([t, s]) => [`${s.influx.measurement}.${s.influx.field}`, t]),
);

/** Every point stored for a host, keyed `metric@ts`, read back through the catalog's mapping with InfluxQL. */
export async function stored(influx: InfluxDB, db: string, host: string): Promise<Map<string, number>> {
  const result = await influx.query(`SELECT * FROM /.*/ WHERE "host" = '${host}'`, db);
  const points = new Map<string, number>();
  for (const series of result.series) {
    const time = series.columns.indexOf('time');
    for (const row of series.values) {
      series.columns.forEach((column, i) => {
        const template = byStorage.get(`${series.name}.${column}`);
        if (!template || row[i] === null) return;
        const tag = (catalog[template] as MetricSpec).instanceTag;
        const instance = tag ? (row[series.columns.indexOf(tag)] as string) : undefined;
        points.set(`${metricName(template, instance)}@${row[time] as number}`, row[i] as number);
      });
    }
  }
  return points;
}

/** The published samples missing from or different in the store, as readable lines ([] when all match). */
export function differences(samples: readonly PublishedSample[], points: ReadonlyMap<string, number>): string[] {
  const problems: string[] = [];
  for (const s of samples) {
    const got = points.get(`${s.metric}@${s.ts}`);
    if (got !== s.value) problems.push(`${s.metric}@${s.ts}: published ${s.value}, stored ${got}`);
  }
  return problems;
}
