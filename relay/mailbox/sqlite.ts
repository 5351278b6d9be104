// The default RelayStore: one SQLite file (WAL) with group commit. Writes made during one
// event-loop turn are committed together in the next, and only then acknowledged, so a
// burst costs one commit, never one fsync per message. An envelope for a connected
// recipient first waits in memory (holdMs): acknowledged in that time, it never touches the
// disk, and its sender's answer says it was delivered. What waits, and the commits that write
// it: write-behind.ts; where seqs come from: seq-blocks.ts.
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { basename, dirname, extname, join } from 'node:path';
import type { Envelope, ReceiptState } from '../protocol.ts';
import { base32 } from '../identity.ts';
import { boxKey, hash52 } from './bloom.ts';
import { SeenFilter } from './seen-filter.ts';
import { seqBlocks } from './seq-blocks.ts';
import { prepareQueries, readRow, toUser, type RecordRow, type StoredRow } from './sqlite-rows.ts';
import { createWriteBehind, storageError, type PendingRow } from './write-behind.ts';
import { openRecordFile } from './record-file.ts';
import { silentLogger, type Logger } from '../log.ts';
import { migrate, tune } from '../sqlite/migrate.ts';
import { startCheckpointer, type Checkpointer } from '../sqlite/checkpointer.ts';
import { relayMigrations } from './migrations.ts';
import { StorageError, deliveredIds, digestOf, recordKey, envelopeBytes, type AcceptOutcome, type IncomingMessage, type Quota, type RelayStore, type Settled } from './store.ts';

export interface SqliteStoreOptions {
  /**
   * Database file; created with its folder's permissions if missing. New idempotency records
   * go into a second file beside it, written by a worker thread: `relay.db` ->
   * `relay-records.db` (record-file.ts).
   */
  path: string;
  /** 'normal' (default) survives a process crash; 'full' also survives power loss, at a cost. */
  durability?: 'normal' | 'full';
  /** How long (sender, id) records are kept for idempotent retries. Default 30 days. */
  dedupRetentionMs?: number;
  /**
   * How long an envelope for a connected recipient waits in memory for their acknowledgement
   * before it is written. Default 1,000 ms. Its sender is answered on the acknowledgement or
   * on the write, whichever comes first, so a crash meanwhile loses nothing: the sender,
   * unanswered, sends it again.
   */
  holdMs?: number;
  /**
   * An operator's cap on the main database's size, in pages (4 KiB each by default): SQLite's
   * `max_page_count`. A write that would grow the file past it fails as on a full disk:
   * senders get E_STORAGE and retry later, and nothing acknowledged is lost. It cannot be set
   * below the database's current size (SQLite then keeps the current size). Default: no cap.
   */
  maxPageCount?: number;
  /**
   * How many (sender, id) records the filter that spares new messages a read of the records
   * table is first sized for (1.2 bytes each); it grows by itself. Default 1,048,576, or twice
   * the records on disk.
   */
  expectedRecords?: number;
  now?: () => number;
  log?: Logger;
}

/** `relay.db` -> `relay-records.db`, in the same folder. */
export function recordFilePath(path: string): string {
  const ext = extname(path);
  return join(dirname(path), `${basename(path, ext)}-records${ext}`);
}

export function openSqliteStore(options: SqliteStoreOptions): RelayStore {
  const now = options.now ?? Date.now;
  const log = options.log ?? silentLogger;
  const retention = options.dedupRetentionMs ?? 30 * 24 * 3600 * 1000;
  const holdMs = options.holdMs ?? 1000;
  const db = new Database(options.path);
  try {
    tune(db, options.durability ?? 'normal', options.maxPageCount);
    migrate(db, relayMigrations);
  } catch (error) {
    db.close();
    throw error;
  }

  const q = prepareQueries(db);
  let records: ReturnType<typeof openRecordFile>;
  try {
    records = openRecordFile({ path: recordFilePath(options.path), durability: options.durability ?? 'normal', log });
  } catch (error) {
    db.close();
    throw error;
  }

  // Start-up steps that can fail close what is open so far (the checkpointer, once started).
  let started: Checkpointer | undefined;
  const opening = <T>(step: () => T): T => {
    try {
      return step();
    } catch (error) {
      void started?.close();
      void records.close();
      db.close();
      throw error;
    }
  };

  const setup = db.transaction(() => {
    let id = q.getMeta.get('relay_id')?.value;
    if (typeof id !== 'string') q.setMeta.run('relay_id', (id = base32(randomBytes(16))));
    let secret = q.getMeta.get('secret')?.value;
    if (!Buffer.isBuffer(secret)) q.setMeta.run('secret', (secret = randomBytes(32)));
    // Left at 0 until close() has every record in the record file (see rebuildRecords).
    const clean = q.getMeta.get('records_filed')?.value === 1;
    q.setMeta.run('records_filed', 0);
    // Any seq up to the stored block's end may have been handed out before a crash: go on after it.
    return { relayId: id, secret, clean, seq: Math.max(Number(q.getMeta.get('seq')?.value ?? 0), q.maxSeq.get()?.m ?? 0, records.q.maxSentSeq.get()?.m ?? 0) };
  });
  const meta = opening(() => setup.immediate());
  const prune = () => {
    q.pruneSent.run(now() - retention);
    records.prune(now() - retention);
  };

  const checkpoints = (started = opening(() => startCheckpointer(db, log)));
  const writes = createWriteBehind({ db, q, holdMs, records, log, committed: checkpoints.committed });
  // The records on file: relay.db's (written by versions before the record file) and the record file's.
  const files = [q, records.q];
  const findRecord = (key: number, sender: string, id: string) => {
    for (const f of files) {
      const found = f.getSent.get(key, sender, id);
      if (found) return found;
    }
    return undefined;
  };
  const seen = opening(() => new SeenFilter(
    files.map((f) => ({
      count: () => f.countSent.get()?.n ?? 0,
      all: function* () {
        for (const [key] of f.allSent.iterate()) yield key;
      },
      after: (after, limit) => f.sentAfter.all(after, limit),
    })),
    // Answered but not written yet (read only once the filter grows).
    () => writes.unwrittenRecordHashes(),
    options.expectedRecords ?? 1_048_576,
    log,
  ));
  /**
   * A message's record goes to the record file after the message is committed: a process that
   * died in between left the row without its record (a retry would be delivered again), and
   * a row is only removed once its record is filed (fileNow). After such an end (no clean
   * close), every message row in the mailbox gets its record back from what the row holds.
   */
  const rebuildRecords = () => {
    const rows: RecordRow[] = [];
    for (const r of q.messageRows.iterate()) {
      if (typeof r.sender !== 'string' || typeof r.msg_id !== 'string' || typeof r.body !== 'string' || typeof r.at !== 'number') continue; // unreadable: set aside when read
      const hash = hash52(recordKey(r.sender, r.msg_id));
      if (seen.mightHave(hash) && findRecord(hash, r.sender, r.msg_id)) continue;
      rows.push([r.seq, hash, r.sender, r.msg_id, digestOf(r.recipient, r.body), r.at, null]);
      seen.add(hash);
    }
    if (rows.length === 0) return;
    records.writeHere(rows);
    log.warn('rebuilt idempotency records of messages in the mailbox (the relay did not stop cleanly)', { records: rows.length });
  };
  // Also when the record file is new: deleted, or not restored with relay.db from a backup.
  if (!meta.clean || records.created) opening(rebuildRecords);
  // After the rebuild: this thread's writes to the record file must not wait for the worker's prune.
  opening(prune);
  const seqs = seqBlocks(meta.seq, (end) => void q.setMeta.run('seq', end), log);
  let closed = false;
  let closing: Promise<void> = Promise.resolve();

  const pruneTimer = setInterval(() => {
    try {
      prune();
      checkpoints.committed();
      seen.pruned();
    } catch (error) {
      log.warn('could not prune idempotency records', { error: String(error) });
    }
  }, 3600_000);
  pruneTimer.unref();

  /** How a message on record settled, as a retry of it is answered. */
  const settledAs = (deliveredAt: number | null): Promise<Settled> => Promise.resolve(deliveredAt === null ? {} : { deliveredAt });

  const guard = <T>(work: () => T | Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(new StorageError('E_UNAVAILABLE', 'relay store is closed'));
    try {
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(storageError(error));
    }
  };

  const postReceipt = (to: string, r: { from: string; state: ReceiptState; ids: string[]; at: number }, live = false, keep = false) => {
    const envelope: Envelope = { seq: seqs.next(), kind: 'receipt', from: r.from, state: r.state, ids: r.ids, at: r.at };
    const row = writes.enqueue(to, envelope, JSON.stringify(r.ids).length, live, keep);
    return { seq: envelope.seq, durable: row.done.promise };
  };

  /**
   * Rows that cannot be read are moved to the dead letters: left in the mailbox, they would fail
   * every page of it, and the recipient would get nothing more. Logged without their contents.
   */
  const setAside = (recipient: string, rows: readonly StoredRow[]) => {
    writes.setAside(recipient, rows, now());
    log.error('mailbox: set aside rows that cannot be read', { recipient, count: rows.length, table: 'dead_letters' });
  };

  const page = (recipient: string, afterSeq: number, limit: number, bytes = Infinity): Envelope[] => {
    let written: Envelope[] = [];
    /** The disk was read up to this seq only (a full page, or its bytes used up): nothing newer may join. */
    let readTo = Infinity;
    // Read again after setting aside rows that cannot be read: they took places in the page.
    while (writes.onDisk(recipient) > 0) {
      written = [];
      readTo = Infinity;
      const unreadable: StoredRow[] = [];
      const skip = writes.removedFor(recipient);
      let used = 0;
      // Row by row, so that a page of large bodies reads no more than it can send.
      for (const r of q.page.iterate(boxKey(recipient), recipient, afterSeq, limit + skip)) {
        if (writes.isRemoved(r.seq)) continue;
        const envelope = readRow(r)?.envelope;
        if (!envelope) {
          unreadable.push(r);
          continue;
        }
        used += envelopeBytes(envelope);
        if (written.length >= limit || (written.length > 0 && used > bytes)) {
          readTo = written.at(-1)?.seq ?? afterSeq;
          break;
        }
        written.push(envelope);
      }
      if (unreadable.length === 0) break;
      setAside(recipient, unreadable);
    }
    // Merged in seq order with what waits in memory (a held envelope may be older than a written one).
    const out: Envelope[] = [];
    let i = 0;
    for (const row of writes.waitingFor(recipient) ?? []) {
      if (row.envelope.seq <= afterSeq) continue;
      if (row.envelope.seq > readTo) break;
      while (i < written.length && (written[i]?.seq ?? 0) < row.envelope.seq && out.length < limit) out.push(written[i++] as Envelope);
      if (out.length >= limit) break;
      out.push(row.envelope);
    }
    while (i < written.length && out.length < limit) out.push(written[i++] as Envelope);
    return out;
  };

  const store: RelayStore = {
    relayId: meta.relayId,
    secret: meta.secret,

    saveUser: (user) =>
      guard(async () => {
        await writes.later(() => q.saveUser.run({ id: user.id, name: user.name, id_key: user.idKey, ka_key: user.kaKey, ka_sig: user.kaSig, first_seen: user.lastSeen, last_seen: user.lastSeen, rev: user.rev }));
        return user.rev;
      }),
    setLastSeen: (id, lastSeen, rev) =>
      guard(async () => {
        await writes.later(() => q.setLastSeen.run(lastSeen, rev, id));
      }),
    getUsers: (ids) => guard(() => q.getUsers.all(JSON.stringify(ids)).map(toUser)),
    pageUsers: (after, limit) => guard(() => q.pageUsers.all(after ?? '', limit).map(toUser)),
    changedUsers: (since, limit) => guard(() => q.changedUsers.all(since, limit).map(toUser)),

    accept: (m: IncomingMessage, limit: Quota, live = false) =>
      guard((): AcceptOutcome => {
        const hash = hash52(recordKey(m.from, m.id));
        // The filter holds the records not written yet too: a new id (nearly every one) is
        // told apart without a look at them or at the files.
        if (seen.mightHave(hash)) {
          const inFlight = writes.unwrittenRecord(hash, m.from, m.id);
          if (inFlight) {
            if (inFlight.digest !== m.digest) return { kind: 'conflict' };
            return { kind: 'duplicate', seq: inFlight.seq, durable: inFlight.pending ?? settledAs(inFlight.deliveredAt) };
          }
          const earlier = findRecord(hash, m.from, m.id);
          if (earlier) {
            if (earlier.digest !== m.digest) return { kind: 'conflict' };
            return { kind: 'duplicate', seq: earlier.seq, durable: settledAs(earlier.delivered_at) };
          }
        }
        const size = Buffer.byteLength(m.body);
        const box = writes.boxOf(m.to);
        if (box.messages + 1 > limit.messages || box.bytes + size > limit.bytes) return { kind: 'full' };
        const prev = writes.lastWaiting(m.to);
        const envelope: Envelope = { seq: seqs.next(), kind: 'message', id: m.id, from: m.from, body: m.body, sentAt: m.sentAt, at: m.at };
        const row = writes.enqueue(m.to, envelope, size, live);
        writes.adjustQuota(m.to, envelope, size, 1);
        writes.record(row, hash, m.from, m.id, m.digest, m.at);
        seen.add(hash);
        return { kind: 'accepted', seq: envelope.seq, durable: row.done.promise, ...(prev === undefined ? {} : { prev }) };
      }),

    postReceipt: (to, r, live) => guard(() => postReceipt(to, r, live)),

    page: (recipient, afterSeq, limit, bytes) => guard(() => page(recipient, afterSeq, limit, bytes)),

    // Removals and the receipts they cause are queued in the same turn, so one commit carries
    // both; and nothing changes before the receipts' seqs are sure, so a failure leaves the
    // envelopes in place for the recipient's next acknowledgement.
    acknowledge: (recipient, seqList, at, next) =>
      guard(() => {
        const taken: PendingRow[] = [];
        const stored: { envelope: Envelope; size: number }[] = [];
        const unreadable: StoredRow[] = [];
        for (const s of new Set(seqList)) {
          const row = writes.waitingFor(recipient)?.get(s);
          if (row) {
            taken.push(row);
            continue;
          }
          if (writes.isRemoved(s)) continue;
          const found = q.bySeq.get(s);
          if (!found || found.recipient !== recipient) continue;
          const read = readRow(found);
          if (read) stored.push(read);
          else unreadable.push(found); // spoilt since it was sent
        }
        // A row goes only once its record is filed: it is what the record would be rebuilt from.
        writes.fileNow(stored.map((r) => r.envelope));
        if (unreadable.length > 0) setAside(recipient, unreadable);
        const bySender = deliveredIds(stored.map((r) => r.envelope));
        seqs.ensure(bySender.size);
        for (const row of taken) writes.take(row, at);
        for (const { envelope, size } of stored) {
          writes.remove(envelope.seq, recipient);
          writes.adjustQuota(recipient, envelope, size, -1);
        }
        const count = taken.length + stored.length;
        if (count > 0) writes.flushLazily();
        for (const [sender, ids] of bySender) postReceipt(sender, { from: recipient, state: 'delivered', ids, at }, false, true);
        return { removed: count, receiptsFor: [...bySender.keys()], ...(next ? { next: page(recipient, next.afterSeq, next.limit, next.bytes) } : {}) };
      }),

    close: () => {
      if (!closed) {
        closed = true;
        seen.close();
        clearInterval(pruneTimer);
        closing = writes.close().then(async (filed) => {
          try {
            q.setMeta.run('records_filed', filed ? 1 : 0);
          } finally {
            // The worker's connection first: the last one to close checkpoints what is left.
            await checkpoints.close();
            db.close();
          }
        });
      }
      return closing;
    },
  };
  return store;
}
