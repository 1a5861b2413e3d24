/** The agent as a long-running service: sampling, publishing, availability. Shared by `agent` and `up`. */
import { performance } from 'node:perf_hooks';
import { Agent } from '../agent/agent.js';
import { collectors } from '../agent/collectors/index.js';
import type { AgentConfig } from '../agent/config.js';
import type { Probe } from '../agent/probe.js';
import { Sampler } from '../agent/sampler.js';
import { createSystemProbe } from '../agent/si-probe.js';
import { sleep } from '../common/backoff.js';
import type { Logger } from '../common/logger.js';
import { MqttConnection } from '../common/mqtt.js';
import { OFFLINE, availabilityTopic } from '../protocol/index.js';

/** Time to let rate-based readings (CPU usage, network rates) build up after their baseline. */
export const PRIME_MS = 1000;

export function createSampler(probe: Probe, config: Pick<AgentConfig, 'intervalMs' | 'hostMountPrefix'>, logger: Logger): Sampler {
  const context = { probe, monotonicMs: () => performance.now(), hostMountPrefix: config.hostMountPrefix };
  const list = Object.values(collectors).map((factory) => factory(context));
  return new Sampler(list, logger.child({ component: 'sampler' }), { timeoutMs: Math.min(10_000, Math.max(2000, config.intervalMs)) });
}

export function agentConnection(config: Pick<AgentConfig, 'host' | 'mqtt'>, logger: Logger, once: boolean): MqttConnection {
  return new MqttConnection(
    {
      ...config.mqtt,
      // --once gets its own id, so that it never takes over the session of an agent running as a service.
      clientId: once ? `hostpulse-agent-${config.host}-once-${process.pid}` : `hostpulse-agent-${config.host}`,
      clean: true,
      reconnect: !once,
      ...(once ? {} : { will: { topic: availabilityTopic(config.host), payload: OFFLINE, retain: true } }),
    },
    logger.child({ component: 'mqtt' }),
  );
}

export interface AgentService {
  readonly agent: Agent;
  stop(timeoutMs: number): Promise<void>;
}

export async function startAgentService(config: AgentConfig, logger: Logger, probe: Probe = createSystemProbe()): Promise<AgentService> {
  const sampler = createSampler(probe, config, logger);
  const mqtt = agentConnection(config, logger, false);
  const agent = new Agent(config, sampler, mqtt, logger);
  logger.info({ host: config.host, intervalMs: config.intervalMs }, 'agent starting');
  const stopped = new AbortController();
  await sampler.prime();
  await sleep(PRIME_MS, stopped.signal);
  agent.start();
  return {
    agent,
    stop: async (timeoutMs) => {
      stopped.abort();
      await agent.stop(timeoutMs);
    },
  };
}
