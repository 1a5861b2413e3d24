/** `hostpulse bridge`: store what the agents publish in InfluxDB. */
import { loadBridgeConfig } from '../bridge/config.js';
import { startBridgeService, type BridgeService } from '../bridge/service.js';
import { createSink } from '../bridge/sinks/index.js';
import { DiskQueueInUse } from '../common/disk-queue.js';
import { createLogger } from '../common/logger.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, configOrReport, environment, parseFlags, untilSignal } from './shared.js';

export const BRIDGE_HELP = `Usage: hostpulse bridge [options]

Subscribes to sensors/+/+ with a persistent session (QoS 1), validates every message against the
metric catalog and writes the samples to InfluxDB in batches. Stops cleanly on SIGTERM/SIGINT,
writing what it holds first.

Options:
  --config FILE      read these variables from FILE (KEY=value lines); the environment wins
  -h, --help         show this help

Environment (MQTT):
  MQTT_URL           broker, mqtt:// mqtts:// ws:// or wss:// (default mqtt://localhost:1883)
  MQTT_USERNAME      broker login (optional)
  MQTT_PASSWORD      broker password (optional)
  MQTT_KEEPALIVE     how often an idle connection is checked; a dead link is noticed within
                     1.5 times this (default 15s)
  MQTT_CA_FILE       PEM file of the CA(s) to trust for mqtts:// and wss:// (default: the system's)
  MQTT_CERT_FILE     client certificate (PEM), with MQTT_KEY_FILE, for brokers that require one
  MQTT_KEY_FILE      its private key (PEM, not encrypted)
  MQTT_CLIENT_ID     fixed client id of the persistent session (default hostpulse-bridge)
  MQTT_SHARE_GROUP   share the stream with the other bridges of this group (MQTT shared
                     subscription $share/<group>/…); each bridge needs its own MQTT_CLIENT_ID

Environment (InfluxDB 2.x, 3.x, Cloud, 1.8+: the v2 write API, the default):
  INFLUX_URL         e.g. http://localhost:8086 (required)
  INFLUX_TOKEN       API token (1.8: user:password)
  INFLUX_ORG         organisation (ignored by 1.8)
  INFLUX_BUCKET      bucket (1.8: database/retention-policy) (required)

Environment (InfluxDB 1.x through the v1 /write API):
  INFLUX_API=1       use the v1 API (required for InfluxDB before 1.8)
  INFLUX_URL         e.g. http://localhost:8086 (required)
  INFLUX_DATABASE    database (required)
  INFLUX_USERNAME, INFLUX_PASSWORD, INFLUX_RETENTION_POLICY   (optional)

Environment (tuning):
  INFLUX_TIMEOUT     one write request's time limit (default 10s)
  BATCH_SIZE         points per write (default 5000)
  FLUSH_INTERVAL     longest wait before a partial batch is written (default 1s)
  MAX_BUFFERED       points held while InfluxDB is slow or down; beyond it intake pauses and
                     the broker queues (default 100000)
  MAX_PAYLOAD_BYTES  larger messages are rejected (default 4096)
  MAX_FUTURE         samples stamped further ahead than this are rejected (default 5m)
  MAX_HOSTS          new hosts beyond this many are rejected (default 10000)
  MAX_METRICS_PER_HOST  distinct metric names per host (default 1000)
  HOST_RATE_LIMIT    messages per second per host, a minute's worth as burst (default 1000)
  SHUTDOWN_TIMEOUT   longest time to flush on stop (default 10s)
  QUEUE_DIR          the durable queue: a message is acknowledged to the broker once its point is
                     appended here, and leaves once InfluxDB has it; replayed at start
                     (default $XDG_STATE_HOME or ~/.local/state, /hostpulse/queue-<MQTT_CLIENT_ID>;
                     "off": in memory, a crash loses what is held)
  MAX_QUEUE_BYTES    the queue's bound on disk; beyond it the oldest points are dropped and counted
                     (default 1073741824, 1 GiB)
  STATS_INTERVAL     how often counters are logged and stored (default 60s)
  HTTP_HOST          address of the HTTP server: the live view (/), /api/hosts, /api/stream,
                     /healthz and /metrics (Prometheus) (default 127.0.0.1)
  HTTP_PORT          its port; 0 turns it off (default 8080)
  HTTP_ALLOWED_HOSTS names it answers to besides IP addresses, localhost and this machine's host
                     name, comma-separated (".example.org": it and every name under it; "*": any);
                     other Host headers get 421 (DNS rebinding) (default none)
  HTTP_MAX_CONNECTIONS  connections it keeps open at once, the last 16 only for loopback clients;
                     further ones are closed (default 256)
  LOG_LEVEL          fatal, error, warn, info, debug, trace or silent (default info)
`;

export async function runBridge(args: readonly string[]): Promise<number> {
  const flags = parseFlags('bridge', args, { config: { type: 'string' } });
  if (!flags) return EXIT_USAGE;
  if (flags['help']) {
    process.stdout.write(BRIDGE_HELP);
    return EXIT_OK;
  }
  const env = environment(flags['config']);
  if (!env) return EXIT_USAGE;
  const config = configOrReport('bridge', loadBridgeConfig(env));
  if (!config) return EXIT_USAGE;
  const logger = createLogger({ name: 'bridge', level: config.logLevel });
  let service: BridgeService;
  try {
    service = await startBridgeService(config, config.influx && createSink(config.influx), config.http, logger, config.queue);
  } catch (error) {
    const where = error instanceof DiskQueueInUse || (error as NodeJS.ErrnoException).syscall !== 'listen' ? 'QUEUE_DIR' : 'HTTP_HOST, HTTP_PORT';
    process.stderr.write(`hostpulse bridge: cannot start (${where}): ${(error as Error).message}\n`);
    return EXIT_FAILURE;
  }
  const signal = untilSignal();
  const first = await Promise.race([service.started, signal]);
  if (first instanceof Error) {
    logger.fatal({ err: first.message }, 'cannot start');
    process.stderr.write(`hostpulse bridge: ${first.message}\n`);
    await service.stop(0);
    return EXIT_FAILURE;
  }
  logger.info({ signal: await signal }, 'stopping');
  const unwritten = await service.stop(config.shutdownTimeoutMs);
  if (unwritten > 0) {
    logger.error({ unwritten }, 'stopped before every point was written');
    return EXIT_FAILURE;
  }
  return EXIT_OK;
}
