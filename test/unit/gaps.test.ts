/**
 * Sequence gaps: numbers an agent skipped count as missing once their hole has stayed open
 * (REORDER_MS), and only as many as the samples' own times allow at HOST_RATE_LIMIT: a larger jump
 * is a new numbering (counted by reason), whatever a publisher sends.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Bridge } from '../../bridge/bridge.js';
import { loadBridgeConfig } from '../../bridge/config.js';
import { MAX_SAMPLE_AGE_MS, SequenceGaps } from '../../bridge/gaps.js';
import { parsePrometheus } from '../harness/bridge.js';
import { captureLogger } from '../harness/logs.js';

const T0 = Date.UTC(2026, 0, 1);
const RATE = 1000;

describe('sequence gaps', () => {
  it('counts numbers skipped once their hole stays open, not redeliveries, late arrivals or a restarted agent', () => {
    const gaps = new SequenceGaps({ maxHosts: 2, maxRate: RATE, reorderMs: 5000 });
    // Samples stamped as they are received, as a live agent's are.
    const seen = (host: string, seq: number, now: number): number => gaps.observe(host, seq, T0 + now, now).missing;
    expect([0, 1, 2, 5].map((n) => seen('a', n, 0))).toEqual([0, 0, 0, 0]); // 3 and 4 may still come
    expect(seen('a', 2, 100)).toBe(0); // a redelivery
    expect(seen('a', 6, 4999)).toBe(0);
    expect(gaps.sweep(4999)).toEqual(new Map());
    expect(gaps.sweep(5000)).toEqual(new Map([['a', 2]])); // 3 and 4 never came
    expect(seen('a', 3, 6000)).toBe(0); // too late to be missing again, and not counted twice
    expect(gaps.sweep(20_000)).toEqual(new Map());
    // Out of order after a reconnect (n+1 before the resent n): nothing is missing.
    expect([7, 9, 8].map((n) => seen('a', n, 30_000))).toEqual([0, 0, 0]);
    expect(gaps.sweep(40_000)).toEqual(new Map());
    // A hole filled in its middle: the rest still counts.
    expect([12, 11].map((n) => seen('a', n, 50_000))).toEqual([0, 0]);
    expect(seen('a', 13, 56_000)).toBe(1); // 10 is missing
    expect(seen('a', 0, 57_000)).toBe(0); // the agent restarted
    expect(seen('a', 1, 57_000)).toBe(0);
    expect(seen('a', 4, 57_000)).toBe(0);
    expect(seen('a', 0, 58_000)).toBe(2); // restarted again: its last run's hole (2, 3) is lost
    expect(gaps.resets).toEqual({ restart: 2, implausible_jump: 0 });
    // A bridge that starts mid-stream takes the first number it sees as the start.
    expect(seen('b', 1000, 0)).toBe(0);
    expect(seen('b', 1001, 0)).toBe(0);
    // Hosts are tracked up to the bound.
    expect(seen('c', 10, 0)).toBe(0);
    expect(seen('c', 20, 0)).toBe(0);
    expect(gaps.sweep(100_000)).toEqual(new Map());
  });

  it('counts a backlog gap of days as missing: its samples span those days', () => {
    const gaps = new SequenceGaps({ maxHosts: 10, maxRate: RATE });
    const now = T0 + 10 * 86_400_000;
    // An agent (30 samples every 10 s: 3 a second) whose outbox dropped 3 days of samples while away.
    const perDay = 3 * 86_400;
    expect(gaps.observe('away', 100, now - 5 * 86_400_000, now).missing).toBe(0);
    expect(gaps.observe('away', 100 + 3 * perDay + 1, now - 2 * 86_400_000, now)).toEqual({ missing: 0 });
    expect(gaps.sweep(now + 5000)).toEqual(new Map([['away', 3 * perDay]]));
    expect(gaps.resets).toEqual({ restart: 0, implausible_jump: 0 });
  });

  it('takes a jump its sample times cannot explain as a new numbering, not as missing samples', () => {
    const gaps = new SequenceGaps({ maxHosts: 10, maxRate: RATE });
    const now = T0;
    expect(gaps.observe('bob', 1, now, now)).toEqual({ missing: 0 });
    expect(gaps.observe('bob', 2 ** 53 - 2, now, now)).toEqual({ missing: 0, reset: 'implausible_jump' });
    expect(gaps.observe('bob', 2 ** 53 - 1, now + 1, now + 1)).toEqual({ missing: 0 });
    // An invented ancient timestamp buys no more than MAX_SAMPLE_AGE_MS: it counts from that far back.
    expect(gaps.observe('eve', 1, 1_000_000_000_000, now)).toEqual({ missing: 0 });
    const week = (MAX_SAMPLE_AGE_MS / 1000) * RATE;
    expect(gaps.observe('eve', 2 + week + RATE, now, now)).toEqual({ missing: 0 }); // a week's worth, and a second's credit
    // The time is spent: the next jump is a new numbering, and the hole the last one left is lost.
    expect(gaps.observe('eve', 2 + week + 3 * RATE, now + 1000, now)).toEqual({ missing: week + RATE, reset: 'implausible_jump' });
    expect(gaps.sweep(now + 5000)).toEqual(new Map());
    expect(gaps.resets).toEqual({ restart: 0, implausible_jump: 2 });
  });

  it('never counts more missing than the samples’ times allow at the rate limit, whatever a publisher sends', () => {
    const maxAgeMs = 3_600_000;
    const message = fc.record({
      seq: fc.oneof(fc.nat(200), fc.nat(5000), fc.maxSafeNat(), fc.constant(0), fc.constant(Number.MAX_SAFE_INTEGER)),
      // Sample times: near receipt, far back, ahead, or none (a rejected message).
      ts: fc.option(fc.oneof(fc.integer({ min: -10_000, max: 10_000 }), fc.integer({ min: -100 * maxAgeMs, max: 300_000 })), { nil: undefined }),
      wait: fc.nat(7000),
      sweep: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), fc.array(message, { maxLength: 200 }), (rate, messages) => {
        const gaps = new SequenceGaps({ maxHosts: 1, maxRate: rate, maxAgeMs });
        let now = T0;
        let missing = 0;
        let first: number | undefined;
        let latest: number | undefined;
        for (const m of messages) {
          now += m.wait;
          const ts = m.ts === undefined ? undefined : now + m.ts;
          const clamped = ts === undefined ? undefined : Math.max(ts, now - maxAgeMs);
          if (clamped !== undefined) {
            first ??= clamped;
            latest = Math.max(latest ?? clamped, clamped);
          }
          const seen = gaps.observe('pc', m.seq, ts, now);
          expect(seen.missing).toBeGreaterThanOrEqual(0);
          missing += seen.missing;
          if (m.sweep) missing += gaps.sweep(now).get('pc') ?? 0;
        }
        missing += gaps.sweep(now + 60_000).get('pc') ?? 0;
        const span = first === undefined || latest === undefined ? 0 : latest - first;
        // A second's worth of credit, plus the rate over the span of its sample times.
        expect(missing).toBeLessThanOrEqual(rate + (rate * span) / 1000 + 1e-6);
      }),
      { numRuns: 500 },
    );
  });

  it('counts exactly what a well-behaved agent lost, in any pattern of drops within the rate limit', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }), // metrics per round
        fc.integer({ min: 1000, max: 60_000 }), // round interval, ms
        fc.array(fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), { minLength: 2, maxLength: 60 }), // which samples arrive
        (perRound, intervalMs, rounds) => {
          const gaps = new SequenceGaps({ maxHosts: 1, maxRate: 40 });
          let seq = 0;
          let lastArrived = -1;
          const arrived = new Set<number>();
          let missing = 0;
          rounds.forEach((kept, r) => {
            const ts = T0 + r * intervalMs;
            for (let i = 0; i < perRound; i++, seq++) {
              if (!kept[i]) continue;
              arrived.add(seq);
              lastArrived = seq;
              missing += gaps.observe('pc', seq, ts, ts + 50).missing;
            }
          });
          missing += gaps.sweep(T0 + rounds.length * intervalMs + 60_000).get('pc') ?? 0;
          const firstArrived = Math.min(...arrived);
          const lost = arrived.size === 0 ? 0 : lastArrived - firstArrived + 1 - arrived.size;
          expect(missing).toBe(lost);
          expect(gaps.resets).toEqual({ restart: 0, implausible_jump: 0 });
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('the bridge, fed an invented sequence', () => {
  it('keeps hostpulse_bridge_missing_total sane when one PC sends seq 1 then 2^53-2, and counts the reset', async () => {
    const config = loadBridgeConfig({}, { influxRequired: false });
    if (!config.ok) throw new Error(config.errors.join('\n'));
    let now = Date.now();
    const { logger, lines } = captureLogger('bridge');
    const bridge = new Bridge({ options: config.config, sink: undefined, logger, now: () => now });
    const publish = (seq: number): void => void bridge.handle('sensors/bob/cpu_usage', Buffer.from(JSON.stringify({ value: 1, ts: now, seq })));
    publish(1);
    publish(2 ** 53 - 2);
    now += 6000; // past REORDER_MS: an open hole would be counted now
    publish(2 ** 53 - 1);
    const metrics = parsePrometheus(bridge.metrics());
    expect(metrics.get('hostpulse_bridge_missing_total')).toBe(0);
    expect(metrics.get('hostpulse_bridge_sequence_resets_total{reason="implausible_jump"}')).toBe(1);
    expect(lines.find((l) => l.msg.startsWith('sequence jump larger'))).toMatchObject({ host: 'bob', seq: 2 ** 53 - 2 });
    await bridge.stop(0);
  });
});
