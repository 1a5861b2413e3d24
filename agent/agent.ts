/**
 * The agent: every interval, one round of readings, each published with QoS 1 to
 * `sensors/<host>/<metric>` as `{"value", "ts", "unit", "seq"}`. Availability is retained
 * `online` on every connection and `offline` by the last will or a clean stop.
 */
import type { Logger } from '../common/logger.js';
import type { MqttConnection } from '../common/mqtt.js';
import { ONLINE, OFFLINE, availabilityTopic, encodePayload, resolveMetric, sampleTopic } from '../protocol/index.js';
import type { Reading } from './collector.js';
import type { Sampler } from './sampler.js';

export interface AgentOptions {
  readonly host: string;
  readonly intervalMs: number;
  readonly maxPending: number;
}

export interface Message {
  readonly topic: string;
  readonly payload: string;
}

export interface AgentStats {
  rounds: number;
  published: number;
  failed: number;
  dropped: number;
  pending: number;
}

/** Turns one round of readings into the messages to publish. */
export function toMessages(host: string, readings: readonly Reading[], ts: number, nextSeq: () => number): Message[] {
  return readings.map((r) => {
    const unit = resolveMetric(r.metric)?.spec.unit;
    const payload = encodePayload(unit ? { value: r.value, ts, unit, seq: nextSeq() } : { value: r.value, ts, seq: nextSeq() });
    return { topic: sampleTopic(host, r.metric), payload };
  });
}

export class Agent {
  readonly stats: AgentStats = { rounds: 0, published: 0, failed: 0, dropped: 0, pending: 0 };
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private inFlight = new Set<Promise<void>>();

  constructor(
    private readonly options: AgentOptions,
    private readonly sampler: Sampler,
    private readonly mqtt: MqttConnection,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Samples one round and publishes it; resolves when the broker has acknowledged every sample. */
  async publishRound(): Promise<{ published: number; failed: number }> {
    const ts = this.now();
    const readings = await this.sampler.round();
    this.stats.rounds++;
    const messages = toMessages(this.options.host, readings, ts, () => this.seq++);
    const results = await Promise.allSettled(messages.map((m) => this.send(m)));
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed[0]?.status === 'rejected') {
      this.logger.warn({ failed: failed.length, err: failed[0].reason }, 'some samples were not acknowledged');
    }
    return { published: messages.length - failed.length - this.droppedIn(results), failed: failed.length };
  }

  private droppedIn(results: PromiseSettledResult<boolean>[]): number {
    return results.filter((r) => r.status === 'fulfilled' && !r.value).length;
  }

  /** Publishes one message; false when dropped because too many await acknowledgement. */
  private async send(message: Message): Promise<boolean> {
    if (this.stats.pending >= this.options.maxPending) {
      this.stats.dropped++;
      return false;
    }
    this.stats.pending++;
    const sent = this.mqtt.publish(message.topic, message.payload, { qos: 1 });
    this.inFlight.add(sent);
    try {
      await sent;
      this.stats.published++;
      return true;
    } catch (error) {
      this.stats.failed++;
      throw error;
    } finally {
      this.stats.pending--;
      this.inFlight.delete(sent);
    }
  }

  /** Runs rounds on a fixed schedule until `stop`. Rounds that overrun their slot skip the missed ticks. */
  start(): void {
    const announce = (): void => {
      this.mqtt.publish(availabilityTopic(this.options.host), ONLINE, { qos: 1, retain: true }).catch((error: unknown) => {
        this.logger.warn({ err: error }, 'could not publish availability');
      });
    };
    this.mqtt.onConnect(announce);
    if (this.mqtt.connected) announce();
    const startedAt = this.now();
    const schedule = (): void => {
      if (this.stopped) return;
      const elapsed = this.now() - startedAt;
      const wait = this.options.intervalMs - (elapsed % this.options.intervalMs);
      this.timer = setTimeout(tick, wait);
    };
    const tick = (): void => {
      this.publishRound()
        .then(({ published }) => this.logger.debug({ published, pending: this.stats.pending }, 'round published'))
        .catch((error: unknown) => this.logger.error({ err: error }, 'round failed'))
        .finally(schedule);
    };
    tick();
  }

  /** Stops sampling, waits (bounded) for outstanding acknowledgements, marks the host offline. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const deadline = new Promise((resolve) => setTimeout(resolve, timeoutMs).unref());
    await Promise.race([Promise.allSettled([...this.inFlight]), deadline]);
    if (this.mqtt.connected) {
      await Promise.race([this.mqtt.publish(availabilityTopic(this.options.host), OFFLINE, { qos: 1, retain: true }).catch(() => undefined), deadline]);
    }
    await this.mqtt.close(!this.mqtt.connected);
    this.logger.info({ ...this.stats }, 'agent stopped');
  }
}
