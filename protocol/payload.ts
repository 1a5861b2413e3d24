/**
 * The payload codec. A sample's payload is a JSON object:
 *   {"value": 42.5, "ts": 1763683200000, "unit": "°C", "seq": 17}
 * `value` (a finite number) and `ts` (sample time, integer milliseconds since the epoch) are what
 * the bridge stores; `unit` and `seq` (the agent's running sample counter) are informative.
 * A bare number (`42.5`) is accepted too, stamped with the time of receipt, so that
 * third-party publishers (ESPHome, Tasmota, scripts) can join in.
 *
 * Decoding never throws: it returns the sample or the reason it was rejected.
 */
import { AVAILABILITY, OFFLINE, ONLINE, TOPIC_ROOT, isValidHost, resolveMetric, type ResolvedMetric } from './names.js';

export interface SamplePayload {
  readonly value: number;
  readonly ts: number;
  readonly unit?: string;
  readonly seq?: number;
}

export interface Sample {
  readonly host: string;
  readonly metric: ResolvedMetric;
  readonly value: number;
  readonly ts: number;
  readonly seq?: number;
}

/** Every reason a message can be rejected for; counters are kept per reason. */
export const REJECT_REASONS = [
  'bad_topic',
  'bad_host',
  'unknown_metric',
  'too_large',
  'bad_payload',
  'bad_value',
  'out_of_range',
  'bad_timestamp',
  'future_timestamp',
  // Limits the bridge applies to valid samples (bridge/limits.ts):
  'too_many_hosts',
  'too_many_metrics',
  'rate_limited',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export type Decoded =
  | { readonly ok: true; readonly kind: 'sample'; readonly sample: Sample }
  | { readonly ok: true; readonly kind: 'availability'; readonly host: string; readonly online: boolean }
  /** An empty retained availability: its publisher deleted it (a PC taken out of service), nothing to store. */
  | { readonly ok: true; readonly kind: 'availability_cleared'; readonly host: string }
  /** A rejected sample still tells its host and sequence number when they could be read (gap detection). */
  | { readonly ok: false; readonly reason: RejectReason; readonly detail: string; readonly host?: string; readonly seq?: number };

export interface DecodeOptions {
  /** Time of receipt, ms since the epoch. */
  readonly now: number;
  /** Largest accepted payload, bytes. */
  readonly maxPayloadBytes: number;
  /** How far a sample time may lie ahead of `now`, ms. */
  readonly maxFutureMs: number;
}

/** Earliest plausible sample time (2001-09-09): catches seconds sent where milliseconds belong. */
export const MIN_TIMESTAMP_MS = 1_000_000_000_000;

export function encodePayload(payload: SamplePayload): string {
  return JSON.stringify(payload);
}

const BARE_NUMBER = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

function reject(reason: RejectReason, detail: string, from?: { host: string; seq: unknown }): Decoded {
  const seq = from && isSeq(from.seq) ? from.seq : undefined;
  return from ? { ok: false, reason, detail, host: from.host, ...(seq === undefined ? {} : { seq }) } : { ok: false, reason, detail };
}

const isSeq = (seq: unknown): seq is number => typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0;

type Body = { ok: true; value: unknown; ts: unknown; seq: unknown } | { ok: false; detail: string };

/** The value, time and sequence number of a sample payload: a bare number, or a JSON object. */
function readBody(text: string, now: number): Body {
  if (BARE_NUMBER.test(text)) return { ok: true, value: Number(text), ts: now, seq: undefined };
  if (!text.startsWith('{')) return { ok: false, detail: 'payload is neither a number nor a JSON object' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, detail: 'payload is neither a number nor valid JSON' };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { ok: false, detail: 'JSON payload must be an object' };
  const object = parsed as Record<string, unknown>;
  return { ok: true, value: object['value'], ts: object['ts'] === undefined ? now : object['ts'], seq: object['seq'] };
}

export function decodeMessage(topic: string, payload: Uint8Array, options: DecodeOptions): Decoded {
  const levels = topic.split('/');
  if (levels.length !== 3 || levels[0] !== TOPIC_ROOT) return reject('bad_topic', 'expected sensors/<host>/<metric>');
  const host = levels[1] ?? '';
  const name = levels[2] ?? '';
  if (!isValidHost(host)) return reject('bad_host', 'host must match ^[a-z0-9][a-z0-9-]{0,62}$');
  if (payload.byteLength > options.maxPayloadBytes) {
    return reject('too_large', `payload of ${payload.byteLength} bytes exceeds ${options.maxPayloadBytes}`);
  }
  const text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8').trim();

  if (name === AVAILABILITY) {
    if (text === ONLINE || text === OFFLINE) return { ok: true, kind: 'availability', host, online: text === ONLINE };
    // The payload itself, not the trimmed text: only a zero-length message deletes a retained one.
    if (payload.byteLength === 0) return { ok: true, kind: 'availability_cleared', host };
    return reject('bad_payload', 'availability must be "online" or "offline"');
  }
  const metric = resolveMetric(name);
  const body = readBody(text, options.now);
  if (!metric) return reject('unknown_metric', 'metric is not in the catalog', { host, seq: body.ok ? body.seq : undefined });
  if (!body.ok) return reject('bad_payload', body.detail, { host, seq: undefined });
  const { value, ts, seq } = body;
  const from = { host, seq };

  if (typeof value !== 'number' || !Number.isFinite(value)) return reject('bad_value', 'value must be a finite number', from);
  const { min, max } = metric.spec;
  if (value < min || value > max) return reject('out_of_range', `value ${value} outside [${min}, ${max}]`, from);
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < MIN_TIMESTAMP_MS) {
    return reject('bad_timestamp', 'ts must be integer milliseconds since the epoch', from);
  }
  if (ts > options.now + options.maxFutureMs) return reject('future_timestamp', `ts is ${ts - options.now} ms in the future`, from);

  const sample: Sample = isSeq(seq) ? { host, metric, value, ts, seq } : { host, metric, value, ts };
  return { ok: true, kind: 'sample', sample };
}
