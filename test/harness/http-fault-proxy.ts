/**
 * An HTTP proxy in front of a real server (InfluxDB) that can answer with faults instead (503 or
 * 429 with Retry-After, 500…) for a while, and records every request it gets.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxiedRequest {
  /** Arrival, ms since the epoch. */
  readonly at: number;
  readonly method: string;
  /** Path and query, e.g. `/write?db=hp&precision=ms`. */
  readonly path: string;
  /** Status answered: the fault's, or the server's. */
  status: number;
}

export interface Fault {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Only for requests whose path starts with this (default `/write`: queries and pings pass). */
  readonly path?: string;
}

export interface HttpFaultProxy {
  readonly url: string;
  readonly requests: readonly ProxiedRequest[];
  /** Answers matching requests with `fault` from now on: for `limit.ms`, or the next `limit.requests` of them (default: until `pass`). */
  fail(fault: Fault, limit?: { readonly ms?: number; readonly requests?: number }): void;
  /** Forwards everything again. */
  pass(): void;
  /** The requests whose path starts with `path`, from time `since`. */
  requestsTo(path: string, since?: number): ProxiedRequest[];
  close(): Promise<void>;
}

export async function startHttpFaultProxy(target: string): Promise<HttpFaultProxy> {
  const upstream = new URL(target);
  const requests: ProxiedRequest[] = [];
  let fault: Fault | undefined;
  let until = Number.POSITIVE_INFINITY;
  let left = Number.POSITIVE_INFINITY;

  const forward = (req: IncomingMessage, res: ServerResponse, record: ProxiedRequest): void => {
    const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      record.status = answer.statusCode ?? 0;
      res.writeHead(record.status, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => {
      record.status = 502;
      res.destroy();
    });
    req.pipe(out);
  };

  const server = createServer((req, res) => {
    const record: ProxiedRequest = { at: Date.now(), method: req.method ?? '', path: req.url ?? '', status: 0 };
    requests.push(record);
    if (fault && (Date.now() >= until || left <= 0)) fault = undefined;
    if (fault && record.path.startsWith(fault.path ?? '/write')) {
      left--;
      const { status, headers = {}, body = '' } = fault;
      record.status = status;
      req.resume();
      req.on('end', () => res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body));
      return;
    }
    forward(req, res, record);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    fail(f, limit = {}) {
      fault = f;
      until = Date.now() + (limit.ms ?? Number.POSITIVE_INFINITY);
      left = limit.requests ?? Number.POSITIVE_INFINITY;
    },
    pass() {
      fault = undefined;
    },
    requestsTo: (path, since = 0) => requests.filter((r) => r.path.startsWith(path) && r.at >= since),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
