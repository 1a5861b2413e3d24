/**
 * Clients of the live view's GET /api/stream, and a fleet that keeps its `update` events large:
 * used by the memory-bound fault tests and by the bench (bench/stages-live.ts).
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import type { MqttConnection } from '../../common/mqtt.js';

/** A client that asks for the stream and never reads: the kernel's buffers fill, then the server's. */
export function slowStreamClient(port: number): Socket {
  const socket = tcpConnect(port, '127.0.0.1', () => socket.write(`GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
  socket.pause();
  socket.on('error', () => undefined);
  return socket;
}

export interface StreamReader {
  /** `update` events received so far. */
  updates(): number;
  /** Whether the stream has ended (the server closed it). */
  ended(): boolean;
  close(): void;
}

/** A client that reads the stream as a browser does, counting its `update` events. */
export function streamReader(url: string): StreamReader {
  const abort = new AbortController();
  let updates = 0;
  let ended = false;
  void (async () => {
    const res = await fetch(url, { signal: abort.signal });
    const decoder = new TextDecoder();
    let text = '';
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      const events = text.split('\n\n');
      text = events.pop() ?? '';
      updates += events.filter((e) => e.startsWith('event: update')).length;
    }
  })()
    .catch(() => undefined)
    .finally(() => (ended = true));
  return { updates: () => updates, ended: () => ended, close: () => abort.abort() };
}

const STEP_MS = 15_000;
const SPARKLINES = ['cpu_temp', 'cpu_usage', 'mem_usage'] as const;

/**
 * Hosts whose sparklines are full (an hour of cpu_temp, cpu_usage and mem_usage), so that every
 * `update` naming them is large (~15 KB a host); `round()` sends one sample of each, stamped now.
 */
export async function sparklineFleet(publisher: MqttConnection, hosts: readonly string[]): Promise<{ round(): Promise<void> }> {
  const seq = new Map<string, number>();
  const send = (ts: number): Promise<void[]> =>
    Promise.all(
      hosts.flatMap((host) =>
        SPARKLINES.map((metric) => {
          const n = seq.get(host) ?? 0;
          seq.set(host, n + 1);
          return publisher.publish(`sensors/${host}/${metric}`, JSON.stringify({ value: (n % 90) + 5, ts, seq: n }), { qos: 1 });
        }),
      ),
    );
  const now = Date.now();
  for (let step = 240; step >= 1; step--) await send(now - step * STEP_MS);
  return { round: async () => void (await send(Date.now())) };
}
