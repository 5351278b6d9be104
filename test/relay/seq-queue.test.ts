// A recipient's envelopes not written yet (relay/mailbox/seq-queue.ts): in seq order through
// every way they leave it, as the mailbox pages and acknowledgements read them.
import { describe, expect, it } from 'vitest';
import { SeqQueue } from '../../relay/mailbox/seq-queue.ts';

const item = (seq: number) => ({ envelope: { seq } });
const seqsOf = (q: SeqQueue<{ envelope: { seq: number } }>) => [...q].map((i) => i.envelope.seq);

describe('the queue of envelopes waiting for a recipient', () => {
  it('keeps seq order while envelopes come and go around its ring, and grows without losing one', () => {
    const q = new SeqQueue<{ envelope: { seq: number } }>();
    const model: number[] = [];
    let next = 1;
    // Joins at the back, leaves mostly from the front and now and then from the middle or the
    // back, so that the front goes round the ring many times and it grows from there.
    for (let round = 0; round < 400; round++) {
      for (let k = 0; k < 1 + (round % 5); k++) {
        q.push(item(next));
        model.push(next++);
      }
      const leaving = round % 7 === 0 ? model[Math.floor(model.length / 2)] : round % 11 === 0 ? model.at(-1) : round % 3 === 0 ? undefined : model[0];
      if (leaving !== undefined) {
        expect(q.delete(leaving)).toBe(true);
        model.splice(model.indexOf(leaving), 1);
      }
      expect(q.size).toBe(model.length);
      expect(q.newest()).toBe(model.at(-1));
    }
    expect(seqsOf(q)).toEqual(model);
    for (const seq of [model[0], model[17], model.at(-1)]) expect(q.get(seq ?? -1)?.envelope.seq).toBe(seq);
    // Seqs that left, or never came, are not found.
    expect(q.get(0)).toBeUndefined();
    expect(q.delete(next)).toBe(false);
    for (const seq of [...model]) q.delete(seq);
    expect(q.size).toBe(0);
    expect(q.newest()).toBeUndefined();
    expect(seqsOf(q)).toEqual([]);
  });

  it('gives back the room a burst took once it is empty, and works on as before', () => {
    const q = new SeqQueue<{ envelope: { seq: number } }>();
    for (let seq = 1; seq <= 10_000; seq++) q.push(item(seq));
    expect(q.capacity).toBeGreaterThanOrEqual(10_000);
    for (let seq = 1; seq < 10_000; seq++) q.delete(seq);
    // Not while one is still waiting.
    expect(q.capacity).toBeGreaterThanOrEqual(10_000);
    q.delete(10_000);
    expect(q.capacity).toBeLessThanOrEqual(64);
    for (const seq of [10_001, 10_002, 10_003, 10_004, 10_005]) q.push(item(seq));
    q.delete(10_003);
    expect(seqsOf(q)).toEqual([10_001, 10_002, 10_004, 10_005]);
    expect(q.newest()).toBe(10_005);
  });
});
