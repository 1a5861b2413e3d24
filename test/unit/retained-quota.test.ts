/** The embedded broker's ledger of retained messages (broker/retained-quota.ts). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RetainedQuota } from '../../broker/retained-quota.js';

describe('RetainedQuota', () => {
  it('charges topics and bytes (topic + payload) per owner, refuses beyond either, and counts a replacement as one', () => {
    const q = new RetainedQuota({ maxTopics: 2, maxBytes: 100 });
    expect(q.offer('bob', 'a', 10)).toBe('stored');
    expect(q.offer('bob', 'b', 10)).toBe('stored');
    expect(q.offer('bob', 'c', 1)).toBe('over_topics');
    expect(q.offer('bob', 'a', 20)).toBe('stored'); // a replacement: still 2 topics
    expect(q.held('bob')).toEqual({ topics: 2, bytes: 1 + 20 + 1 + 10 });
    expect(q.offer('bob', 'b', 90)).toBe('over_bytes'); // 21 + 91 > 100: refused, and b keeps its value
    expect(q.held('bob')).toEqual({ topics: 2, bytes: 32 });
    expect(q.offer('alice', 'x', 50)).toBe('stored'); // a quota of her own
    expect(q.offer('bob', 'b', 0)).toBe('deleted');
    expect(q.offer('bob', 'c', 1)).toBe('stored');
    expect(q.total()).toEqual({ topics: 3, bytes: 21 + 2 + 51 });
  });

  it('matches what the broker holds under any sequence of publishes and deletions', () => {
    const offer = fc.record({
      owner: fc.constantFrom('alice', 'bob', 'carol'),
      topic: fc.constantFrom('t1', 't2', 't3', 't4', 't5', 't6'),
      bytes: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 })),
    });
    fc.assert(
      fc.property(fc.array(offer, { maxLength: 200 }), (offers) => {
        const limits = { maxTopics: 3, maxBytes: 80 };
        const q = new RetainedQuota(limits);
        const stored = new Map<string, { owner: string; bytes: number }>(); // what the broker keeps
        for (const o of offers) {
          const verdict = q.offer(o.owner, o.topic, o.bytes);
          if (verdict === 'deleted') stored.delete(o.topic);
          else if (verdict === 'stored') stored.set(o.topic, { owner: o.owner, bytes: o.topic.length + o.bytes });
          else expect(o.bytes).toBeGreaterThan(0); // only a message with a payload is ever refused
        }
        for (const owner of ['alice', 'bob', 'carol']) {
          const mine = [...stored.values()].filter((e) => e.owner === owner);
          const held = { topics: mine.length, bytes: mine.reduce((n, e) => n + e.bytes, 0) };
          expect(q.held(owner)).toEqual(held);
          expect(held.topics).toBeLessThanOrEqual(limits.maxTopics);
          expect(held.bytes).toBeLessThanOrEqual(limits.maxBytes);
        }
      }),
    );
  });
});
