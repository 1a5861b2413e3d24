/**
 * InfluxDB 1.x through the v1 `/write` API (InfluxDB before 1.8 has no `/api/v2/write`).
 * Uses Node's fetch; the InfluxDB JS client only speaks the v2 API.
 */
import { SinkError, checkStatus, kindOfStatus, retryAfterMs, type Sink } from '../sink.js';

export interface InfluxV1Settings {
  readonly url: string;
  readonly database: string;
  readonly retentionPolicy?: string | undefined;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly timeoutMs: number;
}

export function createInfluxV1Sink(settings: InfluxV1Settings): Sink {
  const params = new URLSearchParams({ db: settings.database, precision: 'ms' });
  if (settings.retentionPolicy) params.set('rp', settings.retentionPolicy);
  const endpoint = `${settings.url.replace(/\/+$/, '')}/write?${params}`;
  const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
  if (settings.username !== undefined) {
    headers['authorization'] = `Basic ${Buffer.from(`${settings.username}:${settings.password ?? ''}`).toString('base64')}`;
  }
  const target = `InfluxDB 1.x ${new URL(settings.url).origin} database "${settings.database}"${settings.retentionPolicy ? ` rp "${settings.retentionPolicy}"` : ''}`;

  async function post(body: string | Buffer): Promise<{ status: number; message: string; retryAfter: string | null }> {
    // A timer of our own, cleared at the answer: AbortSignal.timeout would keep each request (and
    // its body) reachable until the timeout passed, several write requests' worth of memory.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error(`timeout: no answer within ${settings.timeoutMs} ms (INFLUX_TIMEOUT)`)), settings.timeoutMs);
    let res: Response;
    let text: string;
    try {
      res = await fetch(endpoint, { method: 'POST', headers, body, signal: abort.signal });
      text = res.status === 204 ? '' : await res.text().catch(() => '');
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new SinkError(`${target}: ${cause?.code ?? cause?.message ?? (error as Error).message}`, { kind: 'transient', cause: error });
    } finally {
      clearTimeout(timer);
    }
    let message = text;
    try {
      // InfluxDB 1.x answers {"error"}; InfluxDB 2.x's 1.x-compatible /write answers {"code","message"}.
      const body = JSON.parse(text) as { error?: string; message?: string };
      message = body.error ?? body.message ?? text;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, message: message.trim(), retryAfter: res.headers.get('retry-after') };
  }

  return {
    target,
    async check() {
      // An empty write checks the database, the retention policy and the right to write, and stores nothing.
      const { status, message } = await post('');
      checkStatus(status, message, target);
    },
    async write(batch) {
      const { status, message, retryAfter } = await post(batch.body);
      if (status >= 200 && status < 300) return;
      throw new SinkError(`${target}: ${status} ${message}`, { kind: kindOfStatus(status), status, retryAfterMs: retryAfterMs(retryAfter) });
    },
  };
}
