import { describe, expect, it } from 'vitest';
import { LiveState } from '../../bridge/live.js';
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
