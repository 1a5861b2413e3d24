/**
 * A small HTTP endpoint for container healthchecks and monitors: GET /healthz answers 200 with
 * {"status":"ok",…} when the service is ready, 503 with the reasons when not.
 */
import { createRequire } from 'node:module';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from './logger.js';
import { PROMETHEUS_CONTENT_TYPE } from './prometheus.js';

/**
 * node:http through require, not an ESM import: on Node 22 and later an ESM import of node:http
 * builds its namespace from every export, and reading `http.WebSocket` loads undici, which compiles
 * WebAssembly — undefined in the agent, which its launchers start with `--jitless` (V8 turns
 * WebAssembly off with it): `ReferenceError: WebAssembly is not defined` at start, found when the
 * Compose stack's agent (node:22) ran for real (test/stack). require reads only what it is asked for.
 */
const { createServer } = createRequire(import.meta.url)('node:http') as typeof import('node:http');

export interface Health {
  readonly ok: boolean;
  readonly [detail: string]: unknown;
}

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Answers a request that is not /healthz, returning true; false leaves it to a 404. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/** GET /metrics, answered with `text()` in Prometheus' text format; other requests go to `next`. */
export function metricsRoute(text: () => string, next?: RouteHandler): RouteHandler {
  return (req, res) => {
    if (req.method === 'GET' && req.url === '/metrics') {
      res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-store' }).end(text());
      return true;
    }
    return next?.(req, res) ?? false;
  };
}

export async function startHealthServer(host: string, port: number, health: () => Health, logger: Logger, routes?: RouteHandler): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    if (req.url !== '/healthz' && req.url !== '/healthz/' && routes?.(req, res)) return;
    if (req.method !== 'GET' || (req.url !== '/healthz' && req.url !== '/healthz/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const h = health();
    res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(`${JSON.stringify({ ...h, status: h.ok ? 'ok' : 'unavailable' })}\n`);
  });
  server.requestTimeout = 5000;
  // Server-Sent Events streams stay open: no idle timeout on responses.
  server.timeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  logger.info({ url: `http://${host}:${bound}/` }, 'http server listening');
  return {
    port: bound,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
