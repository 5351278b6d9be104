// What a delivery stream remembers of the seqs it sent: enough to not send one twice when an
// offer races a page, in memory that does not grow with everything a connection ever received.
import { describe, expect, it } from 'vitest';
import { RECENT, SENT_LATELY_MS, SentLately } from '../../relay/delivery.ts';

describe("a delivery stream's memory of what it sent", () => {
  it('knows its last RECENT seqs however many it sent, and never holds more than twice that', () => {
    const sent = new SentLately(() => 0);
    for (let seq = 1; seq <= 100_000; seq++) sent.add(seq);
    for (let seq = 100_000 - RECENT + 1; seq <= 100_000; seq++) expect(sent.has(seq)).toBe(true);
    expect(sent.has(1)).toBe(false);
    expect(sent.size).toBeLessThanOrEqual(2 * RECENT);
  });

  it('at a chat pace keeps what it sent in the last window or two, not its last RECENT seqs', () => {
    let t = 0;
    const sent = new SentLately(() => t);
    // A message every 400 ms for an hour.
    for (let seq = 1; seq <= 9000; seq++, t += 400) sent.add(seq);
    const perWindow = SENT_LATELY_MS / 400;
    expect(sent.size).toBeLessThanOrEqual(2 * perWindow);
    // What it sent within the last window, it still knows.
    for (let seq = 9000 - perWindow + 1; seq <= 9000; seq++) expect(sent.has(seq)).toBe(true);
    expect(sent.has(9000 - 3 * perWindow)).toBe(false);
  });

  it('keeps a seq through a quiet spell until two newer windows have begun', () => {
    let t = 0;
    const sent = new SentLately(() => t);
    sent.add(1);
    t += 60_000;
    sent.add(2);
    expect(sent.has(1)).toBe(true);
    t += SENT_LATELY_MS;
    sent.add(3);
    expect([sent.has(1), sent.has(2), sent.has(3)]).toEqual([false, true, true]);
    sent.delete(2);
    expect(sent.has(2)).toBe(false);
  });
});
