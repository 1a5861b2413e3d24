/**
 * The agent: every interval, one round of readings, each published with QoS 1 to
 * `sensors/<host>/<metric>` as `{"value", "ts", "unit", "seq"}`, through the outbox (a queue on
 * disk that samples leave once the broker acknowledged them). Availability is retained `online`
 * on every connection and `offline` by the last will or a clean stop. Each round also reports the
 * agent's own backlog and drops (`agent_queue`, `agent_dropped`).
 */
import type { Logger } from '../common/logger.js';
import type { MqttConnection } from '../common/mqtt.js';
import { MemoryLineQueue } from '../common/line-queue.js';
import { PrometheusText } from '../common/prometheus.js';
import { ONLINE, OFFLINE, availabilityTopic, encodePayload, resolveMetric, sampleTopic } from '../protocol/index.js';
import type { Reading } from './collector.js';
import { Outbox, type Message } from './outbox.js';
import type { Sampler } from './sampler.js';

export type { Message } from './outbox.js';

export interface AgentOptions {
  readonly host: string;
  readonly intervalMs: number;
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

/** Bound of the in-memory outbox an Agent makes when it is given none. */
const MEMORY_QUEUE_BYTES = 64 * 1024 * 1024;

/** What a metric's samples carry besides the value, looked up in the catalog once per metric. */
interface MetricInfo {
  readonly topic: string;
  readonly unit: string | undefined;
}

/** Turns one round of readings into the messages to publish; `known` keeps each metric's topic and unit from round to round. */
export function toMessages(host: string, readings: readonly Reading[], ts: number, nextSeq: () => number, known = new Map<string, MetricInfo>()): Message[] {
  return readings.map((r) => {
    let info = known.get(r.metric);
    if (!info) {
      info = { topic: sampleTopic(host, r.metric), unit: resolveMetric(r.metric)?.spec.unit || undefined };
      known.set(r.metric, info);
    }
    const { unit } = info;
    const payload = encodePayload(unit ? { value: r.value, ts, unit, seq: nextSeq() } : { value: r.value, ts, seq: nextSeq() });
    return { topic: info.topic, payload };
  });
}

/** What an agent works with. */
export interface AgentDeps {
  readonly options: AgentOptions;
  readonly sampler: Sampler;
  readonly mqtt: MqttConnection;
  readonly logger: Logger;
  /** The wall clock (default Date.now). */
  readonly now?: () => number;
  readonly hooks?: AgentHooks;
  /** Where samples wait for the broker (default: in memory). */
  readonly outbox?: Outbox;
}

export class Agent {
  rounds = 0;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private currentRound: Promise<void> | undefined;
  private readonly known = new Map<string, MetricInfo>();
  readonly outbox: Outbox;

  private readonly options: AgentOptions;
  private readonly sampler: Sampler;
  private readonly mqtt: MqttConnection;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly hooks: AgentHooks;

  constructor(deps: AgentDeps) {
    ({ options: this.options, sampler: this.sampler, mqtt: this.mqtt, logger: this.logger } = deps);
    this.now = deps.now ?? Date.now;
    this.hooks = deps.hooks ?? {};
    this.outbox =
      deps.outbox ?? new Outbox({ queue: new MemoryLineQueue(MEMORY_QUEUE_BYTES), publisher: deps.mqtt, logger: deps.logger.child({ component: 'outbox' }) });
  }

  /** Samples one round (with the agent's own backlog and drops); resolves with its messages, stamped `ts`. */
  async sampleRound(): Promise<{ ts: number; messages: Message[] }> {
    const ts = this.now();
    const readings: Reading[] = [
      ...(await this.sampler.round()),
      { metric: 'agent_queue', value: this.outbox.length },
      { metric: 'agent_dropped', value: this.outbox.dropped },
    ];
    this.rounds++;
    const messages = toMessages(this.options.host, readings, ts, () => this.seq++, this.known);
    if (this.hooks.beforeSend) {
      try {
        await this.hooks.beforeSend(readings.map((r) => r.metric));
      } catch (error) {
        this.logger.warn({ err: error }, 'round hook failed');
      }
    }
    return { ts, messages };
  }

  /** One round published directly, resolved when the broker has acknowledged (or refused) every sample: for --once. */
  async publishRound(): Promise<{ published: number; failed: number }> {
    const { messages } = await this.sampleRound();
    const results = await Promise.allSettled(messages.map((m) => this.mqtt.publish(m.topic, m.payload, { qos: 1 })));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed[0]) this.logger.warn({ failed: failed.length, err: failed[0].reason }, 'some samples were not acknowledged');
    return { published: results.length - failed.length, failed: failed.length };
  }

  /** Healthy while connected to the broker. */
  health(): { ok: boolean; broker: boolean; queued: number; dropped: number; published: number; rounds: number } {
    const broker = this.mqtt.connected;
    return { ok: broker, broker, queued: this.outbox.length, dropped: this.outbox.dropped, published: this.outbox.counts.published, rounds: this.rounds };
  }

  /** The agent's counters in Prometheus' text format, for GET /metrics. */
  metrics(): string {
    return new PrometheusText()
      .counter('hostpulse_agent_rounds_total', 'Rounds sampled.', this.rounds)
      .counter('hostpulse_agent_published_total', 'Samples the broker acknowledged.', this.outbox.counts.published)
      .counter('hostpulse_agent_dropped_total', 'Samples dropped, by reason.', this.outbox.droppedByReason())
      .counter('hostpulse_agent_publish_retries_total', 'Windows of samples published again after a failure.', this.outbox.counts.retries)
      .gauge('hostpulse_agent_queue_samples', 'Samples waiting for the broker.', this.outbox.length)
      .gauge('hostpulse_agent_queue_bytes', 'Bytes of the queue (on disk unless QUEUE_DIR=off).', this.outbox.bytes)
      .gauge('hostpulse_agent_broker_connected', '1 while connected to the broker.', this.mqtt.connected ? 1 : 0)
      .toString();
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
    this.outbox.start();
    const startedAt = this.now();
    let dueAt: number | undefined;
    const schedule = (): void => {
      if (this.stopped) return;
      const elapsed = this.now() - startedAt;
      const wait = this.options.intervalMs - (elapsed % this.options.intervalMs);
      dueAt = this.now() + wait;
      this.timer = setTimeout(tick, wait);
    };
    // Rounds do not wait for acknowledgements: while the broker is away, sampling goes on and the
    // samples wait in the outbox.
    const tick = (): void => {
      // Timers run on a clock that stops while the PC sleeps; the wall clock does not.
      const lateMs = dueAt === undefined ? 0 : this.now() - dueAt;
      if (lateMs > 2 * this.options.intervalMs + RESUME_SLACK_MS) {
        this.logger.info({ lateMs }, 'round far behind schedule: resumed from sleep');
        this.hooks.onResume?.(lateMs);
      }
      this.currentRound = this.sampleRound()
        .then(({ ts, messages }) => {
          this.outbox.put(messages, ts);
          this.logger.debug({ ts, samples: messages.length, queued: this.outbox.length }, 'round sampled');
        })
        .catch((error: unknown) => this.logger.error({ err: error }, 'round failed'))
        .finally(schedule);
    };
    tick();
  }

  /**
   * Stops sampling; while connected, waits (bounded) for the outbox to empty; marks the host
   * offline. What the broker has not acknowledged stays in the queue for the next start.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const deadline = Date.now() + timeoutMs;
    const left = (): number => Math.max(0, deadline - Date.now());
    const timeout = new Promise((resolve) => setTimeout(resolve, timeoutMs).unref());
    // A round already sampled is queued before the wait.
    await Promise.race([this.currentRound, timeout]);
    if (this.mqtt.connected) await this.outbox.drained(left());
    await this.outbox.stop(left());
    if (this.mqtt.connected) {
      await Promise.race([this.mqtt.publish(availabilityTopic(this.options.host), OFFLINE, { qos: 1, retain: true }).catch(() => undefined), timeout]);
    }
    await this.mqtt.close(!this.mqtt.connected);
    this.logger.info(
      { rounds: this.rounds, published: this.outbox.counts.published, queued: this.outbox.length, dropped: this.outbox.dropped, durable: this.outbox.durable },
      'agent stopped',
    );
  }
}
