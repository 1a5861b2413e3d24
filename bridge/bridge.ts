/**
 * The bridge: subscribes to every agent's topics with a persistent session (fixed client id,
 * QoS 1), validates each message with the contract, maps samples to points through the catalog
 * and hands them to the writer.
 *
 * A message is acknowledged to the broker once its point is in the writer's queue: on disk by
 * default (common/disk-queue.ts; the points of a burst of messages are written together before
 * the burst's acknowledgements leave), so a bridge killed with -9 loses nothing; with QUEUE_DIR=off in
 * memory, losing what was queued and not yet written (graceful stops flush first). Gaps in the
 * agents' sequence numbers are counted as `missing`.
 */
import { backoffDelay, sleep } from '../common/backoff.js';
import type { Logger } from '../common/logger.js';
import { MqttConnection, type MqttSettings } from '../common/mqtt.js';
import { ThrottledLog } from '../common/throttle.js';
import { SUBSCRIPTION, decodeMessage, sharedSubscription, type RejectReason } from '../protocol/index.js';
import { SequenceGaps } from './gaps.js';
import { Limits, type LimitOptions } from './limits.js';
import type { LiveState } from './live/state.js';
import { Histogram, prometheusText } from './metrics.js';
import { availabilityLine, statsLine, toLine } from './points.js';
import { SinkError, type Sink } from './sink.js';
import { createStats, totalRejected, type BridgeStats } from './stats.js';
import { Writer, type PointQueue } from './writer.js';

export interface BridgeOptions {
  readonly mqtt: Omit<MqttSettings, 'clean' | 'reconnect' | 'onMessage'>;
  readonly batchSize: number;
  readonly flushIntervalMs: number;
  readonly maxBuffered: number;
  readonly maxPayloadBytes: number;
  readonly maxFutureMs: number;
  readonly statsIntervalMs: number;
  readonly limits: LimitOptions;
  /** Share the stream with the other bridges of this group (MQTT shared subscription). */
  readonly shareGroup?: string | undefined;
}

const CHECK_BACKOFF = { baseMs: 1000, maxMs: 30_000 } as const;

/** What a bridge works with. */
export interface BridgeDeps {
  readonly options: BridgeOptions;
  /** Undefined (`hostpulse up` with no InfluxDB configured): nothing is stored, samples only feed the live view. */
  readonly sink: Sink | undefined;
  readonly logger: Logger;
  readonly live?: LiveState | undefined;
  /** Where points wait for the sink (default: in memory). */
  readonly queue?: PointQueue | undefined;
  /** The wall clock (default Date.now). */
  readonly now?: () => number;
}

export class Bridge {
  readonly stats: BridgeStats = createStats();
  private readonly writer: Writer | undefined;
  private readonly rejections: ThrottledLog;
  private readonly limits: Limits;
  /** Off with a shared subscription: each bridge sees only part of every host's numbers. */
  private readonly gaps: SequenceGaps | undefined;
  private readonly subscription: string;
  private mqtt: MqttConnection | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  /** Counts the holes in agents' numbers that stayed open (bridge/gaps.ts). */
  private gapTimer: NodeJS.Timeout | undefined;
  private readonly stopping = new AbortController();

  private readonly options: BridgeOptions;
  private readonly sink: Sink | undefined;
  private readonly logger: Logger;
  private readonly live: LiveState | undefined;
  private readonly now: () => number;

  constructor(deps: BridgeDeps) {
    ({ options: this.options, sink: this.sink, logger: this.logger, live: this.live } = deps);
    this.now = deps.now ?? Date.now;
    const { options, sink, logger, now } = this;
    this.writer = sink ? new Writer(sink, options, this.stats, logger.child({ component: 'writer' }), deps.queue) : undefined;
    this.rejections = new ThrottledLog(logger, 60_000);
    this.limits = new Limits(options.limits, now);
    this.gaps = options.shareGroup === undefined ? new SequenceGaps({ maxHosts: options.limits.maxHosts, maxRate: options.limits.hostRate }) : undefined;
    this.subscription = options.shareGroup === undefined ? SUBSCRIPTION : sharedSubscription(options.shareGroup);
  }

  /**
   * Waits until the database answers (retrying with backoff while it is unreachable; a missing
   * database or bucket, or refused credentials, reject), then starts intake.
   * Resolves false if stopped before the database answered.
   */
  async start(): Promise<boolean> {
    if (this.writer) {
      if (!(await this.checkSink()) || this.stopping.signal.aborted) return false;
      this.writer.start();
    } else {
      this.logger.warn('no InfluxDB configured: history is NOT being stored (set INFLUX_URL and its settings to store it)');
    }
    const mqtt = new MqttConnection(
      {
        ...this.options.mqtt,
        clean: false,
        reconnect: true,
        onMessage: (topic, payload) => this.handle(topic, payload),
        beforeAck: () => this.writer?.flush(),
      },
      this.logger.child({ component: 'mqtt' }),
    );
    mqtt.onConnect((sessionPresent) => {
      if (sessionPresent) return;
      mqtt.subscribe(this.subscription, 1).then(
        () => this.logger.info({ topic: this.subscription }, 'subscribed'),
        (error: unknown) => this.logger.error({ err: error, topic: this.subscription }, 'subscription failed'),
      );
    });
    this.mqtt = mqtt;
    this.statsTimer = setInterval(() => {
      this.logStats('stats');
      // Stored like any point; never waits, so a full queue cannot stall the timer.
      void this.writer?.push(statsLine(this.options.mqtt.clientId, this.stats, this.now()));
    }, this.options.statsIntervalMs);
    if (this.gaps) {
      const gaps = this.gaps;
      this.gapTimer = setInterval(() => {
        for (const [host, missing] of gaps.sweep(this.now())) this.reportMissing(host, missing);
      }, 1000);
    }
    return true;
  }

  /**
   * Ready: the database answered at start, the broker is connected, the last write (if any failed
   * since) succeeded, and the writer can make progress (its queue writable and readable, not stalled).
   */
  health(): {
    ok: boolean;
    broker: boolean;
    database: boolean | 'not configured';
    buffered: number;
    queue?: string;
    queueLost?: { corrupt: number; truncated: number };
  } {
    const database = this.writer ? this.writer.writable : 'not configured';
    const broker = this.mqtt?.connected ?? false;
    const writer = this.writer?.health();
    const lost = this.writer?.queueLost;
    return {
      ok: broker && database !== false && writer?.ok !== false,
      broker,
      database,
      buffered: this.stats.buffered,
      ...(writer ? { queue: writer.problem ?? 'ok' } : {}),
      ...(lost && lost.corrupt + lost.truncated > 0 ? { queueLost: { ...lost } } : {}),
    };
  }

  /** Counters and gauges for GET /metrics. */
  metrics(): string {
    return prometheusText({
      stats: this.stats,
      writeSeconds: this.writer?.writeSeconds ?? new Histogram(),
      queueBytes: this.writer?.queueBytes,
      brokerConnected: this.mqtt?.connected ?? false,
      databaseWritable: this.writer?.writable,
      queueLost: this.writer?.queueLost,
      sequenceResets: this.gaps?.resets,
    });
  }

  /** Whether samples are written to a database. */
  get storing(): boolean {
    return this.writer !== undefined;
  }

  private async checkSink(): Promise<boolean> {
    for (let attempt = 0; !this.stopping.signal.aborted; attempt++) {
      try {
        await this.sink?.check();
        this.logger.info({ target: this.sink?.target }, 'database ready');
        return true;
      } catch (error) {
        if (error instanceof SinkError && error.kind === 'fatal') throw error;
        const delay = backoffDelay(attempt, CHECK_BACKOFF);
        const message = error instanceof Error ? error.message : String(error);
        this.logger.warn({ err: message, attempt: attempt + 1, retryInMs: delay }, 'database unreachable, retrying');
        await sleep(delay, this.stopping.signal);
      }
    }
    return false;
  }

  /** One incoming message. Returns a promise only when the writer's queue is full (back-pressure). */
  handle(topic: string, payload: Buffer): void | Promise<void> {
    this.stats.received++;
    const decoded = decodeMessage(topic, payload, {
      now: this.now(),
      maxPayloadBytes: this.options.maxPayloadBytes,
      maxFutureMs: this.options.maxFutureMs,
    });
    if (!decoded.ok) {
      if (decoded.host !== undefined && decoded.seq !== undefined) this.observeSeq(decoded.host, decoded.seq, undefined);
      return this.reject(decoded.reason, topic, decoded.detail);
    }
    if (decoded.kind === 'availability_cleared') {
      // Not garbage: the retained availability was deleted. Nothing to store; the live view no longer knows.
      this.stats.availability++;
      this.live?.availability(decoded.host, null);
      return;
    }
    if (decoded.kind === 'availability') {
      this.stats.availability++;
      this.live?.availability(decoded.host, decoded.online);
      return this.writer?.push(availabilityLine(decoded.host, decoded.online, this.now()));
    }
    if (decoded.sample.seq !== undefined) this.observeSeq(decoded.sample.host, decoded.sample.seq, decoded.sample.ts);
    const limited = this.limits.check(decoded.sample.host, decoded.sample.metric.name);
    if (limited) return this.reject(limited, topic, `host ${decoded.sample.host} is over a limit (MAX_HOSTS, MAX_METRICS_PER_HOST, HOST_RATE_LIMIT)`);
    this.live?.sample(decoded.sample);
    return this.writer?.push(toLine(decoded.sample));
  }

  /** `ts`: the sample's time, undefined for a rejected message (no time to show for a jump). */
  private observeSeq(host: string, seq: number, ts: number | undefined): void {
    const seen = this.gaps?.observe(host, seq, ts, this.now());
    if (seen === undefined) return;
    if (seen.missing > 0) this.reportMissing(host, seen.missing);
    if (seen.reset === 'implausible_jump') {
      this.rejections.warn(
        `seq:${host}`,
        { host, seq },
        "sequence jump larger than the samples' times allow (HOST_RATE_LIMIT): taken as a new numbering, not as missing samples",
      );
    }
  }

  private reportMissing(host: string, missing: number): void {
    this.stats.missing += missing;
    this.rejections.warn(
      `gap:${host}`,
      { host, missing },
      "samples missing: a gap in the agent's sequence numbers (lost at the broker, or dropped by the agent)",
    );
  }

  private reject(reason: RejectReason, topic: string, detail: string): undefined {
    this.stats.rejected[reason]++;
    this.rejections.warn(reason, { reason, topic: topic.slice(0, 200), detail }, 'message rejected');
    return undefined;
  }

  private logStats(message: string): void {
    const { rejected, ...counters } = this.stats;
    const rejectedByReason = Object.fromEntries(Object.entries(rejected).filter(([, n]) => n > 0));
    this.logger.info({ ...counters, rejectedTotal: totalRejected(this.stats), rejected: rejectedByReason }, message);
  }

  /**
   * Graceful stop: stop intake (the broker keeps queuing for our session), write what is queued
   * within the timeout, disconnect. Resolves with the number of points that could not be written.
   */
  async stop(timeoutMs: number): Promise<number> {
    this.stopping.abort();
    clearInterval(this.statsTimer);
    clearInterval(this.gapTimer);
    const started = this.now();
    // Intake stops first, so nothing is acknowledged after the last write.
    const closeTimeout = new AbortController();
    const closed = await Promise.race([
      (this.mqtt?.close() ?? Promise.resolve()).then(() => true),
      sleep(Math.min(2000, timeoutMs), closeTimeout.signal).then(() => false),
    ]);
    closeTimeout.abort();
    if (!closed) await this.mqtt?.close(true);
    const unwritten = (await this.writer?.stop(Math.max(0, timeoutMs - (this.now() - started)))) ?? 0;
    if (unwritten > 0 && this.writer?.durable) {
      this.logger.warn({ points: unwritten }, 'points kept in the queue on disk, written at the next start');
      this.logStats('bridge stopped');
      return 0;
    }
    this.stats.lost += unwritten;
    this.logStats('bridge stopped');
    return unwritten;
  }
}
