/**
 * `hostpulse up`: everything for one machine in one process, without Docker: the embedded broker,
 * the bridge with its live view, and an agent for this machine. InfluxDB is optional.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hashLine, readPasswd } from '../broker/passwd.js';
import { BRIDGE_LOGIN } from '../broker/acl.js';
import { flag, parseConfig } from '../common/config.js';
import { brokerConfigProblems, brokerOptions, brokerSchema } from '../broker/config.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../broker/server.js';
import { MQTT_TLS_VARIABLES } from '../common/tls-config.js';
import { createLogger } from '../common/logger.js';
import { loadAgentConfig } from '../agent/config.js';
import { loadBridgeConfig } from '../bridge/config.js';
import { createSystemProbe } from '../agent/probe/system.js';
import { startAgentService, type AgentService } from '../agent/service.js';
import { startBridgeService, type BridgeService } from '../bridge/service.js';
import { createSink } from '../bridge/sinks/index.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, configOrReport, environment, parseFlags, untilSignal } from './shared.js';

export const UP_HELP = `Usage: hostpulse up [options]

Runs everything for one machine in one process: an MQTT broker, the bridge with its live view, and an
agent for this machine. Open the address it prints. Other PCs can publish to it too (enrol them).

Options:
  --config FILE      read these variables from FILE (KEY=value lines); the environment wins
  -h, --help         show this help

Environment:
  MQTT_BIND          address of the broker (default 127.0.0.1: this machine only)
  MQTT_PORT          MQTT port (default 1883)
  MQTT_WS_PORT       MQTT over WebSocket port; 0 turns it off (default 9001)
  MQTT_PASSWD_FILE   logins, as written by "hostpulse enrol --passwd FILE" (Mosquitto's format);
                     with it, anonymous clients are refused and the rules of mosquitto/acl apply.
                     Required to listen beyond this machine. Re-read on SIGHUP.
  MQTT_MAX_CONNECTIONS  clients at once, all ports together (default 1000); sockets that have
                     not sent CONNECT yet are bounded apart (64 per address, 256 in all: the
                     oldest is closed first)
  MQTT_MAX_PACKET_BYTES  (default 65536)
  MQTT_RETAINED_MAX_TOPICS, MQTT_RETAINED_MAX_BYTES   retained messages a login may hold: topics
                     and bytes of topic + payload (default 1000 and 2097152; without logins, for
                     the whole broker); beyond, a retained message is acknowledged and dropped
  MQTT_TLS_CERT_FILE, MQTT_TLS_KEY_FILE   the broker's certificate (chain, leaf first) and its key,
                     PEM: with them, MQTT over TLS is served on MQTT_TLS_PORT too, with the same
                     logins, rules and limits
  MQTT_TLS_PORT      its port (default 8883)
  MQTT_TLS_CA_FILE   require client certificates signed by these CAs (PEM) on the TLS port
  HTTP_HOST          address of the live view (default 127.0.0.1; 0.0.0.0 to open it from a phone)
  HTTP_PORT          its port (default 8080)
  HTTP_ALLOWED_HOSTS names it answers to besides IP addresses, localhost and this machine's host
                     name, comma-separated (default none; "*": any)
  HTTP_MAX_CONNECTIONS  HTTP connections open at once (default 256); with MQTT_MAX_CONNECTIONS,
                     keep it under the open-file limit (ulimit -n)
  LOCAL_AGENT        also sample this machine (default true)
  INFLUX_URL, …      store history in InfluxDB, as for "hostpulse bridge" (optional: without it,
                     the live view keeps the last hour in memory and nothing is stored)
  SENSORS_HOST, SAMPLE_INTERVAL, …   the local agent, as for "hostpulse agent"
  LOG_LEVEL          (default info)
`;

// The broker's variables (broker/config.ts) and up's own.
const upSchema = brokerSchema.extend({ LOCAL_AGENT: flag(true) });

/** This process's open-file limit (Linux, /proc/self/limits: Node raises the soft one to the hard at start); undefined elsewhere. */
function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m?.[1] === undefined ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

function internalPassword(): string {
  return randomBytes(24).toString('base64url');
}

export async function runUp(args: readonly string[]): Promise<number> {
  const flags = parseFlags('up', args, { config: { type: 'string' } });
  if (!flags) return EXIT_USAGE;
  if (flags['help']) {
    process.stdout.write(UP_HELP);
    return EXIT_OK;
  }
  const env = environment(flags['config']);
  if (!env) return EXIT_USAGE;

  // One list of problems for the three parts, each variable named once.
  const own = parseConfig(upSchema, env, brokerConfigProblems);
  // Variables of the bridge and agent that have no use here: their clients connect over loopback TCP.
  const unusedHere = MQTT_TLS_VARIABLES.filter((k) => env[k]).map(
    (k) => `${k}: not used by hostpulse up (its bridge and agent connect over loopback); for TLS clients set MQTT_TLS_CERT_FILE and MQTT_TLS_KEY_FILE`,
  );
  // One bridge, on its own broker: nothing to share the stream with.
  if (env['MQTT_SHARE_GROUP'])
    unusedHere.push(
      'MQTT_SHARE_GROUP: not used by hostpulse up (one bridge on its own broker); run several `hostpulse bridge` against Mosquitto to share the stream',
    );
  const internalEnv = { ...env, MQTT_SHARE_GROUP: undefined, ...Object.fromEntries(MQTT_TLS_VARIABLES.map((k) => [k, undefined])) };
  const brokerHost = own.ok ? (own.config.MQTT_BIND === '0.0.0.0' ? '127.0.0.1' : own.config.MQTT_BIND) : '127.0.0.1';
  const mqttUrl = `mqtt://${brokerHost}:${own.ok ? own.config.MQTT_PORT : 1883}`;
  const bridgeResult = loadBridgeConfig({ ...internalEnv, MQTT_URL: mqttUrl }, { influxRequired: false });
  const agentResult = loadAgentConfig({ ...internalEnv, MQTT_URL: mqttUrl, HTTP_PORT: '0', QUEUE_DIR: 'off' });
  const errors = [
    ...new Set([...(own.ok ? [] : own.errors), ...unusedHere, ...(bridgeResult.ok ? [] : bridgeResult.errors), ...(agentResult.ok ? [] : agentResult.errors)]),
  ];
  const config = configOrReport('up', errors.length > 0 ? { ok: false, errors } : own);
  if (!config || !bridgeResult.ok || !agentResult.ok) return EXIT_USAGE;
  const bridgeConfig = bridgeResult.config;
  const agentConfig = agentResult.config;
  const logger = createLogger({ name: 'up', level: bridgeConfig.logLevel });
  // Broker and HTTP server share the process's descriptors (plus ~64 for files and its own connections).
  const fds = openFileLimit();
  if (fds !== undefined && config.MQTT_MAX_CONNECTIONS + bridgeConfig.http.maxConnections + 64 > fds) {
    logger.warn(
      { openFileLimit: fds, MQTT_MAX_CONNECTIONS: config.MQTT_MAX_CONNECTIONS, HTTP_MAX_CONNECTIONS: bridgeConfig.http.maxConnections },
      'MQTT_MAX_CONNECTIONS and HTTP_MAX_CONNECTIONS together exceed the open-file limit: a flood of connections could leave none for logins; raise it (ulimit -n) or lower them',
    );
  }

  // Logins: the file's, plus in-memory ones for this process's own bridge and agent.
  const internal = new Map<string, string>();
  const bridgePassword = internalPassword();
  const agentPassword = internalPassword();
  let fileLogins = new Map<string, string>();
  const passwdFile = config.MQTT_PASSWD_FILE;
  if (passwdFile !== undefined) {
    try {
      fileLogins = await readPasswd(passwdFile);
    } catch (error) {
      process.stderr.write(`hostpulse up: cannot read MQTT_PASSWD_FILE ${passwdFile}: ${(error as Error).message}\n`);
      return EXIT_USAGE;
    }
    internal.set(BRIDGE_LOGIN, hashLine(BRIDGE_LOGIN, bridgePassword));
    internal.set(agentConfig.host, hashLine(agentConfig.host, agentPassword));
    process.on('SIGHUP', () => {
      readPasswd(passwdFile).then(
        (entries) => {
          fileLogins = entries;
          logger.info({ logins: entries.size }, 'logins re-read');
        },
        (error: unknown) => logger.error({ err: (error as Error).message }, 'cannot re-read MQTT_PASSWD_FILE; keeping the logins I have'),
      );
    });
  }

  let broker: EmbeddedBroker | undefined;
  let bridge: BridgeService | undefined;
  let agent: AgentService | undefined;
  const signal = untilSignal();
  try {
    broker = await startEmbeddedBroker(
      {
        ...brokerOptions(config),
        ...(passwdFile !== undefined
          ? { logins: (user: string) => [internal.get(user), fileLogins.get(user)].filter((l): l is string => l !== undefined) }
          : {}),
      },
      logger.child({ component: 'broker' }),
    );
    const credentials = passwdFile !== undefined;
    bridge = await startBridgeService(
      { ...bridgeConfig, mqtt: { ...bridgeConfig.mqtt, ...(credentials ? { username: BRIDGE_LOGIN, password: bridgePassword } : {}) } },
      bridgeConfig.influx && createSink(bridgeConfig.influx),
      bridgeConfig.http,
      logger.child({ component: 'bridge' }),
      bridgeConfig.queue,
      broker.metrics,
    );
    const first = await Promise.race([bridge.started, signal]);
    if (first instanceof Error) throw first;
    if (typeof first === 'string') return await shutdown();
    if (config.LOCAL_AGENT) {
      agent = await startAgentService(
        { ...agentConfig, mqtt: { url: mqttUrl, ...(credentials ? { username: agentConfig.host, password: agentPassword } : {}) } },
        createSystemProbe(),
        logger.child({ component: 'agent' }),
      );
    }
  } catch (error) {
    process.stderr.write(`hostpulse up: ${(error as Error).message}\n`);
    await shutdown();
    return EXIT_FAILURE;
  }
  const http = bridgeConfig.http;
  const page = `http://${http.host === '0.0.0.0' ? 'localhost' : http.host}:${http.port}/`;
  process.stderr.write(
    `\nhostpulse is up.\n  live view:  ${page}\n  broker:     mqtt://${config.MQTT_BIND}:${broker.port}${broker.wsPort ? `  (WebSocket ws://${config.MQTT_BIND}:${broker.wsPort})` : ''}\n${broker.tlsPort ? `  TLS:        mqtts://${config.MQTT_BIND}:${broker.tlsPort}${config.MQTT_TLS_CA_FILE ? '  (client certificates required)' : ''}\n` : ''}  history:    ${bridgeConfig.influx ? `stored in ${new URL(bridgeConfig.influx.url).origin}` : 'NOT stored (no INFLUX_URL): the live view keeps the last hour in memory'}\n\n`,
  );
  logger.info({ signal: await signal }, 'stopping');
  return shutdown();

  /** Agent first (it says offline), then the bridge (it writes what it holds), then the broker. */
  async function shutdown(): Promise<number> {
    await agent?.stop(5000);
    const unwritten = (await bridge?.stop(bridgeConfig.shutdownTimeoutMs)) ?? 0;
    await broker?.close();
    return unwritten > 0 ? EXIT_FAILURE : EXIT_OK;
  }
}
