/** The bridge's counters in Prometheus' text format, for GET /metrics. */
import { PrometheusText, type Histogram } from '../common/prometheus.js';
import type { BridgeStats } from './stats.js';

export { Histogram } from '../common/prometheus.js';

export interface MetricsSnapshot {
  readonly stats: BridgeStats;
  readonly writeSeconds: Histogram;
  readonly queueBytes: number | undefined;
  readonly brokerConnected: boolean;
  readonly databaseWritable: boolean | undefined;
  /** Entries the durable queue lost to damage on disk (common/disk-queue.ts), by reason. */
  readonly queueLost?: { readonly corrupt: number; readonly truncated: number } | undefined;
  /** Hosts' numberings started over, by reason (bridge/gaps.ts); undefined with a shared subscription. */
  readonly sequenceResets?: Readonly<Record<string, number>> | undefined;
}

export function prometheusText(m: MetricsSnapshot): string {
  const { stats } = m;
  const text = new PrometheusText()
    .counter('hostpulse_bridge_received_total', 'Messages received from the broker.', stats.received)
    .counter('hostpulse_bridge_availability_total', 'Availability messages received.', stats.availability)
    .counter('hostpulse_bridge_rejected_total', 'Messages rejected by validation, by reason.', stats.rejected)
    .counter('hostpulse_bridge_written_total', 'Points InfluxDB confirmed written.', stats.written)
    .counter('hostpulse_bridge_dropped_total', 'Points dropped, by reason.', {
      database_refused: stats.dbRejected,
      queue_full: stats.dropped,
      lost_at_stop: stats.lost,
      queue_corrupt: m.queueLost?.corrupt ?? 0,
      queue_truncated: m.queueLost?.truncated ?? 0,
    })
    .counter(
      'hostpulse_bridge_missing_total',
      'Samples agents numbered that never arrived (gaps in seq): lost at the broker or dropped by the agent.',
      stats.missing,
    )
    .counter('hostpulse_bridge_write_retries_total', 'Failed writes that were retried.', stats.retries)
    .gauge('hostpulse_bridge_queue_points', 'Points waiting to be written.', stats.buffered);
  if (m.sequenceResets !== undefined) {
    text.counter(
      'hostpulse_bridge_sequence_resets_total',
      "Hosts' seq numbering started over, by reason: restart (an agent started again), implausible_jump (more skipped than the samples' times allow; not counted as missing).",
      m.sequenceResets,
    );
  }
  if (m.queueBytes !== undefined) text.gauge('hostpulse_bridge_queue_bytes', 'Bytes of the durable queue on disk.', m.queueBytes);
  text.gauge('hostpulse_bridge_broker_connected', '1 while connected to the broker.', m.brokerConnected ? 1 : 0);
  if (m.databaseWritable !== undefined)
    text.gauge('hostpulse_bridge_database_writable', '0 from a failed write until the next successful one.', m.databaseWritable ? 1 : 0);
  return text.histogram('hostpulse_bridge_write_duration_seconds', 'Duration of successful writes to InfluxDB.', m.writeSeconds).toString();
}
