/** The metric catalog as a Markdown table: printed by `hostpulse metrics --markdown`, kept in docs/protocol.md. */
import { catalog, type MetricSpec, type MetricTemplate } from './catalog.js';
import { TOPIC_ROOT } from './names.js';

/** A bound in words where the raw number would be unreadable. */
function bound(value: number, unit: string): string {
  if (unit === 'B' && value >= 1024 ** 5) return `${value / 1024 ** 5} PiB`;
  if (unit === 'B/s' && value >= 1e9) return `${(value * 8) / 1e12} Tbit/s`;
  if (unit === 's' && value >= 365 * 24 * 3600) return `${value / (365 * 24 * 3600)} years`;
  return String(value);
}

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
      `| \`${TOPIC_ROOT}/<host>/${name}\` | ${spec.unit || '—'} | ${bound(spec.min, spec.unit)} – ${bound(spec.max, spec.unit)} | ${spec.description} | ${homeAssistant(spec)} | ${storage(spec)} |`,
  );
  return ['| topic | unit | valid range | meaning | Home Assistant | InfluxDB measurement.field |', '|---|---|---|---|---|---|', ...rows].join('\n');
}
