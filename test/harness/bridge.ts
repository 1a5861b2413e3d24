/** The built bridge with its HTTP server on a free port, and its counters read from GET /metrics as a user's Prometheus would. */
import { runCli, type LogLine, type Running } from './cli.js';
import { freePort } from './process.js';

/** Samples of GET /metrics by series, e.g. `hostpulse_bridge_written_total` or `hostpulse_bridge_rejected_total{reason="bad_host"}`. */
export type Metrics = ReadonlyMap<string, number>;

export interface BridgeProcess extends Running {
  readonly httpPort: number;
  /** GET /metrics, parsed. */
  metrics(): Promise<Metrics>;
  /** One series of GET /metrics (0 when absent). */
  metric(series: string): Promise<number>;
}

export function parsePrometheus(text: string): Metrics {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** `hostpulse_bridge_rejected_total` by reason, only the reasons counted at least once. */
export function rejectedByReason(metrics: Metrics): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [series, value] of metrics) {
    const reason = /^hostpulse_bridge_rejected_total\{reason="(\w+)"\}$/.exec(series)?.[1];
    if (reason && value > 0) out[reason] = value;
  }
  return out;
}

export interface BridgeStart {
  /** What to wait for before resolving: the first subscription (a new session, the default), any broker connection, or nothing. */
  readonly until?: 'subscribed' | 'connected' | 'nothing';
  readonly timeoutMs?: number;
}

const READY: Record<'subscribed' | 'connected', (l: LogLine) => boolean> = {
  subscribed: (l) => l.msg === 'subscribed',
  connected: (l) => l.msg === 'connected to broker' || l.msg === 'broker connection restored',
};

/** Runs `hostpulse bridge` with `env` (plus a free HTTP_PORT) and waits as `start.until` says. */
export async function startBridge(env: Record<string, string>, start: BridgeStart = {}): Promise<BridgeProcess> {
  const httpPort = await freePort();
  const running = runCli(['bridge'], { HTTP_PORT: String(httpPort), ...env });
  const until = start.until ?? 'subscribed';
  if (until !== 'nothing') await running.waitForLog(READY[until], start.timeoutMs ?? 20_000);
  const metrics = async (): Promise<Metrics> => {
    const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
    if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`);
    return parsePrometheus(await res.text());
  };
  return { ...running, httpPort, metrics, metric: async (series) => (await metrics()).get(series) ?? 0 };
}

/** The environment of a bridge storing into InfluxDB 1.x database `db`, with a fast flush and stats every second. */
export function bridgeEnv(brokerUrl: string, influxUrl: string, db: string, clientId: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    MQTT_URL: brokerUrl,
    MQTT_CLIENT_ID: clientId,
    INFLUX_API: '1',
    INFLUX_URL: influxUrl,
    INFLUX_DATABASE: db,
    FLUSH_INTERVAL: '100ms',
    STATS_INTERVAL: '1s',
    ...extra,
  };
}
