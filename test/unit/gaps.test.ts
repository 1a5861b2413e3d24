/** Sequence gaps: numbers an agent skipped count as missing once their hole has stayed open (REORDER_MS). */
import { describe, expect, it } from 'vitest';
import { SequenceGaps } from '../../bridge/gaps.js';

describe('sequence gaps', () => {
  it('counts numbers skipped once their hole stays open, not redeliveries, late arrivals or a restarted agent', () => {
    const gaps = new SequenceGaps(2, 5000);
    expect([0, 1, 2, 5].map((n) => gaps.observe('a', n, 0))).toEqual([0, 0, 0, 0]); // 3 and 4 may still come
    expect(gaps.observe('a', 2, 100)).toBe(0); // a redelivery
    expect(gaps.observe('a', 6, 4999)).toBe(0);
    expect(gaps.sweep(4999)).toEqual(new Map());
    expect(gaps.sweep(5000)).toEqual(new Map([['a', 2]])); // 3 and 4 never came
    expect(gaps.observe('a', 3, 6000)).toBe(0); // too late to be missing again, and not counted twice
    expect(gaps.sweep(20_000)).toEqual(new Map());
    // Out of order after a reconnect (n+1 before the resent n): nothing is missing.
    expect([7, 9, 8].map((n) => gaps.observe('a', n, 30_000))).toEqual([0, 0, 0]);
    expect(gaps.sweep(40_000)).toEqual(new Map());
    // A hole filled in its middle: the rest still counts.
    expect([12, 11].map((n) => gaps.observe('a', n, 50_000))).toEqual([0, 0]);
    expect(gaps.observe('a', 13, 56_000)).toBe(1); // 10 is missing
    expect(gaps.observe('a', 0, 57_000)).toBe(0); // the agent restarted
    expect(gaps.observe('a', 1, 57_000)).toBe(0);
    expect(gaps.observe('a', 4, 57_000)).toBe(0);
    expect(gaps.observe('a', 0, 58_000)).toBe(2); // restarted again: its last run's hole (2, 3) is lost
    // A bridge that starts mid-stream takes the first number it sees as the start.
    expect(gaps.observe('b', 1000, 0)).toBe(0);
    expect(gaps.observe('b', 1001, 0)).toBe(0);
    // Hosts are tracked up to the bound.
    expect(gaps.observe('c', 10, 0)).toBe(0);
    expect(gaps.observe('c', 20, 0)).toBe(0);
    expect(gaps.sweep(100_000)).toEqual(new Map());
  });
});
