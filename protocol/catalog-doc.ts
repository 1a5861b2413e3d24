/** The metric catalog as a Markdown table: printed by `hostpulse metrics --markdown`, kept in the README. */
import { catalog, type MetricSpec, type MetricTemplate } from './catalog.js';
import { TOPIC_ROOT } from './names.js';

function storage(spec: MetricSpec): string {
  const tags = ['host', ...(spec.instanceTag ? [spec.instanceTag] : [])].join(', ');
  return `\`${spec.influx.measurement}\`.\`${spec.influx.field}\` (tags: ${tags})`;
}

function homeAssistant(spec: MetricSpec): string {
  return [spec.ha.component, spec.ha.deviceClass].filter(Boolean).join(' / ');
}

export function metricTableMarkdown(): string {
  const rows = (Object.entries(catalog) as [MetricTemplate, MetricSpec][]).map(
    ([name, spec]) =>
      `| \`${TOPIC_ROOT}/<host>/${name}\` | ${spec.unit || '—'} | ${spec.min} – ${spec.max} | ${spec.description} | ${homeAssistant(spec)} | ${storage(spec)} |`,
  );
  return [
    '| topic | unit | valid range | meaning | Home Assistant | InfluxDB measurement.field |',
    '|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}
