/**
 * The bridge as a long-running service: its durable queue, the bridge, and its HTTP server (/healthz,
 * /metrics and the live view). Shared by `hostpulse bridge` and `hostpulse up`.
 */
import { DISK_QUEUE_DEFAULTS, DiskQueue } from '../common/disk-queue.js';
import { httpMetricsText, metricsRoute, startHealthServer, type HealthServer, type HttpServerOptions } from '../common/health.js';
import type { Logger } from '../common/logger.js';
import { Bridge, type BridgeOptions } from './bridge.js';
import { LIVE_HTTP_DEFAULTS, createLiveHttp } from './live/http.js';
import { LiveState } from './live/state.js';
import type { Sink } from './sink.js';

export interface BridgeService {
  readonly bridge: Bridge;
  /** Resolves once intake runs (true), or with the error that stops the start. */
  readonly started: Promise<boolean | Error>;
  /** Stops intake, writes what is held, closes the HTTP server; resolves with the points not written. */
  stop(timeoutMs: number): Promise<number>;
}

/** Opens the queue (a directory in use throws DiskQueueInUse), starts the HTTP server, then the bridge. */
export async function startBridgeService(
  options: BridgeOptions,
  sink: Sink | undefined,
  http: { readonly host: string; readonly port: number } & HttpServerOptions,
  logger: Logger,
  queueSettings?: { readonly dir: string; readonly maxBytes: number },
  /** More families for GET /metrics (`up`: its embedded broker's). */
  moreMetrics?: () => string,
): Promise<BridgeService> {
  const live = new LiveState();
  // The durable queue is opened first: a directory in use by another bridge stops the start here.
  const queue = sink && queueSettings ? new DiskQueue(queueSettings.dir, { ...DISK_QUEUE_DEFAULTS, maxBytes: queueSettings.maxBytes }) : undefined;
  if (sink && !queue) logger.warn('QUEUE_DIR=off: points wait in memory; a crash of the bridge loses what it has acknowledged and not yet written');
  for (const note of queue?.notes ?? []) logger.warn({ dir: queueSettings?.dir }, `queue repaired at start: ${note}`);
  if (queue && queue.length > 0) logger.info({ points: queue.length, dir: queueSettings?.dir }, 'replaying the queue left by the last run');
  const bridge = new Bridge({ options, sink, logger, live, queue });
  const liveHttp = createLiveHttp(live, { ...LIVE_HTTP_DEFAULTS, storing: sink !== undefined }, logger.child({ component: 'live' }));
  // Assigned once the server listens; the metrics route reads it (a const there would be read before it exists).
  // biome-ignore lint/style/useConst: read by the route before the assignment completes
  let server: HealthServer | undefined;
  const metrics = (): string => bridge.metrics() + liveHttp.metrics() + httpMetricsText('hostpulse_bridge', server) + (moreMetrics?.() ?? '');
  const routes = metricsRoute(metrics, (req, res) => liveHttp.handle(req, res));
  server = http.port > 0 ? await startHealthServer(http.host, http.port, () => bridge.health(), logger, routes, http) : undefined;
  if (server) logger.info({ url: `http://${http.host === '0.0.0.0' ? 'localhost' : http.host}:${server.port}/` }, 'live view');
  return {
    bridge,
    started: bridge.start().catch((error: unknown) => error as Error),
    async stop(timeoutMs) {
      liveHttp.close();
      await server?.close();
      const unwritten = await bridge.stop(timeoutMs);
      queue?.close();
      return unwritten;
    },
  };
}
