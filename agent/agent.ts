/**
 * The agent: every interval, one round of readings, each published with QoS 1 to
 * `sensors/<host>/<metric>` as `{"value", "ts", "unit", "seq"}`. Availability is retained
 * `online` on every connection and `offline` by the last will or a clean stop.
 */
import type { Logger } from '../common/logger.js';
import type { MqttConnection } from '../common/mqtt.js';
import { ThrottledLog } from '../common/throttle.js';
import { ONLINE, OFFLINE, availabilityTopic, encodePayload, resolveMetric, sampleTopic } from '../protocol/index.js';
import type { Reading } from './collector.js';
import type { Sampler } from './sampler.js';

export interface AgentOptions {
  readonly host: string;
  readonly intervalMs: number;
  readonly maxPending: number;
}

/** Optional extensions of the loop (Home Assistant discovery); none is needed for --once. */
export interface AgentHooks {
  /** Called with each round's metric names before its samples are handed to the connection. */
  readonly beforeSend?: (metrics: readonly string[]) => Promise<void>;
  /** Called when a round comes far later than scheduled: the PC slept (wall clock jumped). */
  readonly onResume?: (lateMs: number) => void;
}

/** A round this much later than scheduled (beyond two intervals) means the machine was asleep. */
export const RESUME_SLACK_MS = 30_000;

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
  private currentRound: Promise<void> | undefined;
  private readonly failures: ThrottledLog;

  constructor(
    private readonly options: AgentOptions,
    private readonly sampler: Sampler,
    private readonly mqtt: MqttConnection,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
    private readonly hooks: AgentHooks = {},
  ) {
    this.failures = new ThrottledLog(logger, 60_000);
  }

  /**
   * Samples one round and hands every sample to the broker connection. Resolves once sampled,
   * with one promise per sample that settles on the broker's acknowledgement (true), a drop
   * because MAX_PENDING samples already wait (false), or a failure (rejected).
   */
  async sampleRound(): Promise<Promise<boolean>[]> {
    const ts = this.now();
    const readings = await this.sampler.round();
    this.stats.rounds++;
    const messages = toMessages(this.options.host, readings, ts, () => this.seq++);
    if (this.hooks.beforeSend) {
      try {
        await this.hooks.beforeSend(readings.map((r) => r.metric));
      } catch (error) {
        this.logger.warn({ err: error }, 'round hook failed');
      }
    }
    return messages.map((m) => this.send(m));
  }

  /** One round, resolved when the broker has acknowledged (or refused) every sample: for --once. */
  async publishRound(): Promise<{ published: number; failed: number; dropped: number }> {
    const results = await Promise.allSettled(await this.sampleRound());
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed[0]?.status === 'rejected') {
      this.logger.warn({ failed: failed.length, err: failed[0].reason }, 'some samples were not acknowledged');
    }
    const dropped = results.filter((r) => r.status === 'fulfilled' && !r.value).length;
    return { published: results.length - failed.length - dropped, failed: failed.length, dropped };
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

  /** Healthy while connected to the broker and not dropping samples. */
  health(): { ok: boolean; broker: boolean; pending: number; dropped: number; rounds: number } {
    const broker = this.mqtt.connected;
    return { ok: broker && this.stats.pending < this.options.maxPending, broker, pending: this.stats.pending, dropped: this.stats.dropped, rounds: this.stats.rounds };
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
    let dueAt: number | undefined;
    const schedule = (): void => {
      if (this.stopped) return;
      const elapsed = this.now() - startedAt;
      const wait = this.options.intervalMs - (elapsed % this.options.intervalMs);
      dueAt = this.now() + wait;
      this.timer = setTimeout(tick, wait);
    };
    // The next round does not wait for this one's acknowledgements: while the broker is away,
    // sampling goes on and the samples wait in the connection's queue (up to MAX_PENDING).
    const tick = (): void => {
      // Timers run on a clock that stops while the PC sleeps; the wall clock does not.
      const lateMs = dueAt === undefined ? 0 : this.now() - dueAt;
      if (lateMs > 2 * this.options.intervalMs + RESUME_SLACK_MS) {
        this.logger.info({ lateMs }, 'round far behind schedule: resumed from sleep');
        this.hooks.onResume?.(lateMs);
      }
      this.currentRound = this.sampleRound()
        .then((sends) => {
          this.logger.debug({ samples: sends.length, pending: this.stats.pending }, 'round sampled');
          for (const sent of sends) sent.catch((error: unknown) => this.failures.warn('publish', { err: error }, 'a sample was not acknowledged'));
        })
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
    // A round already sampled is handed over before the wait for acknowledgements.
    await Promise.race([this.currentRound, deadline]);
    await Promise.race([Promise.allSettled([...this.inFlight]), deadline]);
    if (this.mqtt.connected) {
      await Promise.race([this.mqtt.publish(availabilityTopic(this.options.host), OFFLINE, { qos: 1, retain: true }).catch(() => undefined), deadline]);
    }
    await this.mqtt.close(!this.mqtt.connected);
    this.logger.info({ ...this.stats }, 'agent stopped');
  }
}
