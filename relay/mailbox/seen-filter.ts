// Which (sender, id) pairs may have an idempotency record: a Bloom filter over every record,
// so that a new message id (nearly every one) costs the SQLite store no read of its records.
// It grows: once full, a filter four times its size is filled from the records a slice per
// turn while the old one answers (it only says "maybe" more often), then takes its place; each
// refill reads every record, so the fewer the better (doubling from 65,536 read some four
// million keys, twice the records, in a benchmark run). After a prune it shrinks the same way.
import { BloomFilter } from './bloom.ts';
import type { Logger } from '../log.ts';

/**
 * A file of records: where the keys come from (with those answered but not written yet,
 * `pending`). A key is the record's hash52(recordKey(sender, id)), its index column.
 */
export interface RecordSource {
  count(): number;
  all(): Iterable<number>;
  /** Up to `limit` records after `seq`, in seq order, as [seq, key]. */
  after(seq: number, limit: number): [number, number][];
}

/**
 * Records read per turn while a larger filter is filled: about 1 ms of the event loop's time
 * per turn here (5,000 took 3-4 ms, up to 8, a stall every turn of the refill under load).
 */
const REFILL_ROWS = 1_000;
/** A full filter is replaced by one sized for this many times the keys it holds. */
const GROWTH = 4;

export class SeenFilter {
  private seen: BloomFilter;
  /** A larger filter being filled from the records; new keys go into both. */
  private growing: BloomFilter | undefined;
  private closed = false;
  private readonly files: readonly RecordSource[];
  private readonly pending: () => Iterable<number>;
  private readonly expected: number;
  private readonly log: Logger;

  /**
   * `pending`: the keys answered but not written yet. `expected`: how many keys it is first
   * sized for, at least (twice the records on file if more).
   */
  constructor(files: readonly RecordSource[], pending: () => Iterable<number>, expected: number, log: Logger) {
    this.files = files;
    this.pending = pending;
    this.expected = expected;
    this.log = log;
    this.seen = new BloomFilter(this.sizeFor(this.records()));
    for (const file of files) for (const key of file.all()) this.seen.add(key);
  }

  private records(): number {
    return this.files.reduce((n, file) => n + file.count(), 0);
  }

  /** False: no record has this key. True: one may have. */
  mightHave(key: number): boolean {
    return this.seen.mightHave(key);
  }

  add(key: number): void {
    this.seen.add(key);
    this.growing?.add(key);
    if (this.seen.full && !this.growing) this.refill(Math.max(this.expected, GROWTH * this.seen.count));
  }

  /** Records were pruned: a filter far larger than they need is replaced by a smaller one. */
  pruned(): void {
    const records = this.records();
    if (!this.growing && this.seen.count > 2 * this.sizeFor(records)) this.refill(this.sizeFor(records));
  }

  close(): void {
    this.closed = true;
  }

  private sizeFor(records: number): number {
    return Math.max(this.expected, 2 * records);
  }

  private refill(capacity: number): void {
    const next = new BloomFilter(capacity);
    this.growing = next;
    for (const key of this.pending()) next.add(key);
    let file = 0;
    let after = 0;
    const slice = () => {
      if (this.closed || this.growing !== next) return;
      try {
        const rows = this.files[file]?.after(after, REFILL_ROWS) ?? [];
        for (const [, key] of rows) next.add(key);
        const last = rows.at(-1);
        if (last && rows.length === REFILL_ROWS) {
          after = last[0];
          setImmediate(slice);
          return;
        }
        if (++file < this.files.length) {
          after = 0;
          setImmediate(slice);
          return;
        }
        this.seen = next;
      } catch (error) {
        // The old filter still has every key: it only answers "maybe" more often.
        this.log.warn('could not refill the dedup filter; keeping the old one', { error: String(error) });
      }
      this.growing = undefined;
    };
    setImmediate(slice);
  }
}
