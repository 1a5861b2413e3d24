/**
 * A small HTTP endpoint for container healthchecks and monitors: GET /healthz answers 200 with
 * {"status":"ok",…} when the service is ready, 503 with the reasons when not.
 *
 * Bounded against clients that hold sockets: a connection must send its headers within
 * HEADERS_TIMEOUT_MS and its request within REQUEST_TIMEOUT_MS, an idle keep-alive connection is
 * closed after KEEP_ALIVE_TIMEOUT_MS, one that makes no progress either way (a client that stopped
 * reading) after IDLE_TIMEOUT_MS, and beyond `maxConnections` new connections are closed at once
 * (the last LOOPBACK_RESERVE of them only for loopback clients: a container's healthcheck still
 * gets in while the published port is flooded), so that sockets never use up the descriptors the
 * rest of the process (`up`'s broker) needs.
 */
import { createRequire } from 'node:module';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { AllowedHosts } from './allowed-hosts.js';
import type { Logger } from './logger.js';
import { PROMETHEUS_CONTENT_TYPE, PrometheusText } from './prometheus.js';
import { ThrottledLog } from './throttle.js';

/**
 * node:http through require, not an ESM import: on Node 22 and later an ESM import of node:http
 * builds its namespace from every export, and reading `http.WebSocket` loads undici, which compiles
 * WebAssembly — undefined in the agent, which its launchers start with `--jitless` (V8 turns
 * WebAssembly off with it): `ReferenceError: WebAssembly is not defined` at start, found when the
 * Compose stack's agent (node:22) ran for real (test/stack). require reads only what it is asked for.
 */
const { createServer } = createRequire(import.meta.url)('node:http') as typeof import('node:http');

export const HEADERS_TIMEOUT_MS = 5000;
export const REQUEST_TIMEOUT_MS = 10_000;
export const KEEP_ALIVE_TIMEOUT_MS = 5000;
export const IDLE_TIMEOUT_MS = 60_000;
export const LOOPBACK_RESERVE = 16;
export const DEFAULT_MAX_CONNECTIONS = 256;

export interface Health {
  readonly ok: boolean;
  readonly [detail: string]: unknown;
}

export interface HttpServerOptions {
  /** Connections open at once (HTTP_MAX_CONNECTIONS). */
  readonly maxConnections?: number;
  /** Host names answered besides IP literals, localhost and this machine's (HTTP_ALLOWED_HOSTS); undefined: any Host. */
  readonly allowedHosts?: readonly string[] | undefined;
}

export const REFUSE_REASONS = ['max_connections', 'host', 'origin'] as const;

export interface HealthServer {
  readonly port: number;
  /** Connections and requests refused, by reason. */
  readonly refused: Readonly<Record<(typeof REFUSE_REASONS)[number], number>>;
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

/** The server's refusals in Prometheus' text format, as `<prefix>_http_refused_total{reason}`. */
export function httpMetricsText(prefix: string, server: HealthServer | undefined): string {
  if (!server) return '';
  return new PrometheusText()
    .counter(
      `${prefix}_http_refused_total`,
      'HTTP connections and requests refused, by reason: max_connections (HTTP_MAX_CONNECTIONS), host and origin (not in HTTP_ALLOWED_HOSTS).',
      server.refused,
    )
    .toString();
}

const isLoopback = (address: string | undefined): boolean =>
  address !== undefined && (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.'));

const TEXT = { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' } as const;

export async function startHealthServer(
  host: string,
  port: number,
  health: () => Health,
  logger: Logger,
  routes?: RouteHandler,
  options: HttpServerOptions = {},
): Promise<HealthServer> {
  const refused = { max_connections: 0, host: 0, origin: 0 };
  const warnings = new ThrottledLog(logger, 60_000);
  const allowed = options.allowedHosts && new AllowedHosts(options.allowedHosts, host);
  const server: Server = createServer(
    { headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS, connectionsCheckingInterval: 1000 },
    (req, res) => {
      // Past its headers: no progress for IDLE_TIMEOUT_MS closes it (Node clears the timer of a kept-alive socket).
      req.socket.setTimeout(IDLE_TIMEOUT_MS);
      if (allowed && !allowed.host(req.headers.host)) {
        refused.host++;
        warnings.warn(
          'host',
          { host: req.headers.host?.slice(0, 100), url: req.url?.slice(0, 100) },
          'request refused: its Host is not allowed (HTTP_ALLOWED_HOSTS)',
        );
        res
          .writeHead(421, { ...TEXT, connection: 'close' })
          .end(`Host "${req.headers.host?.slice(0, 100)}" is not served here: open this by IP address, localhost, or a name listed in HTTP_ALLOWED_HOSTS\n`);
        return;
      }
      if (allowed && !allowed.origin(req.headers.origin)) {
        refused.origin++;
        warnings.warn(
          'origin',
          { origin: req.headers.origin?.slice(0, 100), url: req.url?.slice(0, 100) },
          'request refused: its Origin is not allowed (HTTP_ALLOWED_HOSTS)',
        );
        res.writeHead(403, { ...TEXT, connection: 'close' }).end('requests from other web pages are not answered here (Origin not in HTTP_ALLOWED_HOSTS)\n');
        return;
      }
      if (req.url !== '/healthz' && req.url !== '/healthz/' && routes?.(req, res)) return;
      if (req.method !== 'GET' || (req.url !== '/healthz' && req.url !== '/healthz/')) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      const h = health();
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(`${JSON.stringify({ ...h, status: h.ok ? 'ok' : 'unavailable' })}\n`);
    },
  );
  // No progress either way for this long closes the socket: Server-Sent Events streams stay open
  // while they are read (a comment line every 15 s), a client that stopped reading does not.
  server.timeout = IDLE_TIMEOUT_MS;
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const overLimit = (): void => {
    refused.max_connections++;
    warnings.warn('connections', { maxConnections }, 'connection refused: too many open (HTTP_MAX_CONNECTIONS)');
  };
  // Node closes the connections beyond this one before they are seen ('drop').
  server.maxConnections = maxConnections;
  server.on('drop', overLimit);
  const open = new Set<Socket>();
  const reserve = Math.min(LOOPBACK_RESERVE, Math.floor(maxConnections / 4));
  server.on('connection', (socket: Socket) => {
    if (open.size >= maxConnections - reserve && !isLoopback(socket.remoteAddress)) {
      overLimit();
      socket.destroy();
      return;
    }
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    // Node's headersTimeout counts from a request's first byte: a socket that sends nothing at all
    // is closed by this timer instead (reset to IDLE_TIMEOUT_MS once its request has arrived).
    socket.setTimeout(HEADERS_TIMEOUT_MS);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  logger.info({ url: `http://${host}:${bound}/` }, 'http server listening');
  return {
    port: bound,
    refused,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
