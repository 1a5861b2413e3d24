/** What every stage gets: the servers, the settings, the figures so far, and shared steps. */
import type { InfluxDB } from '../test/harness/influxdb.js';
import type { Mosquitto } from '../test/harness/mosquitto.js';
import { discardSession } from '../test/harness/sessions.js';
import type { PublisherOptions } from './publisher.js';
import { spawnScript, type ChildEvent } from './proc.js';
import type { Figure } from './report.js';

export interface BenchSettings {
  /** Live stages, seconds of publishing. */
  readonly seconds: number;
  /** Messages queued for an offline session (R_drain, catch-up). */
  readonly backlog: number;
  readonly latencySeconds: number;
  readonly latencyRate: number;
  /** Soak: seconds and samples per second of the paced load. */
  readonly soakSeconds: number;
  readonly soakRate: number;
  readonly hosts: number;
  /** Publisher: QoS 1 messages in flight. */
  readonly window: number;
  /** InfluxDB raw write: points, batch size, requests in flight. */
  readonly influxPoints: number;
  readonly influxBatch: number;
  readonly influxInFlight: number;
  /** Directory for bridge CPU profiles (NODE_OPTIONS=--cpu-prof), or undefined. */
  readonly profileDir: string | undefined;
}

export interface BenchContext {
  readonly broker: Mosquitto;
  readonly influx: InfluxDB;
  readonly settings: BenchSettings;
  readonly figures: Figure[];
  /** One line of progress on stderr. */
  log(message: string): void;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Published {
  readonly acked: number;
  /** Epoch ms of the first publish and the last acknowledgement. */
  readonly firstAt: number;
  readonly lastAckAt: number;
}

/** Runs the publisher to the end; `onStarted` runs once it publishes. */
export async function publish(ctx: BenchContext, options: Omit<PublisherOptions, 'url' | 'hosts' | 'window'>, onStarted?: () => void): Promise<Published> {
  const { settings } = ctx;
  const publisher = spawnScript('publisher.ts', { url: ctx.broker.url, hosts: settings.hosts, window: settings.window, ...options } satisfies PublisherOptions);
  try {
    await publisher.waitFor('started', 30_000);
    onStarted?.();
    const expectedMs = ((options.seconds ?? 0) + (options.count ?? 0) / 1000) * 1000;
    const done = await publisher.waitFor('done', expectedMs + 120_000);
    return { acked: done['acked'] as number, firstAt: done['firstAt'] as number, lastAckAt: done['lastAckAt'] as number };
  } finally {
    await publisher.stop();
  }
}

/** Points of measurement `cpu` stored in `db`. */
export async function storedCount(ctx: BenchContext, db: string): Promise<number> {
  const r = await ctx.influx.query('SELECT count("usage") FROM "cpu"', db);
  return Number(r.series[0]?.values[0]?.[1] ?? 0);
}

/**
 * Polls until `db` holds `expected` points, or the count stops growing for `stallMs`.
 * `at`: when the answer that showed the last count came back (so a rate from it errs low).
 */
export async function waitStored(ctx: BenchContext, db: string, expected: number, stallMs = 30_000, pollMs = 250): Promise<{ count: number; at: number }> {
  let best = { count: -1, at: Date.now() };
  for (;;) {
    const count = await storedCount(ctx, db);
    const at = Date.now();
    if (count > best.count) best = { count, at };
    if (count >= expected || at - best.at > stallMs) return best;
    await sleep(pollMs);
  }
}

/** Waits until a raw subscriber's `progress` shows `expected` messages, or it stops growing for `stallMs`. */
export async function waitReceived(
  latest: () => ChildEvent | undefined,
  expected: number,
  stallMs = 10_000,
): Promise<{ count: number; firstAt: number; lastAt: number }> {
  let seen = { count: -1, since: Date.now() };
  for (;;) {
    const p = latest();
    const count = (p?.['count'] as number | undefined) ?? 0;
    if (count > seen.count) seen = { count, since: Date.now() };
    if (p && (count >= expected || Date.now() - seen.since > stallMs)) return { count, firstAt: p['firstAt'] as number, lastAt: p['lastAt'] as number };
    await sleep(100);
  }
}

/**
 * The persistent sessions the stages use (bridges, the Node-RED peer, the drain subscriber). A
 * stopped subscriber's session keeps collecting every message published afterwards, which would
 * load the broker (and its memory) during every later stage: run.ts forgets them after each stage.
 */
export const BENCH_SESSIONS = [
  'bench-bridge-live',
  'bench-bridge-catchup',
  'bench-bridge-latency',
  'bench-bridge-soak',
  'bench-bridge-fleet',
  'bench-nodered-live',
  'bench-raw-drain0',
  'bench-raw-drain1',
] as const;

/** Connects once with a clean session under each id: the broker discards what it kept for them. */
export async function forgetSessions(ctx: BenchContext, clientIds: readonly string[] = BENCH_SESSIONS): Promise<void> {
  for (const clientId of clientIds) await discardSession({ url: ctx.broker.url, clientId }, 10_000);
}

export async function createDatabase(ctx: BenchContext, db: string): Promise<void> {
  await ctx.influx.query(`CREATE DATABASE "${db}"`);
}
