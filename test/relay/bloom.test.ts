// The filter that lets the relay skip reading its idempotency records for new message ids.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BloomFilter, hash52 } from '../../relay/mailbox/bloom.ts';

const key = () => hash52(`${randomBytes(20).toString('hex').slice(0, 32)}\n${randomBytes(16).toString('base64url')}`);

describe('the dedup filter', () => {
  it('never forgets a key it was given, and says "maybe" for about its false-positive rate of others', () => {
    const filter = new BloomFilter(50_000, 0.01);
    const added = Array.from({ length: 50_000 }, key);
    for (const k of added) filter.add(k);
    expect(added.every((k) => filter.mightHave(k))).toBe(true);
    expect(filter.full).toBe(true);
    const others = Array.from({ length: 50_000 }, key);
    const falsePositives = others.filter((k) => filter.mightHave(k)).length;
    expect(falsePositives).toBeGreaterThan(0);
    expect(falsePositives / others.length).toBeLessThan(0.02);
  });

  it('tells apart keys that differ in one character', () => {
    const filter = new BloomFilter(1_000);
    filter.add(hash52('sender\nid-0001'));
    expect(filter.mightHave(hash52('sender\nid-0001'))).toBe(true);
    expect(['sender\nid-0002', 'sender\nid-0010', 'sendeR\nid-0001', 'sender\nid-000'].filter((k) => filter.mightHave(hash52(k)))).toEqual([]);
  });
});
