/**
 * The live view over HTTP: GET / (the page), GET /api/hosts (current state as JSON) and
 * GET /api/stream (Server-Sent Events: the whole state once, then the hosts that changed, at most
 * once a second). No build step, no client library.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LiveState } from './live.js';
import { LIVE_PAGE } from './live-page.js';

export interface LiveHttpOptions {
  /** Whether history is being written to InfluxDB (the page says so when it is not). */
  readonly storing: boolean;
  readonly maxStreams: number;
  readonly flushMs: number;
}

export interface LiveHttp {
  /** Answers the request if it is the live view's; false otherwise. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  close(): void;
}

export function createLiveHttp(state: LiveState, options: LiveHttpOptions): LiveHttp {
  const streams = new Set<ServerResponse>();
  const send = (res: ServerResponse, event: string, data: unknown): void => {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const flush = setInterval(() => {
    if (streams.size === 0) {
      state.takeChanged();
      return;
    }
    const hosts = state.takeChanged();
    if (hosts.length > 0) for (const res of streams) send(res, 'update', { hosts, units: LiveState.units(hosts), now: Date.now() });
  }, options.flushMs);
  flush.unref();
  const heartbeat = setInterval(() => {
    for (const res of streams) res.write(`: ${Date.now()}\n\n`);
  }, 15_000);
  heartbeat.unref();

  const state0 = () => {
    const hosts = state.snapshot();
    return { hosts, units: LiveState.units(hosts), storing: options.storing, now: Date.now() };
  };

  return {
    handle(req, res) {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET') return false;
      if (path === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff', 'content-security-policy': "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'" });
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
          res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '10' }).end('too many live views open\n');
          return true;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
        res.write('retry: 3000\n\n');
        send(res, 'hosts', state0());
        streams.add(res);
        req.on('close', () => streams.delete(res));
        return true;
      }
      return false;
    },
    close() {
      clearInterval(flush);
      clearInterval(heartbeat);
      for (const res of streams) res.end();
      streams.clear();
    },
  };
}
