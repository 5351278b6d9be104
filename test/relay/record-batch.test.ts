// The idempotency records on their way to the record file (relay/mailbox/record-batch.ts):
// found by key and by seq until they are on file, handed over only once every message in
// their batch has settled, and a failed message's record never.
import { afterEach, describe, expect, it } from 'vitest';
import { PendingRecords, recordRows, type RecordColumns, type Recorded } from '../../relay/mailbox/record-batch.ts';
import { hash52 } from '../../relay/mailbox/bloom.ts';
import { recordKey, type Settled } from '../../relay/mailbox/store.ts';

const alice = 'a'.repeat(32);
const bob = 'b'.repeat(32);

const open: PendingRecords[] = [];
afterEach(() => {
  for (const p of open.splice(0)) p.close();
});

/** Pending records whose hand-overs are kept, each with its `written` to call. */
function pendingRecords() {
  const handed: { columns: RecordColumns; written: () => void }[] = [];
  const pending = new PendingRecords((columns, written) => handed.push({ columns, written }));
  open.push(pending);
  return { pending, handed };
}

/** A message of `sender`'s, recorded: what holds its record, and how it settles. */
function record(pending: PendingRecords, seq: number, id: string, { sender = alice, hash = hash52(recordKey(sender, id)) } = {}) {
  const holder: Recorded = { batch: undefined, recordIndex: -1 };
  const settles = Promise.resolve<Settled>({});
  pending.add(holder, seq, hash, sender, id, `d-${id}`, 1_000 + seq, settles);
  return { holder, settles };
}

describe('records on their way to the record file', () => {
  it('are found by key and by seq among thousands, and not once their batch is on file', () => {
    const { pending, handed } = pendingRecords();
    const holders = Array.from({ length: 5_000 }, (_, i) => record(pending, 10 + 2 * i, `m-${i}`).holder);
    for (const i of [0, 1, 1_023, 1_024, 2_047, 4_999]) {
      expect(pending.find(hash52(recordKey(alice, `m-${i}`)), alice, `m-${i}`)).toMatchObject({ seq: 10 + 2 * i, digest: `d-m-${i}`, deliveredAt: null });
      expect(pending.bySeq(10 + 2 * i)).toEqual([10 + 2 * i, hash52(recordKey(alice, `m-${i}`)), alice, `m-${i}`, `d-m-${i}`, 1_010 + 2 * i, null]);
    }
    // Another sender's message of the same id, and a seq between two records, are not there.
    expect(pending.find(hash52(recordKey(bob, 'm-7')), bob, 'm-7')).toBeUndefined();
    expect(pending.bySeq(11)).toBeUndefined();
    for (const h of holders) pending.settle(h);
    pending.close();
    expect(handed).toHaveLength(1);
    expect(handed[0]?.columns.count).toBe(5_000);
    expect(pending.find(hash52(recordKey(alice, 'm-7')), alice, 'm-7')).toMatchObject({ seq: 24 });
    handed[0]?.written();
    expect(pending.find(hash52(recordKey(alice, 'm-7')), alice, 'm-7')).toBeUndefined();
    expect(pending.bySeq(24)).toBeUndefined();
    expect(pending.empty).toBe(true);
  });

  it('tells apart records whose keys share a hash', () => {
    const { pending } = pendingRecords();
    for (let i = 0; i < 50; i++) record(pending, i + 1, `same-${i}`, { hash: 12_345 });
    for (const i of [0, 17, 49]) expect(pending.find(12_345, alice, `same-${i}`)).toMatchObject({ seq: i + 1, digest: `d-same-${i}` });
    expect(pending.find(12_345, alice, 'same-50')).toBeUndefined();
  });

  it('are handed over once every message of their batch has settled, with the delivery of those taken', () => {
    const { pending, handed } = pendingRecords();
    const written = record(pending, 1, 'written');
    const taken = record(pending, 2, 'taken');
    const held = record(pending, 3, 'held');
    pending.settle(written.holder);
    pending.settle(taken.holder, 5_000);
    pending.close();
    // The held message is neither written nor taken: its record may not be filed yet, nor its batch's.
    expect(handed).toEqual([]);
    expect(pending.find(hash52(recordKey(alice, 'held')), alice, 'held')?.pending).toBe(held.settles);
    expect(pending.find(hash52(recordKey(alice, 'taken')), alice, 'taken')).toMatchObject({ pending: undefined, deliveredAt: 5_000 });
    pending.settle(held.holder);
    expect(handed).toHaveLength(1);
    expect(recordRows(handed[0]!.columns).map(([seq, , , id, , , deliveredAt]) => [seq, id, deliveredAt])).toEqual([[1, 'written', null], [2, 'taken', 5_000], [3, 'held', null]]);
  });

  it('never hands over the record of a failed message, and a retry of it is a new message', () => {
    const { pending, handed } = pendingRecords();
    const failed = record(pending, 1, 'retry-me');
    const fine = record(pending, 2, 'fine');
    pending.drop(failed.holder);
    expect(pending.find(hash52(recordKey(alice, 'retry-me')), alice, 'retry-me')).toBeUndefined();
    expect(pending.bySeq(1)).toBeUndefined();
    const retried = record(pending, 3, 'retry-me');
    expect(pending.find(hash52(recordKey(alice, 'retry-me')), alice, 'retry-me')).toMatchObject({ seq: 3 });
    pending.settle(fine.holder);
    pending.settle(retried.holder);
    pending.close();
    expect(handed).toHaveLength(1);
    expect(recordRows(handed[0]!.columns).map(([seq, , , id]) => [seq, id])).toEqual([[2, 'fine'], [3, 'retry-me']]);
  });

  it('starts a new batch once one is full, and hands each over on its own', () => {
    const { pending, handed } = pendingRecords();
    const holders = Array.from({ length: 32_768 + 10 }, (_, i) => record(pending, i + 1, `full-${i}`).holder);
    for (const h of holders) pending.settle(h);
    expect(handed.map((h) => h.columns.count)).toEqual([32_768]);
    pending.close();
    expect(handed.map((h) => h.columns.count)).toEqual([32_768, 10]);
    handed[1]?.written();
    // The first is still on its way: its records are still found.
    expect(pending.find(hash52(recordKey(alice, 'full-5')), alice, 'full-5')).toMatchObject({ seq: 6 });
    expect(pending.bySeq(32_770)).toBeUndefined();
    expect(pending.empty).toBe(false);
  });
});
