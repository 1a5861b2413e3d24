/**
 * A bounded stream of samples from one publisher connection, and the ledger that holds what
 * InfluxDB stored against what the broker acknowledged, per (host, seq).
 *
 * Every sample of a stream is `cpu_usage` of host `<prefix>-<i>`, with `seq` its index, `value`
 * seq % 100 and `ts` STREAM_T0 + seq: its timestamp in InfluxDB gives its seq back, so the ledger
 * compares exact sets, not only counts.
 */
import { MqttConnection } from '../../common/mqtt.js';
import type { BridgeProcess } from './bridge.js';
import type { InfluxDB } from './influxdb.js';
import { captureLogger, type CapturedLogger } from './logs.js';
import { waitFor } from './mqtt.js';

/** Sample times of streams: an hour ago (a late sample is legitimate, so it is stored). */
export const STREAM_T0 = Date.now() - 3_600_000;

/** Seqs per host. */
export type SeqSets = Map<string, Set<number>>;

export interface StreamOptions {
  readonly url: string;
  /** Hosts are `<prefix>-0` … `<prefix>-<hosts - 1>`. */
  readonly prefix: string;
  readonly hosts: number;
  /** Samples per host, numbered from `firstSeq` (default 0). */
  readonly perHost: number;
  readonly firstSeq?: number;
  /** Messages per second, all hosts together. */
  readonly rate: number;
  /** Stop publishing after this long, even if `perHost` rounds were not all sent. */
  readonly stopAfterMs?: number;
  /** Reconnect with backoff when the connection drops (default true): unacknowledged samples are sent again. */
  readonly reconnect?: boolean;
  readonly clientId?: string;
  /** MQTT keepalive, seconds (MqttConnection's default otherwise), as the agent's MQTT_KEEPALIVE. */
  readonly keepaliveSeconds?: number;
  /** A broker login (with the shipped ACL: one host, its name the login's). */
  readonly login?: { readonly username: string; readonly password: string };
}

export interface Stream {
  /** The seqs the broker acknowledged so far, per host. */
  readonly acked: SeqSets;
  /** When each was acknowledged (`<host>/<seq>` → ms since the epoch). */
  readonly ackedAt: Map<string, number>;
  /** Samples handed to the connection so far. */
  sent(): number;
  ackedCount(): number;
  /** Resolves with `acked` once every sample was published and acknowledged. */
  readonly done: Promise<SeqSets>;
  /** The publisher connection's own log lines (reconnects). */
  readonly log: CapturedLogger['lines'];
  readonly connection: MqttConnection;
  /** Stops publishing, drops what is in flight and disconnects. */
  close(): Promise<void>;
}

export function count(sets: SeqSets): number {
  return [...sets.values()].reduce((n, s) => n + s.size, 0);
}

let streams = 0;

/** Starts publishing at once (QoS 1, paced at `rate`); `done` resolves when everything is acknowledged. */
export function startStream(options: StreamOptions): Stream {
  const { logger, lines } = captureLogger(`stream-${options.prefix}`);
  const connection = new MqttConnection(
    {
      url: options.url,
      clientId: options.clientId ?? `stream-${options.prefix}-${process.pid}-${streams++}`,
      clean: true,
      reconnect: options.reconnect ?? true,
      ...(options.keepaliveSeconds ? { keepaliveSeconds: options.keepaliveSeconds } : {}),
      ...options.login,
    },
    logger,
  );
  const acked: SeqSets = new Map();
  const ackedAt = new Map<string, number>();
  let sent = 0;
  let stopped = false;
  // MQTT.js fails a publish caught in its store flush when the connection drops ("Connection closed"):
  // like the agent's outbox, publish it again until the broker acknowledges it.
  const publishUntilAcked = async (topic: string, payload: string): Promise<void> => {
    for (;;) {
      try {
        return await connection.publish(topic, payload, { qos: 1 });
      } catch (error) {
        if (stopped || options.reconnect === false) throw error;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  const run = async (): Promise<SeqSets> => {
    await connection.waitConnected(10_000);
    const pending: Promise<void>[] = [];
    const started = Date.now();
    const deadline = started + (options.stopAfterMs ?? Number.POSITIVE_INFINITY);
    const first = options.firstSeq ?? 0;
    for (let seq = first; seq < first + options.perHost && !stopped && Date.now() < deadline; seq++) {
      for (let h = 0; h < options.hosts; h++) {
        const host = `${options.prefix}-${h}`;
        const payload = JSON.stringify({ value: seq % 100, ts: STREAM_T0 + seq, seq });
        pending.push(
          publishUntilAcked(`sensors/${host}/cpu_usage`, payload).then(() => {
            let set = acked.get(host);
            if (!set) acked.set(host, (set = new Set()));
            set.add(seq);
            ackedAt.set(`${host}/${seq}`, Date.now());
          }),
        );
        sent++;
      }
      const wait = started + (sent * 1000) / options.rate - Date.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    }
    await Promise.all(pending);
    return acked;
  };
  return {
    acked,
    ackedAt,
    sent: () => sent,
    ackedCount: () => count(acked),
    done: run(),
    log: lines,
    connection,
    close: async () => {
      stopped = true;
      await connection.close(true);
    },
  };
}

/** The seqs of `<prefix>-*` hosts' cpu_usage stored in `db` (with the value sent), read back from their timestamps. */
export async function storedSeqs(influx: InfluxDB, db: string, prefix: string): Promise<SeqSets> {
  const r = await influx.query(`SELECT "usage" FROM "cpu" WHERE "host" =~ /^${prefix}-/ GROUP BY "host"`, db);
  const seqs = (rows: unknown[][]): number[] =>
    rows
      .map(([t, v]) => [(t as number) - STREAM_T0, v])
      .filter(([seq, v]) => v === (seq as number) % 100)
      .map(([seq]) => seq as number);
  return new Map(r.series.map((s) => [s.tags?.['host'] ?? '', new Set(seqs(s.values))]));
}

/** The acknowledged seqs that are not stored. */
export function lost(acked: SeqSets, stored: SeqSets): SeqSets {
  const out: SeqSets = new Map();
  for (const [host, seqs] of acked) {
    const have = stored.get(host);
    const gone = [...seqs].filter((s) => !have?.has(s));
    if (gone.length > 0) out.set(host, new Set(gone));
  }
  return out;
}

/** What was acknowledged and is not stored, one readable line per host ([] when nothing is missing). */
export function missing(acked: SeqSets, stored: SeqSets): string[] {
  return [...lost(acked, stored)].map(([host, seqs]) => {
    const sorted = [...seqs].sort((a, b) => a - b);
    return `${host}: ${sorted.length} of ${acked.get(host)?.size} acknowledged samples missing (seq ${sorted[0]}…${sorted.at(-1)})`;
  });
}

/**
 * The ledger: waits until InfluxDB holds every acknowledged sample (or `timeoutMs` passed) and
 * returns what is still missing ([] when nothing is).
 */
export async function ledger(influx: InfluxDB, db: string, prefix: string, acked: SeqSets, timeoutMs = 30_000): Promise<string[]> {
  let problems: string[] = [];
  await waitFor(
    'every acknowledged sample stored',
    async () => {
      problems = missing(acked, await storedSeqs(influx, db, prefix));
      return problems.length === 0 ? true : undefined;
    },
    timeoutMs,
  ).catch(() => undefined);
  return problems;
}

/** The seqs of a stream the broker acknowledged from time `from` until before `to`. */
export function ackedWithin(stream: Stream, from: number, to: number): SeqSets {
  const out: SeqSets = new Map();
  for (const [key, at] of stream.ackedAt) {
    if (at < from || at >= to) continue;
    const [host = '', seq = ''] = key.split('/');
    let set = out.get(host);
    if (!set) out.set(host, (set = new Set()));
    set.add(Number(seq));
  }
  return out;
}

/** Resolves once the stream is flowing through the bridge: 100 samples acknowledged by the broker and written by the bridge. */
export async function flowing(bridge: BridgeProcess, stream: Stream): Promise<void> {
  await waitFor('samples acknowledged and written', async () =>
    stream.ackedCount() >= 100 && (await bridge.metric('hostpulse_bridge_written_total')) >= 100 ? true : undefined,
  );
}
