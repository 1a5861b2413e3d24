/** The bridge's configuration: one schema, read from the environment at start. */
import { allowedHosts, duration, integer, logLevel, oneOf, parseConfig, url, z, type ConfigResult, type Env } from '../common/config.js';
import { MQTT_PROTOCOLS } from '../common/mqtt.js';
import { mqttTls, mqttTlsFields, mqttTlsProblems, type TlsFiles } from '../common/tls-config.js';
import { defaultStateDir } from '../common/state-dir.js';
import type { InfluxV1Settings } from './sinks/influx-v1.js';
import type { InfluxV2Settings } from './sinks/influx-v2.js';

/** The bridge's variables; `hostpulse up` uses them with INFLUX_URL optional (no database: nothing stored). */
const makeBridgeSchema = (influxRequired: boolean) =>
  z.object({
    MQTT_URL: url(MQTT_PROTOCOLS, 'mqtt://localhost:1883'),
    MQTT_USERNAME: z.string().optional(),
    MQTT_PASSWORD: z.string().optional(),
    /** How often an idle connection is checked: a dead link is noticed within 1.5 times this. */
    MQTT_KEEPALIVE: duration('15s', '5s', '10m'),
    ...mqttTlsFields,
    /** Fixed, so the broker keeps the bridge's session and queues messages while it is away. */
    MQTT_CLIENT_ID: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1–64 letters, digits, "_" or "-"')
      .default('hostpulse-bridge'),
    /** Several bridges with the same group (and distinct MQTT_CLIENT_IDs) share the stream: MQTT shared subscription. */
    MQTT_SHARE_GROUP: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1–64 letters, digits, "_" or "-"')
      .optional(),
    INFLUX_API: oneOf(['2', '1'], '2'),
    INFLUX_URL: influxRequired ? url(['http', 'https']) : url(['http', 'https']).optional(),
    INFLUX_TOKEN: z.string().optional(),
    INFLUX_ORG: z.string().optional(),
    INFLUX_BUCKET: z.string().optional(),
    INFLUX_DATABASE: z.string().optional(),
    INFLUX_USERNAME: z.string().optional(),
    INFLUX_PASSWORD: z.string().optional(),
    INFLUX_RETENTION_POLICY: z.string().optional(),
    INFLUX_TIMEOUT: duration('10s', '1s', '5m'),
    BATCH_SIZE: integer(5000, 1, 100_000),
    FLUSH_INTERVAL: duration('1s', '10ms', '1m'),
    MAX_BUFFERED: integer(100_000, 1, 10_000_000),
    MAX_PAYLOAD_BYTES: integer(4096, 16, 1_048_576),
    MAX_FUTURE: duration('5m', '0s', '168h'),
    SHUTDOWN_TIMEOUT: duration('10s', '0s', '5m'),
    MAX_HOSTS: integer(10_000, 1, 10_000_000),
    MAX_METRICS_PER_HOST: integer(1000, 1, 1_000_000),
    HOST_RATE_LIMIT: integer(1000, 1, 10_000_000),
    /** The durable queue's directory; "off" keeps points in memory only (a crash loses them). */
    QUEUE_DIR: z.string().optional(),
    MAX_QUEUE_BYTES: integer(1024 ** 3, 1024 * 1024, 1024 ** 4),
    STATS_INTERVAL: duration('60s', '1s', '24h'),
    HTTP_HOST: z.string().default('127.0.0.1'),
    HTTP_PORT: integer(8080, 0, 65535),
    /** Host names the HTTP server answers besides IP literals, localhost and the machine's name (DNS rebinding). */
    HTTP_ALLOWED_HOSTS: allowedHosts(),
    /** Connections the HTTP server keeps open at once: well under the process's descriptors, which `up`'s broker needs too. */
    HTTP_MAX_CONNECTIONS: integer(256, 32, 65_536),
    LOG_LEVEL: logLevel(),
  });

export const bridgeSchema = makeBridgeSchema(true);
const upBridgeSchema = makeBridgeSchema(false);

type BridgeEnv = z.output<typeof upBridgeSchema>;

export type SinkSettings = ({ readonly api: '2' } & InfluxV2Settings) | ({ readonly api: '1' } & InfluxV1Settings);

export interface BridgeConfig {
  readonly mqtt: {
    readonly url: string;
    readonly username?: string | undefined;
    readonly password?: string | undefined;
    readonly clientId: string;
    readonly keepaliveSeconds?: number | undefined;
    readonly tls?: TlsFiles | undefined;
  };
  /** MQTT shared-subscription group, when several bridges share the stream. */
  readonly shareGroup: string | undefined;
  readonly influx: SinkSettings | undefined;
  readonly batchSize: number;
  readonly flushIntervalMs: number;
  readonly maxBuffered: number;
  readonly maxPayloadBytes: number;
  readonly maxFutureMs: number;
  readonly limits: { readonly maxHosts: number; readonly maxMetricsPerHost: number; readonly hostRate: number; readonly burstSeconds: number };
  readonly shutdownTimeoutMs: number;
  /** Undefined: points wait in memory (QUEUE_DIR=off). */
  readonly queue: { readonly dir: string; readonly maxBytes: number } | undefined;
  readonly statsIntervalMs: number;
  /** Where /healthz is served; port 0 turns it off. */
  readonly http: { readonly host: string; readonly port: number; readonly allowedHosts: readonly string[]; readonly maxConnections: number };
  readonly logLevel: BridgeEnv['LOG_LEVEL'];
}

function crossCheck(c: BridgeEnv): string[] {
  const errors: string[] = [];
  if (c.INFLUX_URL !== undefined && c.INFLUX_API === '2' && c.INFLUX_BUCKET === undefined) {
    errors.push('INFLUX_BUCKET: is required (or set INFLUX_API=1 and INFLUX_DATABASE for InfluxDB 1.x)');
  }
  if (c.INFLUX_URL !== undefined && c.INFLUX_API === '1' && c.INFLUX_DATABASE === undefined) errors.push('INFLUX_DATABASE: is required when INFLUX_API=1');
  if (c.INFLUX_PASSWORD !== undefined && c.INFLUX_USERNAME === undefined) errors.push('INFLUX_USERNAME: is required when INFLUX_PASSWORD is set');
  if (c.MQTT_PASSWORD !== undefined && c.MQTT_USERNAME === undefined) errors.push('MQTT_USERNAME: is required when MQTT_PASSWORD is set');
  errors.push(...mqttTlsProblems(c));
  if (c.MAX_BUFFERED < c.BATCH_SIZE) errors.push(`MAX_BUFFERED: must be at least BATCH_SIZE (${c.BATCH_SIZE})`);
  return errors;
}

/** With `influxRequired: false` (`hostpulse up`), no INFLUX_URL means no database: `influx` is undefined. */
export function loadBridgeConfig(env: Env, { influxRequired = true } = {}): ConfigResult<BridgeConfig> {
  const parsed = parseConfig(influxRequired ? bridgeSchema : upBridgeSchema, env, crossCheck);
  if (!parsed.ok) return parsed;
  const c = parsed.config;
  const influx: SinkSettings | undefined =
    c.INFLUX_URL === undefined
      ? undefined
      : c.INFLUX_API === '1'
        ? {
            api: '1',
            url: c.INFLUX_URL,
            database: c.INFLUX_DATABASE as string,
            retentionPolicy: c.INFLUX_RETENTION_POLICY,
            username: c.INFLUX_USERNAME,
            password: c.INFLUX_PASSWORD,
            timeoutMs: c.INFLUX_TIMEOUT,
          }
        : { api: '2', url: c.INFLUX_URL, token: c.INFLUX_TOKEN, org: c.INFLUX_ORG, bucket: c.INFLUX_BUCKET as string, timeoutMs: c.INFLUX_TIMEOUT };
  return {
    ok: true,
    config: Object.freeze({
      mqtt: {
        url: c.MQTT_URL,
        username: c.MQTT_USERNAME,
        password: c.MQTT_PASSWORD,
        clientId: c.MQTT_CLIENT_ID,
        keepaliveSeconds: c.MQTT_KEEPALIVE / 1000,
        ...mqttTls(c),
      },
      shareGroup: c.MQTT_SHARE_GROUP,
      influx,
      batchSize: c.BATCH_SIZE,
      flushIntervalMs: c.FLUSH_INTERVAL,
      maxBuffered: c.MAX_BUFFERED,
      maxPayloadBytes: c.MAX_PAYLOAD_BYTES,
      maxFutureMs: c.MAX_FUTURE,
      limits: { maxHosts: c.MAX_HOSTS, maxMetricsPerHost: c.MAX_METRICS_PER_HOST, hostRate: c.HOST_RATE_LIMIT, burstSeconds: 60 },
      shutdownTimeoutMs: c.SHUTDOWN_TIMEOUT,
      queue: c.QUEUE_DIR === 'off' ? undefined : { dir: c.QUEUE_DIR ?? defaultStateDir(env, `queue-${c.MQTT_CLIENT_ID}`), maxBytes: c.MAX_QUEUE_BYTES },
      statsIntervalMs: c.STATS_INTERVAL,
      http: { host: c.HTTP_HOST, port: c.HTTP_PORT, allowedHosts: c.HTTP_ALLOWED_HOSTS, maxConnections: c.HTTP_MAX_CONNECTIONS },
      logLevel: c.LOG_LEVEL,
    }),
  };
}
