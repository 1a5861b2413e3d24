/**
 * Home Assistant MQTT discovery for the agent: keeps the retained configs under
 * `<prefix>/+/<host>/+/config` in step with the metrics this PC publishes.
 *
 * - On every connection it subscribes to its own configs and to `<prefix>/status`, collects the
 *   retained configs for `settleMs`, then publishes only those that differ (parsed JSON compared),
 *   so a restart with the same machine publishes nothing. Configs the broker lost are published again.
 * - A metric first seen in a round gets its config before that round's samples are sent.
 * - A metric missing for `vanishRounds` rounds (a disk or GPU that is gone) gets an empty retained
 *   config, which removes the entity; stale configs found at start go the same way.
 * - Home Assistant's birth message (`online` on `<prefix>/status`) is answered after a random delay
 *   with every config and the host's availability; so is a resume from sleep (`announce`).
 */
import { sleep } from '../../common/backoff.js';
import type { Logger } from '../../common/logger.js';
import type { MqttConnection } from '../../common/mqtt.js';
import { ONLINE, availabilityTopic } from '../../protocol/index.js';
import { configSubscription, metricEntity, objectIdOf, onlineEntity, sameJson, statusTopic, type DiscoveryContext, type Entity } from './entities.js';

export interface DiscoveryOptions {
  /** How long retained configs are collected after subscribing. */
  readonly settleMs: number;
  /** Longest random delay before answering Home Assistant's birth message. */
  readonly birthDelayMaxMs: number;
  /** Rounds a metric may be missing before its entity is removed. */
  readonly vanishRounds: number;
}

export const DISCOVERY_DEFAULTS: DiscoveryOptions = { settleMs: 1500, birthDelayMaxMs: 5000, vanishRounds: 3 };

/** An entity and its config as published (JSON). */
interface Built {
  readonly entity: Entity;
  readonly json: string;
}
const built = (entity: Entity): Built => ({ entity, json: JSON.stringify(entity.config) });

/** What discovery works with. */
export interface DiscoveryDeps {
  readonly ctx: DiscoveryContext;
  readonly mqtt: MqttConnection;
  readonly logger: Logger;
  /** Default DISCOVERY_DEFAULTS. */
  readonly options?: DiscoveryOptions;
  /** For the birth delay's jitter (default Math.random). */
  readonly random?: () => number;
}

export class Discovery {
  /** What the broker holds under our config topics, as far as we know: topic → payload. */
  private readonly retained = new Map<string, string>();
  /** Metric → the round it was last seen in. */
  private readonly lastSeen = new Map<string, number>();
  private rounds = 0;
  /** Something that decides the configs changed since the last reconcile (a metric came or went, the broker's copy changed). */
  private dirty = true;
  /** Each metric's config and its JSON, built once (undefined: a metric Home Assistant is not told of). */
  private readonly entities = new Map<string, Built | undefined>();
  private ready = false;
  private generation = 0;
  private syncing: Promise<void> | undefined;
  private birthTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  private readonly ctx: DiscoveryContext;
  private readonly mqtt: MqttConnection;
  private readonly logger: Logger;
  private readonly options: DiscoveryOptions;
  private readonly random: () => number;

  constructor(deps: DiscoveryDeps) {
    ({ ctx: this.ctx, mqtt: this.mqtt, logger: this.logger } = deps);
    this.options = deps.options ?? DISCOVERY_DEFAULTS;
    this.random = deps.random ?? Math.random;
  }

  /** Syncs on every connection (the first and each reconnect). */
  start(): void {
    this.mqtt.onConnect(() => void this.sync());
    if (this.mqtt.connected) void this.sync();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.birthTimer);
  }

  /** The connection's message handler: Home Assistant's status and our own retained configs. */
  handleMessage(topic: string, payload: Buffer): void {
    if (topic === statusTopic(this.ctx.prefix)) {
      if (payload.toString().trim() === ONLINE) this.birth();
      return;
    }
    if (objectIdOf(this.ctx.prefix, this.ctx.host, topic) === undefined) return;
    const text = payload.length === 0 ? undefined : payload.toString();
    if (this.retained.get(topic) === text) return;
    if (text === undefined) this.retained.delete(topic);
    else this.retained.set(topic, text);
    this.dirty = true;
  }

  /**
   * Called with the metrics of each round before its samples are sent: publishes the configs
   * of metrics seen for the first time (waiting, bounded, for a sync in progress) and removes
   * those of metrics gone for `vanishRounds` rounds.
   */
  async observe(metrics: readonly string[]): Promise<void> {
    this.rounds++;
    for (const m of metrics) {
      if (!this.lastSeen.has(m)) this.dirty = true;
      this.lastSeen.set(m, this.rounds);
    }
    // A metric missing for vanishRounds rounds now; the first round that may clear stale configs.
    for (const round of this.lastSeen.values()) if (this.rounds - round === this.options.vanishRounds) this.dirty = true;
    if (this.rounds === this.options.vanishRounds) this.dirty = true;
    if (!this.ready && this.syncing && this.mqtt.connected) {
      const timeout = new AbortController();
      await Promise.race([this.syncing, sleep(this.options.settleMs + 5000, timeout.signal)]);
      timeout.abort();
    }
    this.reconcile(false);
  }

  /** Publishes every config and the host's availability again (birth message, resume from sleep). */
  announce(reason: string): void {
    if (this.stopped || !this.ready) return;
    const { published } = this.reconcile(true);
    this.mqtt.publish(availabilityTopic(this.ctx.host), ONLINE, { qos: 1, retain: true }).catch((error: unknown) => {
      this.logger.warn({ err: error }, 'could not publish availability');
    });
    this.logger.info({ reason, published }, 'discovery configs announced');
  }

  private birth(): void {
    // A birth message retained on the broker arrives while we sync: the sync covers it.
    if (!this.ready || this.stopped) return;
    clearTimeout(this.birthTimer);
    const delay = Math.round(this.random() * this.options.birthDelayMaxMs);
    this.birthTimer = setTimeout(() => this.announce('home assistant online'), delay);
  }

  private async sync(): Promise<void> {
    const generation = ++this.generation;
    this.ready = false;
    this.retained.clear();
    this.dirty = true;
    const run = async (): Promise<void> => {
      try {
        await Promise.all([this.mqtt.subscribe(configSubscription(this.ctx.prefix, this.ctx.host), 1), this.mqtt.subscribe(statusTopic(this.ctx.prefix), 1)]);
      } catch (error) {
        this.logger.warn({ err: error, prefix: this.ctx.prefix }, 'cannot read discovery topics; publishing every config');
      }
      await sleep(this.options.settleMs);
      if (generation !== this.generation || this.stopped) return;
      this.ready = true;
      const result = this.reconcile(false);
      this.logger.info({ prefix: this.ctx.prefix, ...result }, 'discovery configs in step');
    };
    this.syncing = run();
    await this.syncing;
  }

  /** The entities this PC should have now, by topic: the online sensor and every metric seen within `vanishRounds` rounds. */
  private desired(): Map<string, Built> {
    const entities = new Map<string, Built>();
    const online = built(onlineEntity(this.ctx));
    entities.set(online.entity.topic, online);
    for (const [metric, round] of this.lastSeen) {
      if (this.rounds - round >= this.options.vanishRounds) continue;
      if (!this.entities.has(metric)) {
        const entity = metricEntity(this.ctx, metric);
        this.entities.set(metric, entity && built(entity));
      }
      const entity = this.entities.get(metric);
      if (entity) entities.set(entity.entity.topic, entity);
    }
    return entities;
  }

  /**
   * Publishes configs that differ from the broker's (all with `force`), clears vanished ones. A
   * round that changed nothing (no metric came or went, the broker's copies are as we left them)
   * costs nothing.
   */
  private reconcile(force: boolean): { published: number; cleared: number; unchanged: number } {
    const result = { published: 0, cleared: 0, unchanged: 0 };
    if (!this.ready || this.stopped || (!force && !this.dirty)) return result;
    this.dirty = false;
    const desired = this.desired();
    for (const [topic, { entity, json }] of desired) {
      const held = this.retained.get(topic);
      if (!force && held !== undefined && (held === json || sameJson(parse(held), entity.config))) {
        result.unchanged++;
        continue;
      }
      this.publish(topic, json);
      result.published++;
    }
    // Only once every collector had its chances to report, so that a slow first round removes nothing.
    if (this.rounds >= this.options.vanishRounds) {
      for (const topic of [...this.retained.keys()]) {
        if (desired.has(topic)) continue;
        this.publish(topic, '');
        result.cleared++;
      }
    }
    if (result.cleared > 0) this.logger.info({ cleared: result.cleared }, 'removed discovery configs of metrics this PC no longer has');
    return result;
  }

  private publish(topic: string, payload: string): void {
    if (payload === '') this.retained.delete(topic);
    else this.retained.set(topic, payload);
    this.mqtt.publish(topic, payload, { qos: 1, retain: true }).catch((error: unknown) => {
      this.logger.warn({ err: error, topic }, 'could not publish a discovery config');
    });
  }
}

function parse(payload: string): unknown {
  try {
    return JSON.parse(payload) as unknown;
  } catch {
    return undefined;
  }
}
