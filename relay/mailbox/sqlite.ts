// The default RelayStore: one SQLite file (WAL) with group commit. Writes made during one
// event-loop turn are committed together in the next, and only then acknowledged, so a
// burst costs one commit, never one fsync per message. An envelope for a connected
// recipient first waits in memory (holdMs): acknowledged in that time, it never touches the
// disk, and its sender's answer says it was delivered.
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import type { Envelope, ReceiptState } from '../protocol.ts';
import { base32 } from '../identity.ts';
import { hash52 } from './bloom.ts';
import { SeenFilter } from './seen-filter.ts';
import { prepareQueries, toEnvelope, toRow, toUser } from './sqlite-rows.ts';
import { silentLogger, type Logger } from '../log.ts';
import { migrate, tune } from '../sqlite/migrate.ts';
import { relayMigrations } from './migrations.ts';
import { StorageError, deliveredIds, envelopeBytes, type AcceptOutcome, type IncomingMessage, type Quota, type RelayStore, type Settled } from './store.ts';

export interface SqliteStoreOptions {
  /** Database file; created with its folder's permissions if missing. */
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
   * An operator's cap on the database's size, in pages (4 KiB each by default): SQLite's
   * `max_page_count`. A write that would grow the file past it fails as on a full disk:
   * senders get E_STORAGE and retry later, and nothing acknowledged is lost. It cannot be set
   * below the database's current size (SQLite then keeps the current size). Default: no cap.
   */
  maxPageCount?: number;
  /**
   * How many (sender, id) records the filter that spares new messages a read of the records
   * table is first sized for; it grows by itself. Default 65,536, or twice the records on disk.
   */
  expectedRecords?: number;
  now?: () => number;
  log?: Logger;
}

interface Deferred {
  promise: Promise<Settled>;
  resolve: (settled: Settled) => void;
  reject: (error: Error) => void;
}

function deferred(): Deferred {
  let resolve!: (settled: Settled) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<Settled>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

interface PendingRow {
  recipient: string;
  envelope: Envelope;
  size: number;
  done: Deferred;
  /** Held in memory until then, on performance.now() (0: written with the next commit). */
  due: number;
  /** Acknowledged before it was written: it never will be. */
  taken: boolean;
  /**
   * A delivered receipt that a removal caused: nobody would post it again, so a failed commit
   * keeps it queued, like its removal, instead of failing it.
   */
  keep: boolean;
  /** A message's (sender, id) record, written with it or once it is taken. */
  record?: PendingSent;
}

/** A (sender, id) record, written once its envelope is written or acknowledged. */
interface PendingSent {
  from: string;
  id: string;
  seq: number;
  digest: string;
  at: number;
  deliveredAt: number | null;
  row: PendingRow;
}

/**
 * Seqs are handed out from a block that is on disk first (meta `seq` is the block's end), so a
 * seq given to a sender or a recipient is never given again after a crash, even when nothing
 * else about its envelope was written (taken from memory, its record not yet committed). One
 * small commit of its own per block, the first one at open.
 */
const SEQ_BLOCK = 10_000;

/** How long removals and records that keep nobody waiting may wait for a commit, ms. */
const LAZY_FLUSH_MS = 50;

/** A (sender, id) record's key in memory and in the dedup filter. */
const recordKey = (sender: string, id: string) => `${sender}\n${id}`;

const storageError = (cause: unknown) => new StorageError('E_STORAGE', `relay storage failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });

export function openSqliteStore(options: SqliteStoreOptions): RelayStore {
  const now = options.now ?? Date.now;
  const log = options.log ?? silentLogger;
  const retention = options.dedupRetentionMs ?? 30 * 24 * 3600 * 1000;
  const holdMs = options.holdMs ?? 1000;
  const db = new Database(options.path);
  try {
    tune(db, options.durability ?? 'normal', options.maxPageCount);
  } catch (error) {
    db.close();
    throw error;
  }
  migrate(db, relayMigrations);

  const q = prepareQueries(db);

  const setup = db.transaction(() => {
    let id = q.getMeta.get('relay_id')?.value;
    if (typeof id !== 'string') q.setMeta.run('relay_id', (id = base32(randomBytes(16))));
    let secret = q.getMeta.get('secret')?.value;
    if (!Buffer.isBuffer(secret)) q.setMeta.run('secret', (secret = randomBytes(32)));
    // Any seq up to the stored block's end may have been handed out before a crash: go on after it.
    return { relayId: id, secret, seq: Math.max(Number(q.getMeta.get('seq')?.value ?? 0), q.maxSeq.get()?.m ?? 0) };
  });
  const meta = setup.immediate();
  q.pruneSent.run(now() - retention);

  const seen = new SeenFilter({
    count: () => q.countSent.get()?.n ?? 0,
    all: function* () {
      for (const [sender, id] of q.allSent.iterate()) yield recordKey(sender, id);
    },
    after: (after, limit) => q.sentAfter.all(after, limit).map(([s, sender, id]) => [s, recordKey(sender, id)]),
    // Answered but not written yet (declared below; read only once the filter grows).
    pending: () => pendingSent.keys(),
  }, options.expectedRecords ?? 65_536, log);

  let seq = meta.seq;
  let reserved = meta.seq;
  const reserve = () => {
    q.setMeta.run('seq', seq + SEQ_BLOCK);
    reserved = seq + SEQ_BLOCK;
  };
  /** The next seq; first reserves a new block when this one is used up (it throws when that cannot be written). */
  const nextSeq = (): number => {
    if (seq >= reserved) reserve();
    return ++seq;
  };
  // The first block now, not in a sender's turn. On a full disk the first send tries again.
  try {
    reserve();
  } catch (error) {
    log.warn('cannot reserve message seqs yet; sends are refused until the disk has room', { error: String(error) });
  }
  /** Every envelope not written yet, in seq order, and per recipient. */
  const pending = new Map<number, PendingRow>();
  const pendingFor = new Map<string, Map<number, PendingRow>>();
  /** Written with the next commit. */
  let toWrite: PendingRow[] = [];
  /** Waiting in memory for their recipient, in due order (holdMs is the same for all). */
  const held = new Map<number, PendingRow>();
  /** (sender, id) records not written yet, by recordKey(). */
  const pendingSent = new Map<string, PendingSent>();
  /** Records of envelopes taken before they were written: written with the next commit. */
  let takenRecords: PendingSent[] = [];
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
    if (!box) boxes.set(recipient, (box = { ...(q.box.get(recipient) ?? { rows: 0, messages: 0, bytes: 0 }) }));
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
    const row: PendingRow = { recipient, envelope, size, done: deferred(), due: live && holdMs > 0 ? performance.now() + holdMs : 0, taken: false, keep };
    pending.set(envelope.seq, row);
    let mine = pendingFor.get(recipient);
    if (!mine) pendingFor.set(recipient, (mine = new Map()));
    mine.set(envelope.seq, row);
    if (row.due === 0) {
      toWrite.push(row);
      scheduleFlush();
    } else {
      held.set(envelope.seq, row);
      holdTimer ??= setTimeout(onHoldTimer, holdMs).unref();
    }
    return row;
  };
  const dequeue = (row: PendingRow) => {
    pending.delete(row.envelope.seq);
    held.delete(row.envelope.seq);
    const mine = pendingFor.get(row.recipient);
    mine?.delete(row.envelope.seq);
    if (mine?.size === 0) pendingFor.delete(row.recipient);
  };
  /** The seq of the newest envelope waiting for `recipient`, when the mailbox on disk is empty (see Offer). */
  const lastWaiting = (recipient: string): number | undefined => {
    if (onDisk(recipient) > 0) return undefined;
    let last = 0;
    for (const s of pendingFor.get(recipient)?.keys() ?? []) last = s;
    return last;
  };

  function onHoldTimer(): void {
    holdTimer = undefined;
    flush();
  }

  // One transaction: removals, and the receipts they caused, commit together or not at all.
  const commit = db.transaction((deletes: number[], rows: PendingRow[], sent: PendingSent[]) => {
    for (const s of deletes) q.deleteRow.run(s);
    for (const row of rows) {
      const r = toRow(row.recipient, row.envelope, row.size);
      q.insertRow.run(r.seq, r.recipient, r.kind, r.sender, r.msg_id, r.body, r.sent_at, r.at, r.size);
    }
    for (const s of sent) q.insertSent.run(s.seq, hash52(recordKey(s.from, s.id)), s.from, s.id, s.digest, s.at, s.deliveredAt);
  });

  function flush(force = false): void {
    flushScheduled = false;
    // Held rows whose time is up are written now.
    // Holds are timed on the monotonic clock: a wall clock stepped back must not keep a
    // message (and every one behind it) unwritten and its sender unanswered.
    const t = performance.now();
    for (const row of held.values()) {
      if (!force && row.due > t) break;
      held.delete(row.envelope.seq);
      toWrite.push(row);
    }
    if (held.size > 0 && !holdTimer && !closed) {
      const first = held.values().next().value;
      holdTimer = setTimeout(onHoldTimer, Math.max(1, (first?.due ?? t) - t)).unref();
    }
    const rows = toWrite.filter((row) => !row.taken);
    toWrite = [];
    // A record is written with its envelope, or once that was acknowledged (it is never written then).
    const sent = takenRecords;
    takenRecords = [];
    for (const row of rows) if (row.record) sent.push(row.record);
    if (pendingDeletes.size === 0 && rows.length === 0 && sent.length === 0) return;
    const deletes = [...pendingDeletes];
    for (const s of sent) pendingSent.delete(recordKey(s.from, s.id));
    try {
      commit(deletes.map(([s]) => s), rows, sent);
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
        row.done.resolve({});
      }
    } catch (error) {
      const failure = storageError(error);
      log.error('mailbox commit failed; senders get E_STORAGE', { rows: rows.length, error: String(error) });
      for (const row of rows) {
        if (row.keep) continue;
        dequeue(row);
        adjustQuota(row.recipient, row.envelope, row.size, -1);
        row.done.reject(failure);
      }
      // Records of acknowledged envelopes, removals and the receipts they caused are tried
      // again: nothing is lost by a late write.
      toWrite.unshift(...rows.filter((row) => row.keep));
      for (const s of sent) {
        if (!s.row.taken) continue;
        pendingSent.set(recordKey(s.from, s.id), s);
        takenRecords.push(s);
      }
      if (!closed && (pendingDeletes.size > 0 || takenRecords.length > 0 || toWrite.length > 0)) setTimeout(scheduleFlush, 100).unref();
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

  const pruneTimer = setInterval(() => {
    try {
      q.pruneSent.run(now() - retention);
      seen.pruned();
    } catch (error) {
      log.warn('could not prune idempotency records', { error: String(error) });
    }
  }, 3600_000);
  pruneTimer.unref();

  const guard = <T>(work: () => T): Promise<T> => {
    if (closed) return Promise.reject(new StorageError('E_UNAVAILABLE', 'relay store is closed'));
    try {
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(storageError(error));
    }
  };

  const postReceipt = (to: string, r: { from: string; state: ReceiptState; ids: string[]; at: number }, live = false, keep = false) => {
    const envelope: Envelope = { seq: nextSeq(), kind: 'receipt', from: r.from, state: r.state, ids: r.ids, at: r.at };
    const row = enqueue(to, envelope, JSON.stringify(r.ids).length, live, keep);
    return { seq: envelope.seq, durable: row.done.promise };
  };

  const page = (recipient: string, afterSeq: number, limit: number, bytes = Infinity): Envelope[] => {
    const written: Envelope[] = [];
    /** The disk was read up to this seq only (a full page, or its bytes used up): nothing newer may join. */
    let readTo = Infinity;
    if (onDisk(recipient) > 0) {
      const skip = deletesFor.get(recipient) ?? 0;
      let used = 0;
      // Row by row, so that a page of large bodies reads no more than it can send.
      for (const r of q.page.iterate(recipient, afterSeq, limit + skip)) {
        if (pendingDeletes.has(r.seq)) continue;
        const envelope = toEnvelope(r);
        used += envelopeBytes(envelope);
        if (written.length >= limit || (written.length > 0 && used > bytes)) {
          readTo = written.at(-1)?.seq ?? afterSeq;
          break;
        }
        written.push(envelope);
      }
    }
    // Merged in seq order with what waits in memory (a held envelope may be older than a written one).
    const out: Envelope[] = [];
    let i = 0;
    for (const row of pendingFor.get(recipient)?.values() ?? []) {
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
      guard(() => {
        q.saveUser.run({ id: user.id, name: user.name, id_key: user.idKey, ka_key: user.kaKey, ka_sig: user.kaSig, first_seen: user.lastSeen, last_seen: user.lastSeen, rev: user.rev });
      }),
    setLastSeen: (id, lastSeen, rev) => guard(() => void q.setLastSeen.run(lastSeen, rev, id)),
    getUsers: (ids) => guard(() => q.getUsers.all(JSON.stringify(ids)).map(toUser)),
    pageUsers: (after, limit) => guard(() => q.pageUsers.all(after ?? '', limit).map(toUser)),
    changedUsers: (since, limit) => guard(() => q.changedUsers.all(since, limit).map(toUser)),

    accept: (m: IncomingMessage, limit: Quota, live = false) =>
      guard((): AcceptOutcome => {
        const key = recordKey(m.from, m.id);
        const inFlight = pendingSent.get(key);
        if (inFlight) return inFlight.digest === m.digest ? { kind: 'duplicate', seq: inFlight.seq, durable: inFlight.row.done.promise } : { kind: 'conflict' };
        const earlier = seen.mightHave(key) ? q.getSent.get(hash52(key), m.from, m.id) : undefined;
        if (earlier) {
          if (earlier.digest !== m.digest) return { kind: 'conflict' };
          return { kind: 'duplicate', seq: earlier.seq, durable: Promise.resolve(earlier.delivered_at === null ? {} : { deliveredAt: earlier.delivered_at }) };
        }
        const size = Buffer.byteLength(m.body);
        const box = boxOf(m.to);
        if (box.messages + 1 > limit.messages || box.bytes + size > limit.bytes) return { kind: 'full' };
        const prev = lastWaiting(m.to);
        const envelope: Envelope = { seq: nextSeq(), kind: 'message', id: m.id, from: m.from, body: m.body, sentAt: m.sentAt, at: m.at };
        const row = enqueue(m.to, envelope, size, live);
        adjustQuota(m.to, envelope, size, 1);
        row.record = { from: m.from, id: m.id, seq: envelope.seq, digest: m.digest, at: m.at, deliveredAt: null, row };
        pendingSent.set(key, row.record);
        seen.add(key);
        return { kind: 'accepted', seq: envelope.seq, durable: row.done.promise, ...(prev === undefined ? {} : { prev }) };
      }),

    postReceipt: (to, r, live) => guard(() => postReceipt(to, r, live)),

    page: (recipient, afterSeq, limit, bytes) => guard(() => page(recipient, afterSeq, limit, bytes)),

    // Removals and the receipts they cause are queued in the same turn, so one commit carries both.
    acknowledge: (recipient, seqs, at, next) =>
      guard(() => {
        const removed: Envelope[] = [];
        let count = 0;
        for (const s of seqs) {
          const row = pendingFor.get(recipient)?.get(s);
          if (row) {
            // Taken before it was written: it never touches the disk, and whoever waits for
            // it (the sender) is answered now, with the delivery in that answer.
            dequeue(row);
            row.taken = true;
            adjustQuota(recipient, row.envelope, row.size, -1);
            if (row.record) {
              row.record.deliveredAt = at;
              takenRecords.push(row.record);
            }
            row.done.resolve(row.envelope.kind === 'message' ? { deliveredAt: at } : {});
            count += 1;
            continue;
          }
          if (pendingDeletes.has(s)) continue;
          const stored = q.bySeq.get(s);
          if (!stored || stored.recipient !== recipient) continue;
          pendingDeletes.set(s, recipient);
          deletesFor.set(recipient, (deletesFor.get(recipient) ?? 0) + 1);
          const envelope = toEnvelope(stored);
          adjustQuota(recipient, envelope, stored.size, -1);
          removed.push(envelope);
          count += 1;
        }
        // Removals and the records of taken envelopes keep nobody waiting: they go with a later commit.
        if (count > 0) scheduleFlush(true);
        const bySender = deliveredIds(removed);
        for (const [sender, ids] of bySender) postReceipt(sender, { from: recipient, state: 'delivered', ids, at }, false, true);
        return { removed: count, receiptsFor: [...bySender.keys()], ...(next ? { next: page(recipient, next.afterSeq, next.limit, next.bytes) } : {}) };
      }),

    close: async () => {
      if (closed) return;
      flush(true);
      closed = true;
      seen.close();
      clearTimeout(holdTimer);
      clearTimeout(lazyTimer);
      clearInterval(pruneTimer);
      db.close();
    },
  };
  return store;
}
