/**
 * A small HTTP endpoint for container healthchecks and monitors: GET /healthz answers 200 with
 * {"status":"ok",…} when the service is ready, 503 with the reasons when not.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from './logger.js';

export interface Health {
  readonly ok: boolean;
  readonly [detail: string]: unknown;
}

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startHealthServer(host: string, port: number, health: () => Health, logger: Logger): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/healthz' && req.url !== '/healthz/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const h = health();
    res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(`${JSON.stringify({ ...h, status: h.ok ? 'ok' : 'unavailable' })}\n`);
  });
  server.requestTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  logger.info({ url: `http://${host}:${bound}/healthz` }, 'health endpoint listening');
  return {
    port: bound,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
