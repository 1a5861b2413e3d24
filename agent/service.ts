/** The agent as a long-running service: sampling, publishing, availability, Home Assistant discovery. Shared by `agent` and `up`. */
import { performance } from 'node:perf_hooks';
import { Agent } from './agent.js';
import { Outbox } from './outbox.js';
import { collectors } from './collectors/index.js';
import type { AgentConfig } from './config.js';
import { Discovery } from './homeassistant/discovery.js';
import { deviceBlock, originBlock } from './homeassistant/entities.js';
import type { Probe, StaticInfo } from './probe/index.js';
import { Sampler } from './sampler.js';
import { sleep } from '../common/backoff.js';
import { DISK_QUEUE_DEFAULTS, DiskQueue } from '../common/disk-queue.js';
import { MemoryLineQueue, type LineQueue } from '../common/line-queue.js';
import type { Logger } from '../common/logger.js';
import { MqttConnection, type MessageHandler } from '../common/mqtt.js';
import { OFFLINE, availabilityTopic } from '../protocol/index.js';

/** Time to let rate-based readings (CPU usage, network rates) build up after their baseline. */
export const PRIME_MS = 1000;

export function createSampler(probe: Probe, config: Pick<AgentConfig, 'intervalMs' | 'hostMountPrefix'>, logger: Logger): Sampler {
  const context = { probe, monotonicMs: () => performance.now(), hostMountPrefix: config.hostMountPrefix };
  const list = Object.values(collectors).map((factory) => factory(context));
  return new Sampler(list, logger.child({ component: 'sampler' }), { timeoutMs: Math.min(10_000, Math.max(2000, config.intervalMs)) });
}

export function agentConnection(config: Pick<AgentConfig, 'host' | 'mqtt'>, logger: Logger, once: boolean, onMessage?: MessageHandler): MqttConnection {
  return new MqttConnection(
    {
      ...config.mqtt,
      // --once gets its own id, so that it never takes over the session of an agent running as a service
      // on a broker that keeps client ids; the shipped brokers name the session after the login, so
      // there it takes the connection from such an agent for a moment (README, Running the agent on PCs).
      clientId: once ? `hostpulse-agent-${config.host}-once-${process.pid}` : `hostpulse-agent-${config.host}`,
      clean: true,
      reconnect: !once,
      ...(once ? {} : { will: { topic: availabilityTopic(config.host), payload: OFFLINE, retain: true } }),
      ...(onMessage ? { onMessage } : {}),
    },
    logger.child({ component: 'mqtt' }),
  );
}

/** Static machine facts for the discovery device block; a probe that fails or hangs gives none. */
async function staticInfo(probe: Probe, logger: Logger): Promise<StaticInfo | undefined> {
  const timeout = new AbortController();
  try {
    return await Promise.race([probe.staticInfo(), sleep(5000, timeout.signal).then(() => undefined)]);
  } catch (error) {
    logger.warn({ err: error }, "cannot read the machine's maker and model for Home Assistant");
    return undefined;
  } finally {
    timeout.abort();
  }
}

/**
 * The agent's queue: on disk (segments an eighth of the bound, at most 16 MiB, so that the size
 * bound drops little at a time), or in memory with QUEUE_DIR=off. Throws when another process
 * uses the directory. Samples are written once per round, so the queue is fsync'ed once per round
 * too (every SAMPLE_INTERVAL, at least every second) rather than every second: an idle agent is not
 * woken ten times per round for nothing, and a power loss costs at most the last round, as before.
 */
export function openAgentQueue(queue: AgentConfig['queue'], intervalMs = DISK_QUEUE_DEFAULTS.fsyncMs): LineQueue {
  if (queue.dir === undefined) return new MemoryLineQueue(queue.maxBytes);
  const segmentBytes = Math.min(DISK_QUEUE_DEFAULTS.segmentBytes, Math.floor(queue.maxBytes / 8));
  const fsyncMs = Math.max(DISK_QUEUE_DEFAULTS.fsyncMs, intervalMs);
  return new DiskQueue(queue.dir, { ...DISK_QUEUE_DEFAULTS, segmentBytes, maxBytes: queue.maxBytes, fsyncMs });
}

export interface AgentService {
  readonly agent: Agent;
  stop(timeoutMs: number): Promise<void>;
}

/** Connects, announces (Home Assistant discovery when enabled), primes the rate readings and starts the rounds. */
export async function startAgentService(config: AgentConfig, probe: Probe, logger: Logger): Promise<AgentService> {
  // Opened first: a directory in use by another agent stops the start here.
  const queue = openAgentQueue(config.queue, config.intervalMs);
  if (queue instanceof DiskQueue) for (const note of queue.notes) logger.warn({ dir: config.queue.dir }, `queue repaired at start: ${note}`);
  if (queue.length > 0) logger.info({ samples: queue.length, dir: config.queue.dir }, 'delivering the samples queued by the last run');
  const sampler = createSampler(probe, config, logger);
  let discovery: Discovery | undefined;
  const mqtt = agentConnection(config, logger, false, (topic, payload) => discovery?.handleMessage(topic, payload));
  if (config.haDiscovery.enabled) {
    const device = deviceBlock(config.host, await staticInfo(probe, logger));
    const context = { host: config.host, prefix: config.haDiscovery.prefix, intervalMs: config.intervalMs, device, origin: originBlock() };
    discovery = new Discovery({ ctx: context, mqtt, logger: logger.child({ component: 'discovery' }) });
    discovery.start();
  }
  const d = discovery;
  const hooks = d ? { beforeSend: (metrics: readonly string[]) => d.observe(metrics), onResume: () => d.announce('resumed from sleep') } : {};
  const outbox = new Outbox({
    queue,
    publisher: mqtt,
    logger: logger.child({ component: 'outbox' }),
    options: { window: 500, maxAgeMs: config.queue.maxAgeMs },
  });
  const agent = new Agent({ options: config, sampler, mqtt, logger, hooks, outbox });
  logger.info({ host: config.host, intervalMs: config.intervalMs }, 'agent starting');
  const stopping = new AbortController();
  await sampler.prime();
  await sleep(PRIME_MS, stopping.signal);
  if (!stopping.signal.aborted) agent.start();
  return {
    agent,
    stop: async (timeoutMs) => {
      stopping.abort();
      discovery?.stop();
      await agent.stop(timeoutMs);
      probe.close?.();
    },
  };
}
