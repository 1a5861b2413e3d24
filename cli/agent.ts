/**
 * `hostpulse agent`: sample this PC and publish to MQTT. Loaded by cli/main.ts once it has set up
 * the agent's runtime (cli/agent-runtime.ts), so everything imported here is compiled under it; the
 * health server is loaded only when HTTP_PORT asks for it.
 */
import { writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { Agent, toMessages } from '../agent/agent.js';
import { loadAgentConfig, type AgentConfig } from '../agent/config.js';
import { ReplayProbe, record, type Probe } from '../agent/probe/index.js';
import type { Sampler } from '../agent/sampler.js';
import { createSystemProbe } from '../agent/probe/system.js';
import { sleep } from '../common/backoff.js';
import type { HealthServer } from '../common/health.js';
import { createLogger, type Logger } from '../common/logger.js';
import { PRIME_MS, agentConnection, createSampler, startAgentService, type AgentService } from '../agent/service.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, configOrReport, environment, parseFlags, untilSignal } from './shared.js';

export const AGENT_HELP = `Usage: hostpulse agent [options]

Samples this PC (CPU, GPU, memory, disks, network, battery) every SAMPLE_INTERVAL and publishes
each metric with QoS 1 to sensors/<host>/<metric>. Unless HA_DISCOVERY=false, it also keeps a
retained Home Assistant discovery config for each metric under HA_DISCOVERY_PREFIX.

Options:
  --once             publish one round, exit 0 once the broker acknowledged every sample
                     (no Home Assistant discovery)
  --print            print one round as JSON lines; needs no broker (no discovery)
  --record FILE      record this machine's raw sensor readings (two rounds) to FILE
  --replay FILE      read sensors from a recording instead of this machine
  --host NAME        same as SENSORS_HOST
  --interval TIME    same as SAMPLE_INTERVAL
  --mqtt-url URL     same as MQTT_URL
  --config FILE      read these variables from FILE (KEY=value lines); the environment wins
  -h, --help         show this help

Environment:
  SENSORS_HOST     host name in topics, [a-z0-9-], at most 63 (default: the OS host name,
                   lower-cased, other characters replaced by "-")
  SAMPLE_INTERVAL  time between rounds, e.g. 5s, 1m (default 10s, at least 1s)
  MQTT_URL         broker, mqtt:// mqtts:// ws:// or wss:// (default mqtt://localhost:1883)
  MQTT_USERNAME    broker login (optional)
  MQTT_PASSWORD    broker password (optional)
  MQTT_KEEPALIVE   how often an idle connection is checked; a dead link is noticed within
                   1.5 times this (default 15s)
  MQTT_CA_FILE     PEM file of the CA(s) to trust for mqtts:// and wss:// (default: the system's)
  MQTT_CERT_FILE   client certificate (PEM), with MQTT_KEY_FILE, for brokers that require one
  MQTT_KEY_FILE    its private key (PEM, not encrypted)
  QUEUE_DIR        where samples wait until the broker acknowledged them, kept across restarts
                   (default ~/.local/state/hostpulse/agent-<host>; off: in memory)
  MAX_QUEUE_BYTES  the queue's bound; beyond it the oldest samples are dropped and counted
                   (default 104857600, 100 MiB)
  MAX_QUEUE_AGE    samples older than this are dropped instead of delivered (default 7d)
  HOST_MOUNT_PREFIX  in a container with the host's / mounted there (e.g. /hostfs): report the
                   host's filesystems by their host paths, and only those
  HTTP_HOST        address of GET /healthz and GET /metrics (default 127.0.0.1)
  HTTP_PORT        its port; 0, the default, turns it off
  HTTP_ALLOWED_HOSTS  host names it answers besides IP addresses, localhost and this machine's
                   name, comma-separated (.example.org: it and every name under it; *: any)
  LOG_LEVEL        fatal, error, warn, info, debug, trace or silent (default info)
  HA_DISCOVERY     publish Home Assistant MQTT discovery configs: true or false (default true)
  HA_DISCOVERY_PREFIX  their topic prefix, one topic level (default homeassistant); the agent
                   answers Home Assistant's birth message on <prefix>/status
`;

export async function runAgent(args: readonly string[]): Promise<number> {
  const flags = parseFlags('agent', args, {
    once: { type: 'boolean' },
    print: { type: 'boolean' },
    record: { type: 'string' },
    replay: { type: 'string' },
    host: { type: 'string' },
    interval: { type: 'string' },
    'mqtt-url': { type: 'string' },
    config: { type: 'string' },
  });
  if (!flags) return EXIT_USAGE;
  if (flags['help']) {
    process.stdout.write(AGENT_HELP);
    return EXIT_OK;
  }
  const modes = ['once', 'print', 'record'].filter((m) => flags[m] !== undefined);
  if (modes.length > 1) {
    process.stderr.write(`hostpulse agent: --${modes.join(' and --')} cannot be combined\n`);
    return EXIT_USAGE;
  }
  const base = environment(flags['config']);
  if (!base) return EXIT_USAGE;
  const env = {
    ...base,
    ...(typeof flags['host'] === 'string' ? { SENSORS_HOST: flags['host'] } : {}),
    ...(typeof flags['interval'] === 'string' ? { SAMPLE_INTERVAL: flags['interval'] } : {}),
    ...(typeof flags['mqtt-url'] === 'string' ? { MQTT_URL: flags['mqtt-url'] } : {}),
  };
  const config = configOrReport('agent', loadAgentConfig(env, hostname()));
  if (!config) return EXIT_USAGE;
  // With --print and --record, stdout carries data: logs go to stderr.
  const toStderr = flags['print'] !== undefined || flags['record'] !== undefined;
  const logger = createLogger({ name: 'agent', level: config.logLevel, fd: toStderr ? 2 : 1 });
  if (config.mqtt.username !== undefined && config.mqtt.username !== config.host) {
    // The shipped broker lets a login write only under sensors/<login>/: Mosquitto then drops the connection at every sample.
    logger.warn(
      { host: config.host, username: config.mqtt.username },
      "MQTT_USERNAME differs from the host name: a broker with hostpulse's access rules (sensors/<login>/#) refuses these samples",
    );
  }

  let probe: Probe;
  try {
    const options = {
      intervalMs: flags['record'] !== undefined ? 1000 : config.intervalMs,
      inventory: flags['record'] !== undefined,
      logger: logger.child({ component: 'probe' }),
    };
    probe = typeof flags['replay'] === 'string' ? await ReplayProbe.fromFile(flags['replay']) : createSystemProbe(process.platform, options);
  } catch (error) {
    process.stderr.write(`hostpulse agent: cannot read --replay file: ${(error as Error).message}\n`);
    return EXIT_USAGE;
  }

  if (typeof flags['record'] === 'string') {
    const recording = await record(probe, process.platform);
    probe.close?.();
    await writeFile(flags['record'], `${JSON.stringify({ description: `recorded on ${config.host}`, ...recording }, null, 2)}\n`);
    process.stderr.write(`recorded ${recording.rounds.length} rounds to ${flags['record']}\n`);
    return EXIT_OK;
  }

  const sampler = createSampler(probe, config, logger);
  if (flags['print']) {
    await sampler.prime();
    await sleep(PRIME_MS);
    const ts = Date.now();
    let seq = 0;
    const readings = await sampler.round();
    probe.close?.();
    for (const m of toMessages(config.host, readings, ts, () => seq++)) {
      process.stdout.write(`${JSON.stringify({ topic: m.topic, payload: JSON.parse(m.payload) as unknown })}\n`);
    }
    return EXIT_OK;
  }
  if (flags['once']) {
    const code = await runOnce(config, sampler, logger);
    probe.close?.();
    return code;
  }
  return runForever(config, probe, logger);
}

async function runOnce(config: AgentConfig, sampler: Sampler, logger: Logger): Promise<number> {
  const mqtt = agentConnection(config, logger, true);
  const agent = new Agent({ options: config, sampler, mqtt, logger });
  try {
    await Promise.all([mqtt.waitConnected(10_000), sampler.prime().then(() => sleep(PRIME_MS))]);
  } catch (error) {
    await mqtt.close(true);
    process.stderr.write(`hostpulse agent --once: ${(error as Error).message}\n`);
    return EXIT_FAILURE;
  }
  const timeout = new AbortController();
  const result = await Promise.race([agent.publishRound(), sleep(30_000, timeout.signal).then(() => undefined)]);
  timeout.abort();
  await mqtt.close(true);
  if (!result || result.failed > 0) {
    const why = result ? `${result.failed} samples were not acknowledged (${mqtt.reason()})` : 'no acknowledgement within 30 s';
    process.stderr.write(`hostpulse agent --once: ${why}\n`);
    return EXIT_FAILURE;
  }
  logger.info({ host: config.host, published: result.published }, 'published one round');
  return EXIT_OK;
}

async function runForever(config: AgentConfig, probe: Probe, logger: Logger): Promise<number> {
  // biome-ignore lint/style/useConst: set in the try, stopped in the finally
  let agent: Agent | undefined;
  let health: HealthServer | undefined;
  try {
    if (config.http.port > 0) {
      const { metricsRoute, startHealthServer } = await import('../common/health.js');
      const metrics = metricsRoute(() => agent?.metrics() ?? '');
      health = await startHealthServer(config.http.host, config.http.port, () => agent?.health() ?? { ok: false, starting: true }, logger, metrics, {
        allowedHosts: config.http.allowedHosts,
      });
    }
  } catch (error) {
    process.stderr.write(
      `hostpulse agent: cannot serve /healthz on ${config.http.host}:${config.http.port} (HTTP_HOST, HTTP_PORT): ${(error as Error).message}\n`,
    );
    return EXIT_FAILURE;
  }
  const signal = untilSignal();
  if (config.queue.dir === undefined) logger.warn('QUEUE_DIR=off: samples wait for the broker in memory; a restart loses them');
  let service: AgentService;
  try {
    service = await startAgentService(config, probe, logger);
  } catch (error) {
    await health?.close();
    process.stderr.write(`hostpulse agent: cannot start (QUEUE_DIR): ${(error as Error).message}\n`);
    return EXIT_FAILURE;
  }
  agent = service.agent;
  logger.info({ signal: await signal }, 'stopping');
  await health?.close();
  await service.stop(5000);
  return EXIT_OK;
}
