import { describe, expect, it } from 'vitest';
import { hintIntervalMs } from '../../relay/directory.ts';

// A directory:changed hint goes to every socket, and each client then asks directory:changes:
// on a large relay a join storm must not turn into every client re-fetching every second.
describe('directory:changed hints', () => {
  it('come at most once a second up to 2,000 connections, then keep to about 2,000 a second, never over 10 s apart', () => {
    expect([0, 1, 500, 2_000].map(hintIntervalMs)).toEqual([1_000, 1_000, 1_000, 1_000]);
    expect(hintIntervalMs(4_000)).toBe(2_000);
    expect(hintIntervalMs(10_000)).toBe(5_000);
    for (const n of [2_500, 7_000, 15_000]) expect(n / (hintIntervalMs(n) / 1000)).toBeCloseTo(2_000, -1);
    expect(hintIntervalMs(100_000)).toBe(10_000);
  });
});
