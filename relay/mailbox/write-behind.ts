// What the SQLite store (relay/mailbox/sqlite.ts) has taken on but not written yet, and the
// group commit that writes it. Envelopes wait here for the next commit, or, for a connected
// recipient, in memory for holdMs first; removals wait for a commit that keeps nobody waiting;
// the directory's writes go with the next commit too. (sender, id) records go to the record
// file (record-file.ts), written by a worker thread, in batches (record-batch.ts): a message's
// record once the message is committed (should the process die first, the store rebuilds it
// from the mailbox row), or once it is acknowledged if it never was. Also the per-recipient
// counts the quota and paging read, which each commit keeps in step with the disk.
import type { Database } from 'better-sqlite3';
import type { Envelope } from '../protocol.ts';
import type { Logger } from '../log.ts';
import { boxKey } from './bloom.ts';
import type { RecordFile } from './record-file.ts';
import { PendingRecords, type FoundRecord, type Recorded } from './record-batch.ts';
import { SeqQueue } from './seq-queue.ts';
import { toRow, type Queries, type RecordRow, type StoredRow } from './sqlite-rows.ts';
import { StorageError, deferred, type Deferred } from './store.ts';

/** An envelope not written yet; a message's record is in a batch until it settles (Recorded). */
export interface PendingRow extends Recorded {
  recipient: string;
  envelope: Envelope;
  size: number;
  done: Deferred;
  /** Held in memory until then, on performance.now() (0: written with the next commit). */
  due: number;
  /** Its place in the queue of held rows while it is there (see `held`), else -1. */
  slot: number;
  /** Acknowledged before it was written: it never will be. */
  taken: boolean;
  /**
   * A delivered receipt that a removal caused: nobody would post it again, so a failed commit
   * keeps it queued, like its removal, instead of failing it.
   */
  keep: boolean;
}

/** A recipient's envelopes not written yet (see pendingFor). */
export interface WaitingRows extends Iterable<PendingRow> {
  get(seq: number): PendingRow | undefined;
}

/** How long removals and records that keep nobody waiting may wait for a commit, ms. */
const LAZY_FLUSH_MS = 50;

export const storageError = (cause: unknown) => new StorageError('E_STORAGE', `relay storage failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });

export interface WriteBehindOptions {
  db: Database;
  q: Queries;
  /** How long an envelope for a connected recipient waits in memory (see SqliteStoreOptions). */
  holdMs: number;
  /** Where the (sender, id) records go. */
  records: RecordFile;
  log: Logger;
  /** Called after each commit (relay/sqlite/checkpointer.ts). */
  committed?: () => void;
}

export type WriteBehind = ReturnType<typeof createWriteBehind>;

export function createWriteBehind({ db, q, holdMs, records, log, committed }: WriteBehindOptions) {
  /**
   * Every envelope not written yet, per recipient, in seq order. A recipient's queue is kept
   * once made, empty or not, as its entry in `boxes` is.
   */
  const pendingFor = new Map<string, SeqQueue<PendingRow>>();
  /** Written with the next commit. */
  let toWrite: PendingRow[] = [];
  /**
   * Waiting in memory for their recipient, in due order (holdMs is the same for all): a queue,
   * `held[i]` at place `heldBase + i` (a row's slot). A row that leaves it otherwise than from
   * the front (taken by its recipient) leaves a hole, so that nothing here keeps it alive. (It
   * was a map by seq: two lookups a message in a map of up to a second's messages.)
   */
  let held: (PendingRow | undefined)[] = [];
  let heldBase = 0;
  /** The queue's front: held[heldFront] is the first place that may hold a row. */
  let heldFront = 0;
  /** (sender, id) records not in the record file yet. */
  const pendingRecords = new PendingRecords((columns, written) => records.write(columns, written));
  /** Other writes (the directory's) for the next commit, each settled by it. */
  let others: { write: () => void; done: Deferred }[] = [];
  /** Written rows acknowledged since the last commit: seq -> recipient. */
  const pendingDeletes = new Map<number, string>();
  const deletesFor = new Map<string, number>();
  /** Per recipient, loaded on first use: rows written (the mailbox on disk), and the quota's count of waiting messages. */
  const boxes = new Map<string, { rows: number; messages: number; bytes: number }>();
  let flushScheduled = false;
  let holdTimer: NodeJS.Timeout | undefined;
  let lazyTimer: NodeJS.Timeout | undefined;
  let closed = false;

  const boxOf = (recipient: string) => {
    let box = boxes.get(recipient);
    if (!box) boxes.set(recipient, (box = { ...(q.box.get(boxKey(recipient), recipient) ?? { rows: 0, messages: 0, bytes: 0 }) }));
    return box;
  };
  const adjustQuota = (recipient: string, envelope: Envelope, size: number, sign: 1 | -1) => {
    const box = envelope.kind === 'message' ? boxes.get(recipient) : undefined;
    if (box) {
      box.messages += sign;
      box.bytes += sign * size;
    }
  };
  /** Rows on disk for the recipient, not counting those already acknowledged. */
  const onDisk = (recipient: string) => boxOf(recipient).rows - (deletesFor.get(recipient) ?? 0);

  const enqueue = (recipient: string, envelope: Envelope, size: number, live: boolean, keep = false): PendingRow => {
    const row: PendingRow = { recipient, envelope, size, done: deferred(), due: live && holdMs > 0 ? performance.now() + holdMs : 0, slot: -1, taken: false, keep, batch: undefined, recordIndex: -1 };
    let mine = pendingFor.get(recipient);
    if (!mine) pendingFor.set(recipient, (mine = new SeqQueue()));
    mine.push(row);
    if (row.due === 0) {
      toWrite.push(row);
      scheduleFlush();
    } else {
      row.slot = heldBase + held.length;
      held.push(row);
      holdTimer ??= setTimeout(onHoldTimer, holdMs).unref();
    }
    return row;
  };
  const dequeue = (row: PendingRow) => {
    if (row.slot >= 0) {
      held[row.slot - heldBase] = undefined;
      row.slot = -1;
    }
    pendingFor.get(row.recipient)?.delete(row.envelope.seq);
  };

  function onHoldTimer(): void {
    holdTimer = undefined;
    flush();
  }

  // One transaction: removals, and the receipts they caused, commit together or not at all.
  const commit = db.transaction((deletes: number[], rows: PendingRow[], writes: (() => void)[]) => {
    for (const s of deletes) q.deleteRow.run(s);
    for (const row of rows) {
      const r = toRow(row.recipient, row.envelope, row.size);
      q.insertRow.run(r.seq, r.recipient, boxKey(r.recipient), r.kind, r.sender, r.msg_id, r.body, r.sent_at, r.at, r.size);
    }
    for (const write of writes) write();
  });

  function flush(force = false): void {
    flushScheduled = false;
    // Held rows whose time is up are written now.
    // Holds are timed on the monotonic clock: a wall clock stepped back must not keep a
    // message (and every one behind it) unwritten and its sender unanswered.
    const t = performance.now();
    for (; heldFront < held.length; heldFront++) {
      const row = held[heldFront];
      if (!row) continue;
      if (!force && row.due > t) break;
      held[heldFront] = undefined;
      row.slot = -1;
      toWrite.push(row);
    }
    // The places passed go once they are half the queue.
    if (heldFront > 0 && heldFront * 2 >= held.length) {
      held = held.slice(heldFront);
      heldBase += heldFront;
      heldFront = 0;
    }
    const first = held[heldFront];
    if (first && !holdTimer && !closed) holdTimer = setTimeout(onHoldTimer, Math.max(1, first.due - t)).unref();
    const rows = toWrite.filter((row) => !row.taken);
    toWrite = [];
    const extra = others;
    others = [];
    const deletes = [...pendingDeletes];
    if (deletes.length === 0 && rows.length === 0 && extra.length === 0) return;
    try {
      commit(deletes.map(([s]) => s), rows, extra.map((w) => w.write));
      for (const w of extra) w.done.resolve({});
      for (const row of rows) dequeue(row);
      pendingDeletes.clear();
      deletesFor.clear();
      for (const [, recipient] of deletes) {
        const box = boxes.get(recipient);
        if (box) box.rows -= 1;
      }
      for (const row of rows) {
        const box = boxes.get(row.recipient);
        if (box) box.rows += 1;
        pendingRecords.settle(row);
        row.done.resolve({});
      }
      committed?.();
    } catch (error) {
      const failure = storageError(error);
      log.error('mailbox commit failed; senders get E_STORAGE', { rows: rows.length, error: String(error) });
      for (const w of extra) w.done.reject(failure);
      const fail = (row: PendingRow) => {
        dequeue(row);
        adjustQuota(row.recipient, row.envelope, row.size, -1);
        // Its sender is told it failed: a retry is a new message.
        pendingRecords.drop(row);
        row.done.reject(failure);
      };
      /** Conversations (sender to recipient) that lost a message here. */
      const broken = new Set<string>();
      for (const row of rows) {
        if (row.keep) continue;
        fail(row);
        if (row.envelope.kind === 'message') broken.add(`${row.envelope.from} ${row.recipient}`);
      }
      // Their later messages still held fail too: written, they would come before the resend of
      // the one that failed, out of the conversation's order (PROTOCOL.md 6.2a, 7.3).
      for (let i = heldFront; broken.size > 0 && i < held.length; i++) {
        const row = held[i];
        if (row && !row.taken && row.envelope.kind === 'message' && broken.has(`${row.envelope.from} ${row.recipient}`)) fail(row);
      }
      // Removals and the receipts they caused are tried again: nothing is lost by a late write.
      toWrite.unshift(...rows.filter((row) => row.keep));
      if (!closed && (pendingDeletes.size > 0 || toWrite.length > 0)) setTimeout(scheduleFlush, 100).unref();
    }
  }

  /** Soon (the next turn) when someone waits for the commit; `lazily` when nobody does. */
  function scheduleFlush(lazily = false): void {
    if (flushScheduled || closed) return;
    if (lazily) {
      lazyTimer ??= setTimeout(() => {
        lazyTimer = undefined;
        if (!flushScheduled) flush();
      }, LAZY_FLUSH_MS).unref();
      return;
    }
    flushScheduled = true;
    setImmediate(flush);
  }

  return {
    boxOf,
    adjustQuota,
    onDisk,
    enqueue,
    /** Envelopes not written yet for `recipient`, in seq order. */
    waitingFor: (recipient: string): WaitingRows | undefined => pendingFor.get(recipient),
    /** The seq of the newest envelope waiting for `recipient`, when the mailbox on disk is empty (see Offer). */
    lastWaiting: (recipient: string): number | undefined => {
      if (onDisk(recipient) > 0) return undefined;
      return pendingFor.get(recipient)?.newest() ?? 0;
    },
    /** The (sender, id) record not in the record file yet, by its hash52(recordKey()). */
    unwrittenRecord: (hash: number, sender: string, id: string): FoundRecord | undefined => pendingRecords.find(hash, sender, id),
    /** The hash52() keys of the records not in the record file yet. */
    unwrittenRecordHashes: (): Iterable<number> => pendingRecords.hashes(),
    /** The record of `row`'s message, written once the row is written or taken. */
    record: (row: PendingRow, hash: number, sender: string, id: string, digest: string, at: number): void =>
      pendingRecords.add(row, row.envelope.seq, hash, sender, id, digest, at, row.done.promise),
    /**
     * Taken before it was written: it never touches the disk, and whoever waits for it (the
     * sender) is answered now, with the delivery in that answer.
     */
    take: (row: PendingRow, at: number): void => {
      dequeue(row);
      row.taken = true;
      adjustQuota(row.recipient, row.envelope, row.size, -1);
      pendingRecords.settle(row, at);
      row.done.resolve(row.envelope.kind === 'message' ? { deliveredAt: at } : {});
    },
    /**
     * Writes the records of these written envelopes that are not in the record file yet, here
     * and now, before their rows are removed; throws (and changes nothing) if it cannot.
     */
    fileNow: (envelopes: readonly Envelope[]): void => {
      const due: RecordRow[] = [];
      for (const e of envelopes) {
        const row = e.kind === 'message' ? pendingRecords.bySeq(e.seq) : undefined;
        if (row) due.push(row);
      }
      // (Written again by the worker when their batch is: a second insert changes nothing.)
      if (due.length > 0) records.writeHere(due);
    },
    /** A written row was acknowledged (its record filed: fileNow): deleted with the next commit. */
    remove: (seq: number, recipient: string): void => {
      pendingDeletes.set(seq, recipient);
      deletesFor.set(recipient, (deletesFor.get(recipient) ?? 0) + 1);
    },
    isRemoved: (seq: number): boolean => pendingDeletes.has(seq),
    /**
     * Moves written rows of the recipient's that cannot be read to the dead letters, at once
     * (a page read before the next commit must not meet them again), and gives back what they
     * counted for.
     */
    setAside: (recipient: string, rows: readonly StoredRow[], at: number): void => {
      const box = boxOf(recipient); // counted from the disk before they leave it
      db.transaction(() => {
        for (const r of rows) {
          q.copyToDeadLetters.run(at, r.seq);
          q.deleteRow.run(r.seq);
        }
      })();
      for (const r of rows) {
        box.rows -= 1;
        // As the quota counts them from the disk (q.box): by the kind and size they hold.
        if (r.kind !== 'message') continue;
        box.messages -= 1;
        box.bytes -= typeof r.size === 'number' ? r.size : 0;
      }
      committed?.();
    },
    /** How many of the recipient's written rows are acknowledged but not deleted yet. */
    removedFor: (recipient: string): number => deletesFor.get(recipient) ?? 0,
    /**
     * Runs `write` in the next commit; settles once that is committed. The directory's writes
     * (a user saved, a last-seen) go this way: a reconnect storm costs a commit per turn, not
     * two per connection.
     */
    later: (write: () => void): Promise<unknown> => {
      const done = deferred();
      others.push({ write, done });
      scheduleFlush();
      return done.promise;
    },
    /** Removals and the records of taken envelopes keep nobody waiting: they go with a later commit. */
    flushLazily: (): void => scheduleFlush(true),
    /**
     * Writes everything, held or not, waits for the record file to close, and stops. True when
     * every record reached it (false: the store rebuilds them from the mailbox at its next start).
     */
    close: async (): Promise<boolean> => {
      flush(true);
      pendingRecords.close();
      closed = true;
      clearTimeout(holdTimer);
      clearTimeout(lazyTimer);
      await records.close();
      return pendingRecords.empty;
    },
  };
}
