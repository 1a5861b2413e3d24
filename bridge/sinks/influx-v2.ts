/**
 * InfluxDB 2.x, 3.x, Cloud and 1.8+ through the v2 write API, with @influxdata/influxdb-client
 * (the one place it is imported). The client's own write buffer and retries are bypassed: they
 * drop data after their retries give up, so the bridge's writer owns batching and retries, and
 * this sink sends each batch once through the client's transport.
 */
import { HttpError, InfluxDB } from '@influxdata/influxdb-client';
import { SinkError, checkStatus, kindOfStatus, retryAfterMs, type Sink } from '../sink.js';

export interface InfluxV2Settings {
  readonly url: string;
  readonly token?: string | undefined;
  readonly org?: string | undefined;
  readonly bucket: string;
  readonly timeoutMs: number;
}

/** The message of an InfluxDB error body (`{"code","message"}` on 2.x, `{"error"}` on 1.8). */
function messageOf(error: HttpError): string {
  const json = error.json as { message?: unknown; error?: unknown } | undefined;
  const text = json?.message ?? json?.error ?? error.body ?? error.statusMessage ?? '';
  return String(text).trim();
}

export function createInfluxV2Sink(settings: InfluxV2Settings): Sink {
  const client = new InfluxDB({ url: settings.url, token: settings.token ?? '', timeout: settings.timeoutMs });
  const params = new URLSearchParams({ bucket: settings.bucket, precision: 'ms' });
  if (settings.org) params.set('org', settings.org);
  const path = `/api/v2/write?${params}`;
  const target = `InfluxDB v2 API ${new URL(settings.url).origin} bucket "${settings.bucket}"${settings.org ? ` org "${settings.org}"` : ''}`;
  const { transport } = client;

  async function post(body: string): Promise<void> {
    await transport.request(path, body, { method: 'POST', headers: { 'content-type': 'text/plain; charset=utf-8' }, gzipThreshold: 64 * 1024 });
  }

  function toSinkError(error: unknown): SinkError {
    if (error instanceof HttpError) {
      const message = messageOf(error);
      const retryAfter = retryAfterMs(error.headers?.['retry-after'] as string | undefined);
      return new SinkError(`${target}: ${error.statusCode} ${message}`, {
        kind: kindOfStatus(error.statusCode),
        status: error.statusCode,
        retryAfterMs: retryAfter,
        cause: error,
      });
    }
    const e = error as { code?: string; message?: string };
    return new SinkError(`${target}: ${e.code ?? e.message ?? String(error)}`, { kind: 'transient', cause: error });
  }

  return {
    target,
    async check() {
      // An empty write checks the bucket, the organisation and the token's right to write, and stores nothing.
      try {
        await post('');
      } catch (error) {
        if (!(error instanceof HttpError)) throw toSinkError(error);
        const message = messageOf(error);
        if (error.statusCode === 404 && !/bucket|org|database/i.test(message)) {
          throw new SinkError(`${target}: ${settings.url} has no /api/v2/write (InfluxDB before 1.8?); set INFLUX_API=1 to use the v1 /write API`, {
            kind: 'fatal',
            status: 404,
          });
        }
        checkStatus(error.statusCode, message, target);
      }
    },
    async write(batch) {
      try {
        // The client's transport takes a string.
        await post(batch.body.toString('utf8'));
      } catch (error) {
        throw toSinkError(error);
      }
    },
  };
}
