/** Per-host limits: a minute of burst then the sustained rate, and bounds on hosts and metric names. */
import { describe, expect, it } from 'vitest';
import { Limits } from '../../bridge/limits.js';

describe('limits', () => {
  it('lets a minute of burst through, then the sustained rate', () => {
    let now = 0;
    const limits = new Limits({ maxHosts: 10, maxMetricsPerHost: 10, hostRate: 10, burstSeconds: 60 }, () => now);
    let passed = 0;
    for (let i = 0; i < 1000; i++) if (!limits.check('pc', 'cpu_usage')) passed++;
    expect(passed).toBe(600);
    now = 1000; // one second later: ten more
    for (let i = 0; i < 100; i++) if (!limits.check('pc', 'cpu_usage')) passed++;
    expect(passed).toBe(610);
    expect(limits.check('other', 'cpu_usage')).toBeUndefined(); // another host has its own bucket
  });

  it('bounds hosts and metric names per host', () => {
    const limits = new Limits({ maxHosts: 2, maxMetricsPerHost: 2, hostRate: 100, burstSeconds: 60 });
    expect(limits.check('a', 'disk_x1_usage')).toBeUndefined();
    expect(limits.check('a', 'disk_x2_usage')).toBeUndefined();
    expect(limits.check('a', 'disk_x3_usage')).toBe('too_many_metrics');
    expect(limits.check('a', 'disk_x1_usage')).toBeUndefined(); // known names keep flowing
    expect(limits.check('b', 'cpu_usage')).toBeUndefined();
    expect(limits.check('c', 'cpu_usage')).toBe('too_many_hosts');
  });
});
