/** The bridge's counters in Prometheus' text format, for GET /metrics. */
import { REJECT_REASONS } from '../protocol/index.js';
import type { BridgeStats } from './stats.js';

/** Cumulative histogram of write durations, in seconds. */
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

export interface MetricsSnapshot {
  readonly stats: BridgeStats;
  readonly writeSeconds: Histogram;
  readonly queueBytes: number | undefined;
  readonly brokerConnected: boolean;
  readonly databaseWritable: boolean | undefined;
}

function family(lines: string[], name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
}

export function prometheusText(m: MetricsSnapshot): string {
  const { stats } = m;
  const out: string[] = [];
  const counter = (name: string, help: string, value: number): void => {
    family(out, name, 'counter', help);
    out.push(`${name} ${value}`);
  };
  const gauge = (name: string, help: string, value: number): void => {
    family(out, name, 'gauge', help);
    out.push(`${name} ${value}`);
  };
  counter('hostpulse_bridge_received_total', 'Messages received from the broker.', stats.received);
  counter('hostpulse_bridge_availability_total', 'Availability messages received.', stats.availability);
  family(out, 'hostpulse_bridge_rejected_total', 'counter', 'Messages rejected by validation, by reason.');
  for (const reason of REJECT_REASONS) out.push(`hostpulse_bridge_rejected_total{reason="${reason}"} ${stats.rejected[reason]}`);
  counter('hostpulse_bridge_written_total', 'Points InfluxDB confirmed written.', stats.written);
  family(out, 'hostpulse_bridge_dropped_total', 'counter', 'Points dropped, by reason.');
  out.push(`hostpulse_bridge_dropped_total{reason="database_refused"} ${stats.dbRejected}`);
  out.push(`hostpulse_bridge_dropped_total{reason="queue_full"} ${stats.dropped}`);
  out.push(`hostpulse_bridge_dropped_total{reason="lost_at_stop"} ${stats.lost}`);
  counter('hostpulse_bridge_write_retries_total', 'Failed writes that were retried.', stats.retries);
  gauge('hostpulse_bridge_queue_points', 'Points waiting to be written.', stats.buffered);
  if (m.queueBytes !== undefined) gauge('hostpulse_bridge_queue_bytes', 'Bytes of the durable queue on disk.', m.queueBytes);
  gauge('hostpulse_bridge_broker_connected', '1 while connected to the broker.', m.brokerConnected ? 1 : 0);
  if (m.databaseWritable !== undefined) gauge('hostpulse_bridge_database_writable', '0 from a failed write until the next successful one.', m.databaseWritable ? 1 : 0);
  family(out, 'hostpulse_bridge_write_duration_seconds', 'histogram', 'Duration of successful writes to InfluxDB.');
  Histogram.BOUNDS.forEach((bound, i) => out.push(`hostpulse_bridge_write_duration_seconds_bucket{le="${bound}"} ${m.writeSeconds.counts[i] ?? 0}`));
  out.push(`hostpulse_bridge_write_duration_seconds_bucket{le="+Inf"} ${m.writeSeconds.count}`);
  out.push(`hostpulse_bridge_write_duration_seconds_sum ${m.writeSeconds.sum}`);
  out.push(`hostpulse_bridge_write_duration_seconds_count ${m.writeSeconds.count}`);
  return `${out.join('\n')}\n`;
}
