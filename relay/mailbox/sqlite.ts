// The default RelayStore: one SQLite file (WAL) with group commit. Writes made during one
// event-loop turn are committed together in the next, and only then acknowledged, so a
// burst costs one commit, never one fsync per message. An envelope that its recipient
// acknowledges before the commit never touches the disk at all.
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import type { Envelope, ReceiptState } from '../protocol.ts';
import { base32 } from '../identity.ts';
import { silentLogger, type Logger } from '../log.ts';
import { migrate, tune } from '../sqlite/migrate.ts';
import { relayMigrations } from './migrations.ts';
import { StorageError, deliveredIds, type AcceptOutcome, type IncomingMessage, type Quota, type RelayStore, type StoredUser } from './store.ts';

export interface SqliteStoreOptions {
  /** Database file; created with its folder's permissions if missing. */
  path: string;
  /** 'normal' (default) survives a process crash; 'full' also survives power loss, at a cost. */
  durability?: 'normal' | 'full';
  /** How long (sender, id) records are kept for idempotent retries. Default 30 days. */
  dedupRetentionMs?: number;
  now?: () => number;
  log?: Logger;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: Error) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
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
}

interface PendingSent {
  from: string;
  id: string;
  seq: number;
  digest: string;
  at: number;
  durable: Promise<void>;
}

interface MailboxRow {
  seq: number;
  recipient: string;
  kind: 'message' | 'receipt';
  sender: string;
  msg_id: string | null;
  body: string;
  sent_at: number | null;
  at: number;
  size: number;
}

interface UserRow {
  id: string;
  name: string;
  id_key: string;
  ka_key: string;
  ka_sig: string;
  last_seen: number;
  rev: number;
}

const toUser = (r: UserRow): StoredUser => ({ id: r.id, name: r.name, idKey: r.id_key, kaKey: r.ka_key, kaSig: r.ka_sig, lastSeen: r.last_seen, rev: r.rev });

function toEnvelope(r: MailboxRow): Envelope {
  if (r.kind === 'message') {
    return { seq: r.seq, kind: 'message', id: r.msg_id ?? '', from: r.sender, body: r.body, sentAt: r.sent_at ?? 0, at: r.at };
  }
  const receipt = JSON.parse(r.body) as { state: ReceiptState; ids: string[] };
  return { seq: r.seq, kind: 'receipt', from: r.sender, state: receipt.state, ids: receipt.ids, at: r.at };
}

function toRow(recipient: string, e: Envelope, size: number): MailboxRow {
  return e.kind === 'message'
    ? { seq: e.seq, recipient, kind: 'message', sender: e.from, msg_id: e.id, body: e.body, sent_at: e.sentAt, at: e.at, size }
    : { seq: e.seq, recipient, kind: 'receipt', sender: e.from, msg_id: null, body: JSON.stringify({ state: e.state, ids: e.ids }), sent_at: null, at: e.at, size };
}

const storageError = (cause: unknown) => new StorageError('E_STORAGE', `relay storage failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });

export function openSqliteStore(options: SqliteStoreOptions): RelayStore {
  const now = options.now ?? Date.now;
  const log = options.log ?? silentLogger;
  const retention = options.dedupRetentionMs ?? 30 * 24 * 3600 * 1000;
  const db = new Database(options.path);
  tune(db, options.durability ?? 'normal');
  migrate(db, relayMigrations);

  const q = {
    getMeta: db.prepare<[string], { value: Buffer | string | number }>('SELECT value FROM meta WHERE key = ?'),
    setMeta: db.prepare<[string, Buffer | string | number]>('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    maxSeq: db.prepare<[], { m: number | null }>('SELECT max(m) AS m FROM (SELECT max(seq) AS m FROM mailbox UNION ALL SELECT max(seq) FROM sent)'),
    saveUser: db.prepare<[UserRow & { first_seen: number }]>(`
      INSERT INTO users (id, name, id_key, ka_key, ka_sig, first_seen, last_seen, rev)
      VALUES (@id, @name, @id_key, @ka_key, @ka_sig, @first_seen, @last_seen, @rev)
      ON CONFLICT(id) DO UPDATE SET name = excluded.name, ka_key = excluded.ka_key, ka_sig = excluded.ka_sig,
        last_seen = excluded.last_seen, rev = excluded.rev`),
    setLastSeen: db.prepare<[number, number, string]>('UPDATE users SET last_seen = ?, rev = ? WHERE id = ?'),
    getUsers: db.prepare<[string], UserRow>('SELECT * FROM users WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id'),
    pageUsers: db.prepare<[string, number], UserRow>('SELECT * FROM users WHERE id > ? ORDER BY id LIMIT ?'),
    getSent: db.prepare<[string, string], { seq: number; digest: string }>('SELECT seq, digest FROM sent WHERE sender = ? AND id = ?'),
    insertSent: db.prepare<[PendingSent]>('INSERT OR IGNORE INTO sent (sender, id, seq, digest, at) VALUES (@from, @id, @seq, @digest, @at)'),
    pruneSent: db.prepare<[number]>('DELETE FROM sent WHERE at < ?'),
    quota: db.prepare<[string], { messages: number; bytes: number }>("SELECT count(*) AS messages, coalesce(sum(size), 0) AS bytes FROM mailbox WHERE recipient = ? AND kind = 'message'"),
    insertRow: db.prepare<[MailboxRow]>('INSERT INTO mailbox (seq, recipient, kind, sender, msg_id, body, sent_at, at, size) VALUES (@seq, @recipient, @kind, @sender, @msg_id, @body, @sent_at, @at, @size)'),
    page: db.prepare<[string, number, number], MailboxRow>('SELECT * FROM mailbox WHERE recipient = ? AND seq > ? ORDER BY seq LIMIT ?'),
    bySeq: db.prepare<[number], MailboxRow>('SELECT * FROM mailbox WHERE seq = ?'),
    deleteRow: db.prepare<[number]>('DELETE FROM mailbox WHERE seq = ?'),
  };

  const setup = db.transaction(() => {
    let id = q.getMeta.get('relay_id')?.value;
    if (typeof id !== 'string') q.setMeta.run('relay_id', (id = base32(randomBytes(16))));
    let secret = q.getMeta.get('secret')?.value;
    if (!Buffer.isBuffer(secret)) q.setMeta.run('secret', (secret = randomBytes(32)));
    const storedSeq = q.getMeta.get('seq')?.value;
    return { relayId: id, secret, seq: Math.max(Number(storedSeq ?? 0), q.maxSeq.get()?.m ?? 0) };
  });
  const meta = setup.immediate();
  q.pruneSent.run(now() - retention);

  let seq = meta.seq;
  const pending = new Map<number, PendingRow>();
  const pendingFor = new Map<string, Map<number, PendingRow>>();
  const pendingSent = new Map<string, PendingSent>();
  const pendingDeletes = new Map<number, string>();
  /** Envelopes acknowledged before their commit: settled with the commit that records their receipts. */
  const settleOnCommit: Deferred[] = [];
  const deletesFor = new Map<string, number>();
  const quotas = new Map<string, Quota>();
  let flushScheduled = false;
  let closed = false;

  const quotaOf = (recipient: string): Quota => {
    let quota = quotas.get(recipient);
    if (!quota) {
      quota = { ...(q.quota.get(recipient) ?? { messages: 0, bytes: 0 }) };
      quotas.set(recipient, quota);
    }
    return quota;
  };
  const adjustQuota = (recipient: string, envelope: Envelope, size: number, sign: 1 | -1) => {
    const quota = envelope.kind === 'message' ? quotas.get(recipient) : undefined;
    if (quota) {
      quota.messages += sign;
      quota.bytes += sign * size;
    }
  };

  const enqueue = (recipient: string, envelope: Envelope, size: number): PendingRow => {
    const row: PendingRow = { recipient, envelope, size, done: deferred() };
    pending.set(envelope.seq, row);
    let mine = pendingFor.get(recipient);
    if (!mine) pendingFor.set(recipient, (mine = new Map()));
    mine.set(envelope.seq, row);
    scheduleFlush();
    return row;
  };
  const dequeue = (row: PendingRow) => {
    pending.delete(row.envelope.seq);
    const mine = pendingFor.get(row.recipient);
    mine?.delete(row.envelope.seq);
    if (mine?.size === 0) pendingFor.delete(row.recipient);
  };

  // One transaction: removals, and the receipts they caused, commit together or not at all.
  const commit = db.transaction((deletes: number[], rows: PendingRow[], sent: PendingSent[], upTo: number) => {
    for (const s of deletes) q.deleteRow.run(s);
    for (const row of rows) q.insertRow.run(toRow(row.recipient, row.envelope, row.size));
    for (const s of sent) q.insertSent.run(s);
    q.setMeta.run('seq', upTo);
  });

  function flush(): void {
    flushScheduled = false;
    if (pendingDeletes.size === 0 && pending.size === 0 && pendingSent.size === 0 && settleOnCommit.length === 0) return;
    const deletes = [...pendingDeletes.keys()];
    const rows = [...pending.values()];
    const sent = [...pendingSent.values()];
    const settle = settleOnCommit.splice(0);
    pending.clear();
    pendingFor.clear();
    pendingSent.clear();
    try {
      commit(deletes, rows, sent, seq);
      pendingDeletes.clear();
      deletesFor.clear();
      for (const row of rows) row.done.resolve();
      for (const done of settle) done.resolve();
    } catch (error) {
      const failure = storageError(error);
      log.error('mailbox commit failed; senders get E_STORAGE', { rows: rows.length, error: String(error) });
      for (const row of rows) {
        adjustQuota(row.recipient, row.envelope, row.size, -1);
        row.done.reject(failure);
      }
      for (const done of settle) done.reject(failure);
      // Removals stay pending and are tried again: nothing is lost by a late delete.
      if (!closed && pendingDeletes.size > 0) setTimeout(scheduleFlush, 100).unref();
    }
  }

  function scheduleFlush(): void {
    if (flushScheduled || closed) return;
    flushScheduled = true;
    setImmediate(flush);
  }

  const pruneTimer = setInterval(() => q.pruneSent.run(now() - retention), 3600_000);
  pruneTimer.unref();

  const guard = <T>(work: () => T): Promise<T> => {
    if (closed) return Promise.reject(new StorageError('E_UNAVAILABLE', 'relay store is closed'));
    try {
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(storageError(error));
    }
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

    accept: (m: IncomingMessage, limit: Quota) =>
      guard((): AcceptOutcome => {
        const key = `${m.from}\n${m.id}`;
        const inFlight = pendingSent.get(key);
        const earlier = inFlight ?? q.getSent.get(m.from, m.id);
        if (earlier) {
          if (earlier.digest !== m.digest) return { kind: 'conflict' };
          return { kind: 'duplicate', seq: earlier.seq, durable: inFlight?.durable ?? Promise.resolve() };
        }
        const size = Buffer.byteLength(m.body);
        const quota = quotaOf(m.to);
        if (quota.messages + 1 > limit.messages || quota.bytes + size > limit.bytes) return { kind: 'full' };
        const envelope: Envelope = { seq: ++seq, kind: 'message', id: m.id, from: m.from, body: m.body, sentAt: m.sentAt, at: m.at };
        const row = enqueue(m.to, envelope, size);
        adjustQuota(m.to, envelope, size, 1);
        pendingSent.set(key, { from: m.from, id: m.id, seq: envelope.seq, digest: m.digest, at: m.at, durable: row.done.promise });
        return { kind: 'accepted', seq: envelope.seq, durable: row.done.promise };
      }),

    postReceipt: (to, r) =>
      guard(() => {
        const envelope: Envelope = { seq: ++seq, kind: 'receipt', from: r.from, state: r.state, ids: r.ids, at: r.at };
        const row = enqueue(to, envelope, JSON.stringify(r.ids).length);
        return { seq: envelope.seq, durable: row.done.promise };
      }),

    page: (recipient, afterSeq, limit) =>
      guard(() => {
        const skip = deletesFor.get(recipient) ?? 0;
        const out = q.page
          .all(recipient, afterSeq, limit + skip)
          .filter((r) => !pendingDeletes.has(r.seq))
          .slice(0, limit)
          .map(toEnvelope);
        // Pending rows all have higher seqs than committed ones: they follow in order.
        for (const row of pendingFor.get(recipient)?.values() ?? []) {
          if (out.length >= limit) break;
          if (row.envelope.seq > afterSeq) out.push(row.envelope);
        }
        return out;
      }),

    remove: (recipient, seqs) =>
      guard(() => {
        const removed: Envelope[] = [];
        for (const s of seqs) {
          const row = pendingFor.get(recipient)?.get(s);
          if (row) {
            dequeue(row);
            adjustQuota(recipient, row.envelope, row.size, -1);
            // Acknowledged before it was ever written: it never touches the disk. Its sender is
            // answered with the commit that carries the delivery receipt, so a crash before that
            // commit leaves the sender unanswered, and the sender's retry is delivered (and deduplicated) again.
            settleOnCommit.push(row.done);
            scheduleFlush();
            removed.push(row.envelope);
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
        }
        if (pendingDeletes.size > 0) scheduleFlush();
        return removed;
      }),

    // Removals and the receipts they cause are queued in the same turn, so one commit carries both.
    acknowledge: async (recipient, seqs, at, next) => {
      const removed = await store.remove(recipient, seqs);
      const bySender = deliveredIds(removed);
      await Promise.all([...bySender].map(([sender, ids]) => store.postReceipt(sender, { from: recipient, state: 'delivered', ids, at })));
      const following = next ? await store.page(recipient, next.afterSeq, next.limit) : undefined;
      return { removed: removed.length, receiptsFor: [...bySender.keys()], ...(following ? { next: following } : {}) };
    },

    close: async () => {
      if (closed) return;
      flush();
      closed = true;
      clearInterval(pruneTimer);
      db.close();
    },
  };
  return store;
}
