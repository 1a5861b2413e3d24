/** The agent's configuration: one schema, read from the environment (flags override) at start. */
import { hostname } from 'node:os';
import { allowedHosts, duration, flag, integer, logLevel, parseConfig, url, z, type ConfigResult, type Env } from '../common/config.js';
import { MQTT_PROTOCOLS } from '../common/mqtt.js';
import { defaultStateDir } from '../common/state-dir.js';
import { mqttTls, mqttTlsFields, mqttTlsProblems, type TlsFiles } from '../common/tls-config.js';
import { hostFromOsName, hostProblem } from '../protocol/index.js';

export const agentSchema = z.object({
  SENSORS_HOST: z.string().optional(),
  SAMPLE_INTERVAL: duration('10s', '1s'),
  MQTT_URL: url(MQTT_PROTOCOLS, 'mqtt://localhost:1883'),
  MQTT_USERNAME: z.string().optional(),
  MQTT_PASSWORD: z.string().optional(),
  /** How often an idle connection is checked: a dead link is noticed within 1.5 times this. */
  MQTT_KEEPALIVE: duration('15s', '5s', '10m'),
  ...mqttTlsFields,
  /** The outbox: samples wait here (on disk) until the broker acknowledged them; `off` keeps them in memory. */
  QUEUE_DIR: z.string().optional(),
  /** Its bound; beyond it the oldest samples are dropped (counted). */
  MAX_QUEUE_BYTES: integer(100 * 1024 * 1024, 1024 * 1024, 1024 ** 4),
  /** Samples older than this are dropped instead of delivered (counted). */
  MAX_QUEUE_AGE: duration('7d', '1m', '365d'),
  /** In a container with the host's / mounted here: report only the host's filesystems, by their host paths. */
  HOST_MOUNT_PREFIX: z
    .string()
    .regex(/^\/[^\0]*[^/]$/, 'must be an absolute path such as /hostfs')
    .optional(),
  HTTP_HOST: z.string().default('127.0.0.1'),
  HTTP_PORT: integer(0, 0, 65535),
  HTTP_ALLOWED_HOSTS: allowedHosts(),
  LOG_LEVEL: logLevel(),
  /** Home Assistant MQTT discovery: retained configs under HA_DISCOVERY_PREFIX for every metric published. */
  HA_DISCOVERY: flag(true),
  HA_DISCOVERY_PREFIX: z
    .string()
    .default('homeassistant')
    .refine((p) => !/[+#/\0]/.test(p), { message: 'must be one MQTT topic level, without "+", "#", "/" or NUL' }),
});

export type AgentEnv = z.output<typeof agentSchema>;

export interface AgentConfig {
  readonly host: string;
  readonly intervalMs: number;
  readonly mqtt: {
    readonly url: string;
    readonly username?: string | undefined;
    readonly password?: string | undefined;
    readonly keepaliveSeconds?: number | undefined;
    readonly tls?: TlsFiles | undefined;
  };
  /** Where samples wait for the broker: a directory, or undefined for memory (QUEUE_DIR=off). */
  readonly queue: { readonly dir: string | undefined; readonly maxBytes: number; readonly maxAgeMs: number };
  readonly hostMountPrefix?: string | undefined;
  /** Where /healthz is served; port 0 (the default) turns it off. */
  readonly http: { readonly host: string; readonly port: number; readonly allowedHosts: readonly string[] };
  readonly logLevel: AgentEnv['LOG_LEVEL'];
  /** Home Assistant MQTT discovery (birth topic `<prefix>/status`). */
  readonly haDiscovery: { readonly enabled: boolean; readonly prefix: string };
}

export function loadAgentConfig(env: Env, osHostname: string = hostname()): ConfigResult<AgentConfig> {
  const parsed = parseConfig(agentSchema, env, (c) => {
    const errors: string[] = [];
    if (c.SENSORS_HOST !== undefined) {
      const problem = hostProblem(c.SENSORS_HOST);
      if (problem) errors.push(`SENSORS_HOST: "${c.SENSORS_HOST}" ${problem}`);
    } else if (hostFromOsName(osHostname) === undefined) {
      errors.push(`SENSORS_HOST: the OS host name "${osHostname}" gives no valid host name; set SENSORS_HOST`);
    }
    if (c.MQTT_PASSWORD !== undefined && c.MQTT_USERNAME === undefined) errors.push('MQTT_USERNAME: is required when MQTT_PASSWORD is set');
    errors.push(...mqttTlsProblems(c));
    return errors;
  });
  if (!parsed.ok) return parsed;
  const c = parsed.config;
  const host = c.SENSORS_HOST ?? (hostFromOsName(osHostname) as string);
  return {
    ok: true,
    config: Object.freeze({
      host,
      intervalMs: c.SAMPLE_INTERVAL,
      mqtt: { url: c.MQTT_URL, username: c.MQTT_USERNAME, password: c.MQTT_PASSWORD, keepaliveSeconds: c.MQTT_KEEPALIVE / 1000, ...mqttTls(c) },
      queue: {
        dir: c.QUEUE_DIR === 'off' ? undefined : (c.QUEUE_DIR ?? defaultStateDir(env, `agent-${host}`)),
        maxBytes: c.MAX_QUEUE_BYTES,
        maxAgeMs: c.MAX_QUEUE_AGE,
      },
      hostMountPrefix: c.HOST_MOUNT_PREFIX,
      http: { host: c.HTTP_HOST, port: c.HTTP_PORT, allowedHosts: c.HTTP_ALLOWED_HOSTS },
      logLevel: c.LOG_LEVEL,
      haDiscovery: { enabled: c.HA_DISCOVERY, prefix: c.HA_DISCOVERY_PREFIX },
    }),
  };
}
