import { describe, expect, it, vi } from 'vitest';
import { createLiveHttp } from '../../bridge/live/http.js';
import { LiveState } from '../../bridge/live/state.js';
import { parsePrometheus } from '../harness/bridge.js';
import { captureLogger } from '../harness/logs.js';
import { resolveMetric, type Sample } from '../../protocol/index.js';

const sample = (host: string, metric: string, value: number, ts: number): Sample => ({ host, metric: resolveMetric(metric)!, value, ts });

describe('live state', () => {
  it('keeps the latest value per metric and an hour of sparkline, one point per step', () => {
    let now = 0;
    const live = new LiveState({ historyMs: 60_000, stepMs: 10_000, maxHosts: 10 }, () => now);
    for (let t = 0; t <= 120_000; t += 1000) {
      now = t;
      live.sample(sample('pc', 'cpu_temp', t / 1000, t));
    }
    const [pc] = live.snapshot();
    expect(pc?.values['cpu_temp']).toEqual([120, 120_000]);
    const points = pc?.history['cpu_temp'] ?? [];
    expect(points.length).toBe(7); // 60 s at one point per 10 s, the last step still open
    expect(points[0]?.[0]).toBeGreaterThanOrEqual(60_000);
    expect(points.at(-1)).toEqual([120_000, 120]);
    expect(pc?.lastSeen).toBe(120_000);
  });

  it('draws sparklines only for the headline metrics, and ignores late redeliveries', () => {
    const live = new LiveState();
    live.sample(sample('pc', 'disk_root_usage', 40, 2000));
    live.sample(sample('pc', 'gpu1_temp', 60, 2000));
    live.sample(sample('pc', 'gpu1_temp', 55, 1000)); // redelivered older sample
    const [pc] = live.snapshot();
    expect(Object.keys(pc?.history ?? {})).toEqual(['gpu1_temp']);
    expect(pc?.values['gpu1_temp']).toEqual([60, 2000]);
  });

  it('tracks availability, reports each change once, and bounds the number of hosts', () => {
    const live = new LiveState({ historyMs: 1000, stepMs: 100, maxHosts: 2 });
    live.availability('a', true);
    live.sample(sample('b', 'cpu_usage', 5, 1));
    live.sample(sample('c', 'cpu_usage', 5, 1)); // over the bound: not tracked
    expect(live.takeChanged().map((h) => h.host)).toEqual(['a', 'b']);
    expect(live.takeChanged()).toEqual([]);
    live.availability('a', false);
    expect(live.takeChanged()).toMatchObject([{ host: 'a', online: false }]);
    expect(live.snapshot().map((h) => h.host)).toEqual(['a', 'b']);
  });
});

describe('live view streams', () => {
  /** A response whose client reads (`reading`) or never does: what it was sent waits in writableLength. */
  const response = (reading: boolean) => {
    const res = {
      writableLength: 0,
      destroyed: false,
      socket: { remoteAddress: '127.0.0.1' },
      writeHead: () => res,
      write: (chunk: string) => ((res.writableLength += reading ? 0 : Buffer.byteLength(chunk)), true),
      end: () => res,
      destroy: () => void (res.destroyed = true),
    };
    return res;
  };
  const request = { method: 'GET', url: '/api/stream', on: () => undefined };
  const metric = (text: string, series: string): number | undefined => parsePrometheus(text).get(series);

  it('disconnects a client too far behind, counts it, and keeps sending to the ones that read', async () => {
    const live = new LiveState();
    const { logger, lines } = captureLogger('live');
    const http = createLiveHttp(live, { storing: false, maxStreams: 10, flushMs: 5, maxClientBytes: 2000, maxTotalBytes: 1_000_000 }, logger);
    const slow = response(false);
    const reader = response(true);
    const writes = vi.spyOn(reader, 'write');
    for (const res of [slow, reader]) expect(http.handle(request as never, res as never)).toBe(true);
    for (let i = 0; !slow.destroyed && i < 200; i++) {
      live.sample(sample('pc', 'cpu_temp', 40 + (i % 10), 1000 + i));
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(slow.destroyed).toBe(true);
    expect(slow.writableLength).toBeLessThan(2000 + 2 * 1000); // its allowance and one event more
    expect(reader.destroyed).toBe(false);
    const before = writes.mock.calls.length;
    live.sample(sample('pc', 'cpu_temp', 41, 5000));
    await vi.waitFor(() => expect(writes.mock.calls.length).toBeGreaterThan(before));
    const text = http.metrics();
    expect(metric(text, 'hostpulse_bridge_live_streams')).toBe(1);
    expect(metric(text, 'hostpulse_bridge_live_dropped_total{reason="slow_client"}')).toBe(1);
    expect(lines.filter((l) => l.msg.startsWith('live view client disconnected'))).toMatchObject([{ reason: 'slow_client' }]);
    http.close();
  });

  it('bounds what all streams hold together: the furthest behind go first, new streams wait', async () => {
    const live = new LiveState();
    const http = createLiveHttp(
      live,
      { storing: false, maxStreams: 10, flushMs: 5, maxClientBytes: 1_000_000, maxTotalBytes: 3000 },
      captureLogger('live').logger,
    );
    const streams = [response(false), response(false), response(true)];
    for (const res of streams) http.handle(request as never, res as never);
    for (let i = 0; !streams[1]?.destroyed && i < 200; i++) {
      live.sample(sample('pc', 'cpu_temp', 40, 1000 + i));
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(streams.map((s) => s.destroyed)).toEqual([true, true, false]);
    expect(metric(http.metrics(), 'hostpulse_bridge_live_dropped_total{reason="memory_bound"}')).toBe(2);
    // A new stream whose snapshot would not fit waits (503).
    const big = new LiveState();
    for (let h = 0; h < 20; h++) big.sample(sample(`pc-${h}`, 'cpu_temp', 40, 1000));
    const crowded = createLiveHttp(
      big,
      { storing: false, maxStreams: 10, flushMs: 5, maxClientBytes: 1_000_000, maxTotalBytes: 1000 },
      captureLogger('live').logger,
    );
    const status = vi.fn(() => ({ end: () => undefined }));
    crowded.handle(request as never, { writeHead: status } as never);
    expect(status).toHaveBeenCalledWith(503, expect.anything());
    expect(metric(crowded.metrics(), 'hostpulse_bridge_live_refused_total{reason="memory_bound"}')).toBe(1);
    crowded.close();
    http.close();
  });
});
