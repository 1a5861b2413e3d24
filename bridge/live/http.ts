/**
 * The live view over HTTP: GET / (the page), GET /api/hosts (current state as JSON) and
 * GET /api/stream (Server-Sent Events: the whole state once, then the hosts that changed, at most
 * once a second). No build step, no client library.
 *
 * A stream's events wait in memory until its client reads them, so the bytes waiting are bounded:
 * a client more than `maxClientBytes` behind (beyond its first snapshot) is disconnected — its
 * browser reconnects and starts over from a fresh snapshot — and all streams together may hold
 * `maxTotalBytes`, beyond which the furthest behind go first and new streams are refused.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../common/logger.js';
import { PrometheusText } from '../../common/prometheus.js';
import { ThrottledLog } from '../../common/throttle.js';
import { LiveState } from './state.js';
import { LIVE_PAGE } from './page.js';

export interface LiveHttpOptions {
  /** Whether history is being written to InfluxDB (the page says so when it is not). */
  readonly storing: boolean;
  readonly maxStreams: number;
  readonly flushMs: number;
  /** Bytes a stream may have waiting beyond its first snapshot; a client further behind is disconnected. */
  readonly maxClientBytes: number;
  /** Bytes all streams may have waiting together. */
  readonly maxTotalBytes: number;
}

export const LIVE_HTTP_DEFAULTS = { maxStreams: 100, flushMs: 1000, maxClientBytes: 1024 * 1024, maxTotalBytes: 64 * 1024 * 1024 } as const;

export interface LiveHttp {
  /** Answers the request if it is the live view's; false otherwise. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** The streams' gauges and counters in Prometheus' text format. */
  metrics(): string;
  close(): void;
}

interface Stream {
  readonly res: ServerResponse;
  /** Bytes it may have waiting: maxClientBytes plus its first snapshot. */
  readonly allowance: number;
}

type DropReason = 'slow_client' | 'memory_bound';

export function createLiveHttp(state: LiveState, options: LiveHttpOptions, logger: Logger): LiveHttp {
  const streams = new Set<Stream>();
  const dropped: Record<DropReason, number> = { slow_client: 0, memory_bound: 0 };
  const refused = { max_streams: 0, memory_bound: 0 };
  const warnings = new ThrottledLog(logger, 60_000);
  const waiting = (): number => {
    let bytes = 0;
    for (const s of streams) bytes += s.res.writableLength;
    return bytes;
  };
  const drop = (s: Stream, reason: DropReason): void => {
    streams.delete(s);
    dropped[reason]++;
    warnings.warn(
      `live:${reason}`,
      { reason, waitingBytes: s.res.writableLength, remote: s.res.socket?.remoteAddress },
      'live view client disconnected: too far behind in reading its stream',
    );
    s.res.destroy();
  };
  /** Writes an event unless the client is too far behind, which disconnects it. */
  const write = (s: Stream, text: string): void => {
    if (s.res.writableLength > s.allowance) drop(s, 'slow_client');
    else s.res.write(text);
  };
  const event = (name: string, data: unknown): string => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
  /** Beyond the total, the streams furthest behind go first. */
  const enforceTotal = (): void => {
    let total = waiting();
    if (total <= options.maxTotalBytes) return;
    for (const s of [...streams].sort((a, b) => b.res.writableLength - a.res.writableLength)) {
      if (total <= options.maxTotalBytes) break;
      total -= s.res.writableLength;
      drop(s, 'memory_bound');
    }
  };
  const flush = setInterval(() => {
    const hosts = state.takeChanged();
    if (streams.size === 0 || hosts.length === 0) return;
    const text = event('update', { hosts, units: LiveState.units(hosts), now: Date.now() });
    for (const s of [...streams]) write(s, text);
    enforceTotal();
  }, options.flushMs);
  flush.unref();
  const heartbeat = setInterval(() => {
    for (const s of [...streams]) write(s, `: ${Date.now()}\n\n`);
  }, 15_000);
  heartbeat.unref();

  const state0 = () => {
    const hosts = state.snapshot();
    return { hosts, units: LiveState.units(hosts), storing: options.storing, now: Date.now() };
  };
  const busy = (res: ServerResponse, why: string): true => {
    res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '10' }).end(`${why}\n`);
    return true;
  };

  return {
    handle(req, res) {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET') return false;
      if (path === '/') {
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'cache-control': 'no-cache',
          'x-content-type-options': 'nosniff',
          'content-security-policy': "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
        });
        res.end(LIVE_PAGE);
        return true;
      }
      if (path === '/api/hosts') {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify(state0()));
        return true;
      }
      if (path === '/api/stream') {
        if (streams.size >= options.maxStreams) {
          refused.max_streams++;
          return busy(res, 'too many live views open');
        }
        const first = `retry: 3000\n\n${event('hosts', state0())}`;
        if (waiting() + Buffer.byteLength(first) > options.maxTotalBytes) {
          refused.memory_bound++;
          return busy(res, 'the live views open are too far behind; try again shortly');
        }
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
        const s: Stream = { res, allowance: options.maxClientBytes + Buffer.byteLength(first) };
        res.write(first);
        streams.add(s);
        req.on('close', () => streams.delete(s));
        return true;
      }
      return false;
    },
    metrics() {
      return new PrometheusText()
        .gauge('hostpulse_bridge_live_streams', 'Live view streams (GET /api/stream) open.', streams.size)
        .gauge('hostpulse_bridge_live_waiting_bytes', 'Bytes of live view events waiting for their clients to read them.', waiting())
        .counter(
          'hostpulse_bridge_live_dropped_total',
          'Live view streams disconnected, by reason: slow_client (too far behind), memory_bound (all streams together too far behind).',
          dropped,
        )
        .counter('hostpulse_bridge_live_refused_total', 'Live view streams refused (503), by reason: max_streams, memory_bound.', refused)
        .toString();
    },
    close() {
      clearInterval(flush);
      clearInterval(heartbeat);
      for (const s of streams) s.res.end();
      streams.clear();
    },
  };
}
