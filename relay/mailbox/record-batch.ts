// The (sender, id) idempotency records on their way to the record file (record-file.ts), kept
// in batches of columns with a hash index each, rather than as an object, a key string and a
// map entry per message: those lived the quarter second to the worker's commit, long enough
// to be promoted by every young collection, and cost half the store's time per message.
//
// A batch takes the records of the messages accepted for up to GROUP_MS or GROUP_ROWS of them,
// in seq order. A record is written only once its message is (should the process die first,
// the store rebuilds it from the mailbox row) or acknowledged if it never was, so a closed
// batch is handed over once every message in it has settled: written, taken, or failed (a
// failed message's record is dropped, so that the sender's retry is a new message). Until the
// record file says a batch is on file, its records are found here.
import type { RecordRow } from './sqlite-rows.ts';
import type { Settled } from './store.ts';

/** What the record file writes: records in columns, as posted to its worker. */
export interface RecordColumns {
  count: number;
  seq: Float64Array;
  /** hash52(recordKey(sender, id)): the index column. */
  hash: Float64Array;
  at: Float64Array;
  /** NaN: not delivered when the record was made. */
  deliveredAt: Float64Array;
  sender: string[];
  id: string[];
  digest: string[];
}

type Columns = Omit<RecordColumns, 'count'>;

/** A delivery time as its column holds it (NaN), as a row holds it (null). */
const deliveredAt = (t: number): number | null => (Number.isNaN(t) ? null : t);

/** The record at place `i` of these columns, as a row. */
const rowAt = (c: Columns, i: number): RecordRow => [c.seq[i] as number, c.hash[i] as number, c.sender[i] as string, c.id[i] as string, c.digest[i] as string, c.at[i] as number, deliveredAt(c.deliveredAt[i] as number)];

/** The rows of these columns, as the record file's connection inserts them. */
export function recordRows(c: RecordColumns): RecordRow[] {
  return Array.from({ length: c.count }, (_, i) => rowAt(c, i));
}

/** Columns holding these rows. */
export function recordColumns(rows: readonly RecordRow[]): RecordColumns {
  const n = rows.length;
  const c: RecordColumns = { count: n, seq: new Float64Array(n), hash: new Float64Array(n), at: new Float64Array(n), deliveredAt: new Float64Array(n), sender: [], id: [], digest: [] };
  rows.forEach(([seq, hash, sender, id, digest, at, deliveredAt], i) => {
    c.seq[i] = seq;
    c.hash[i] = hash;
    c.at[i] = at;
    c.deliveredAt[i] = deliveredAt ?? NaN;
    c.sender.push(sender);
    c.id.push(id);
    c.digest.push(digest);
  });
  return c;
}

/** A batch is handed over once it holds this many records, or this long after its first. */
export const GROUP_ROWS = 32_768;
export const GROUP_MS = 250;
const FIRST_CAPACITY = 1_024;

/** What holds a message's record: its batch, and its place there (set by PendingRecords.add). */
export interface Recorded {
  batch: RecordBatch | undefined;
  recordIndex: number;
}

/** A record found by its key: what a retry of its message is answered from. */
export interface FoundRecord {
  seq: number;
  digest: string;
  /** Its message is not settled yet: a retry waits for this. */
  pending: Promise<Settled> | undefined;
  deliveredAt: number | null;
}

export class RecordBatch {
  count = 0;
  /** Records whose message has not settled yet. */
  unsettled = 0;
  /** Open: taking records; closed: handed over once unsettled is 0; then handed over. */
  state: 'open' | 'closed' | 'handed over' = 'open';
  /** Its records: the numbers' arrays are as long as it has room for, the others `count`. */
  private readonly c: Columns = { seq: new Float64Array(FIRST_CAPACITY), hash: new Float64Array(FIRST_CAPACITY), at: new Float64Array(FIRST_CAPACITY), deliveredAt: new Float64Array(FIRST_CAPACITY), sender: [], id: [], digest: [] };
  /** While a message is not settled: what settles it (a retry meanwhile waits for it). */
  private readonly pending: (Promise<Settled> | undefined)[] = [];
  /** Records of failed messages, never to be written (set on the first). */
  private dropped: Uint8Array | undefined;
  /** Open addressing on the hash's low bits: a record's index + 1, 0 for none. */
  private slots = new Int32Array(2 * FIRST_CAPACITY);

  get full(): boolean {
    return this.count >= GROUP_ROWS;
  }

  add(seq: number, hash: number, sender: string, id: string, digest: string, at: number, pending: Promise<Settled>): number {
    if (this.count === this.c.seq.length) this.grow();
    const i = this.count++;
    const c = this.c;
    c.seq[i] = seq;
    c.hash[i] = hash;
    c.at[i] = at;
    c.deliveredAt[i] = NaN;
    c.sender.push(sender);
    c.id.push(id);
    c.digest.push(digest);
    this.pending.push(pending);
    this.unsettled += 1;
    this.index(i);
    return i;
  }

  /** Its message was written (or, with `deliveredAt`, acknowledged before it was). */
  settle(i: number, deliveredAt?: number): void {
    if (deliveredAt !== undefined) this.c.deliveredAt[i] = deliveredAt;
    this.pending[i] = undefined;
    this.unsettled -= 1;
  }

  /** Its message failed: the record is not written, and a retry is a new message. */
  drop(i: number): void {
    (this.dropped ??= new Uint8Array(this.c.seq.length))[i] = 1;
    this.settle(i);
  }

  find(hash: number, sender: string, id: string): FoundRecord | undefined {
    const c = this.c;
    const mask = this.slots.length - 1;
    for (let p = hash >>> 0; ; p++) {
      const slot = this.slots[p & mask] as number;
      if (slot === 0) return undefined;
      const i = slot - 1;
      if (c.hash[i] === hash && c.sender[i] === sender && c.id[i] === id && this.dropped?.[i] !== 1) {
        return { seq: c.seq[i] as number, digest: c.digest[i] as string, pending: this.pending[i], deliveredAt: deliveredAt(c.deliveredAt[i] as number) };
      }
    }
  }

  /** The record of the message with this seq, unless it was dropped. */
  bySeq(seq: number): RecordRow | undefined {
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = this.c.seq[mid] as number;
      if (s < seq) lo = mid + 1;
      else if (s > seq) hi = mid - 1;
      else return this.dropped?.[mid] === 1 ? undefined : rowAt(this.c, mid);
    }
    return undefined;
  }

  /** Whether `seq` is within this batch's seqs (it holds only those of its messages). */
  spans(seq: number): boolean {
    return this.count > 0 && seq >= (this.c.seq[0] as number) && seq <= (this.c.seq[this.count - 1] as number);
  }

  *hashes(): Iterable<number> {
    for (let i = 0; i < this.count; i++) yield this.c.hash[i] as number;
  }

  /** Its records to write, copied (the batch stays findable until they are on file). */
  columns(): RecordColumns {
    const { c, count: n, dropped } = this;
    if (!dropped) return { count: n, seq: c.seq.slice(0, n), hash: c.hash.slice(0, n), at: c.at.slice(0, n), deliveredAt: c.deliveredAt.slice(0, n), sender: c.sender, id: c.id, digest: c.digest };
    const rows: RecordRow[] = [];
    for (let i = 0; i < n; i++) if (dropped[i] !== 1) rows.push(rowAt(c, i));
    return recordColumns(rows);
  }

  private index(i: number): void {
    const mask = this.slots.length - 1;
    let p = (this.c.hash[i] as number) >>> 0;
    while (this.slots[p & mask] !== 0) p++;
    this.slots[p & mask] = i + 1;
  }

  private grow(): void {
    const capacity = this.c.seq.length * 2;
    const widen = (a: Float64Array) => {
      const b = new Float64Array(capacity);
      b.set(a);
      return b;
    };
    const c = this.c;
    c.seq = widen(c.seq);
    c.hash = widen(c.hash);
    c.at = widen(c.at);
    c.deliveredAt = widen(c.deliveredAt);
    if (this.dropped) {
      const dropped = new Uint8Array(capacity);
      dropped.set(this.dropped);
      this.dropped = dropped;
    }
    this.slots = new Int32Array(2 * capacity);
    for (let i = 0; i < this.count; i++) this.index(i);
  }
}

/**
 * The batches not on file yet, oldest first. `post` hands a batch's records to the record
 * file, which calls `written` once they are there.
 */
export class PendingRecords {
  private live: RecordBatch[] = [];
  private open: RecordBatch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly post: (columns: RecordColumns, written: () => void) => void;

  constructor(post: (columns: RecordColumns, written: () => void) => void) {
    this.post = post;
  }

  /** Records the message of `holder`, which is settled with settle() or drop(). */
  add(holder: Recorded, seq: number, hash: number, sender: string, id: string, digest: string, at: number, pending: Promise<Settled>): void {
    let batch = this.open;
    if (!batch) {
      this.open = batch = new RecordBatch();
      this.live.push(batch);
      this.timer = setTimeout(() => this.close(), GROUP_MS).unref();
    }
    holder.recordIndex = batch.add(seq, hash, sender, id, digest, at, pending);
    holder.batch = batch;
    if (batch.full) this.close();
  }

  /** The holder's message was written, or (with `deliveredAt`) acknowledged before it was. */
  settle(holder: Recorded, deliveredAt?: number): void {
    const batch = holder.batch;
    if (!batch) return;
    holder.batch = undefined;
    batch.settle(holder.recordIndex, deliveredAt);
    this.handOver(batch);
  }

  /** The holder's message failed: its record is never written. */
  drop(holder: Recorded): void {
    const batch = holder.batch;
    if (!batch) return;
    holder.batch = undefined;
    batch.drop(holder.recordIndex);
    this.handOver(batch);
  }

  /** The record of (sender, id) not on file yet, if any. */
  find(hash: number, sender: string, id: string): FoundRecord | undefined {
    for (let b = this.live.length - 1; b >= 0; b--) {
      const found = (this.live[b] as RecordBatch).find(hash, sender, id);
      if (found) return found;
    }
    return undefined;
  }

  /** The record of the message with this seq, if it is not on file yet. */
  bySeq(seq: number): RecordRow | undefined {
    for (const batch of this.live) if (batch.spans(seq)) return batch.bySeq(seq);
    return undefined;
  }

  *hashes(): Iterable<number> {
    for (const batch of this.live) yield* batch.hashes();
  }

  /** True once every record handed over is on file. */
  get empty(): boolean {
    return this.live.length === 0;
  }

  /** No more records join the open batch; it is handed over once its messages have settled. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.open;
    this.open = undefined;
    if (!batch) return;
    batch.state = 'closed';
    this.handOver(batch);
  }

  private handOver(batch: RecordBatch): void {
    if (batch.state !== 'closed' || batch.unsettled > 0) return;
    batch.state = 'handed over';
    this.post(batch.columns(), () => {
      this.live = this.live.filter((b) => b !== batch);
    });
  }
}
