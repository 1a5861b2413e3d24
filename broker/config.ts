/**
 * The embedded broker's settings (`hostpulse up`): the MQTT_* variables it reads, the rules between
 * them, and the listener options they give. `up` adds its own variables and the logins.
 */
import { isIP } from 'node:net';
import { integer, z } from '../common/config.js';
import { certificateFile, keyPairProblems, privateKeyFile } from '../common/tls-config.js';
import { RETAINED_DEFAULTS } from './retained-quota.js';
import type { EmbeddedBrokerOptions } from './server.js';

const LOOPBACK = /^(127\.|::1$|localhost$)/;

export const brokerSchema = z.object({
  MQTT_BIND: z
    .string()
    .default('127.0.0.1')
    .refine((v) => isIP(v) !== 0 || v === 'localhost', 'must be an IP address such as 127.0.0.1 or 0.0.0.0'),
  MQTT_PORT: integer(1883, 1, 65535),
  MQTT_WS_PORT: integer(9001, 0, 65535),
  MQTT_PASSWD_FILE: z.string().optional(),
  MQTT_MAX_CONNECTIONS: integer(1000, 1, 100_000),
  MQTT_MAX_PACKET_BYTES: integer(65_536, 1024, 16 * 1024 * 1024),
  MQTT_RETAINED_MAX_TOPICS: integer(RETAINED_DEFAULTS.maxTopics, 1, 1_000_000),
  MQTT_RETAINED_MAX_BYTES: integer(RETAINED_DEFAULTS.maxBytes, 1024, 1024 ** 3),
  MQTT_TLS_PORT: integer(8883, 1, 65535),
  MQTT_TLS_CERT_FILE: certificateFile().optional(),
  MQTT_TLS_KEY_FILE: privateKeyFile().optional(),
  MQTT_TLS_CA_FILE: certificateFile().optional(),
});

export type BrokerEnv = z.output<typeof brokerSchema>;

/**
 * Listening beyond this machine needs logins; the TLS listener needs certificate and key together,
 * a CA only with them, and a port of its own.
 */
export function brokerConfigProblems(c: BrokerEnv): string[] {
  const errors: string[] = [];
  if (!LOOPBACK.test(c.MQTT_BIND) && c.MQTT_PASSWD_FILE === undefined) {
    errors.push(`MQTT_BIND: listening on ${c.MQTT_BIND} (beyond this machine) needs logins: set MQTT_PASSWD_FILE (hostpulse enrol --passwd FILE)`);
  }
  errors.push(...keyPairProblems('MQTT_TLS_CERT_FILE', 'MQTT_TLS_KEY_FILE', c.MQTT_TLS_CERT_FILE, c.MQTT_TLS_KEY_FILE));
  if (c.MQTT_TLS_CERT_FILE === undefined && c.MQTT_TLS_KEY_FILE === undefined) {
    if (c.MQTT_TLS_CA_FILE !== undefined) errors.push('MQTT_TLS_CA_FILE: needs the TLS listener: set MQTT_TLS_CERT_FILE and MQTT_TLS_KEY_FILE');
  } else if (c.MQTT_TLS_PORT === c.MQTT_PORT || c.MQTT_TLS_PORT === c.MQTT_WS_PORT) {
    errors.push(`MQTT_TLS_PORT: ${c.MQTT_TLS_PORT} is already MQTT_PORT or MQTT_WS_PORT`);
  }
  return errors;
}

/** The listeners and limits the settings give (logins are the caller's). */
export function brokerOptions(c: BrokerEnv): Omit<EmbeddedBrokerOptions, 'logins'> {
  return {
    host: c.MQTT_BIND,
    port: c.MQTT_PORT,
    wsPort: c.MQTT_WS_PORT,
    maxConnections: c.MQTT_MAX_CONNECTIONS,
    maxPacketBytes: c.MQTT_MAX_PACKET_BYTES,
    retained: { maxTopics: c.MQTT_RETAINED_MAX_TOPICS, maxBytes: c.MQTT_RETAINED_MAX_BYTES },
    ...(c.MQTT_TLS_CERT_FILE && c.MQTT_TLS_KEY_FILE
      ? { tls: { port: c.MQTT_TLS_PORT, cert: c.MQTT_TLS_CERT_FILE.pem, key: c.MQTT_TLS_KEY_FILE.pem, ca: c.MQTT_TLS_CA_FILE?.pem } }
      : {}),
  };
}
