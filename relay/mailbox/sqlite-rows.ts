// The SQLite store's tables as rows, and its prepared statements (relay/mailbox/sqlite.ts).
// Every statement is prepared once, when the store opens; values are always bound.
import type { Database } from 'better-sqlite3';
import { z } from 'zod';
import type { Envelope } from '../protocol.ts';
import type { StoredUser } from './store.ts';

export interface MailboxRow {
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

export interface UserRow {
  id: string;
  name: string;
  id_key: string;
  ka_key: string;
  ka_sig: string;
  last_seen: number;
  rev: number;
}

/**
 * A mailbox row as it is read back. Edited by hand, or written by a faulty version, a column
 * may hold anything the table lets it (SQLite keeps a value of another type where it cannot
 * convert it), so each is checked before it is used.
 */
export type StoredRow = Pick<MailboxRow, 'seq' | 'recipient'> & { [K in Exclude<keyof MailboxRow, 'seq' | 'recipient'>]: unknown };

export const toUser = (r: UserRow): StoredUser => ({ id: r.id, name: r.name, idKey: r.id_key, kaKey: r.ka_key, kaSig: r.ka_sig, lastSeen: r.last_seen, rev: r.rev });

const ReceiptBody = z.object({ state: z.enum(['delivered', 'read']), ids: z.array(z.string()) });

/** A row's envelope and the body bytes the quota counts for it, or undefined when it cannot be read. */
export function readRow(r: StoredRow): { envelope: Envelope; size: number } | undefined {
  const { seq, kind, sender: from, msg_id: id, body, sent_at: sentAt, at, size } = r;
  if (typeof from !== 'string' || typeof body !== 'string' || typeof at !== 'number' || typeof size !== 'number') return undefined;
  if (kind === 'message') return typeof id === 'string' && typeof sentAt === 'number' ? { envelope: { seq, kind, id, from, body, sentAt, at }, size } : undefined;
  if (kind !== 'receipt') return undefined;
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return undefined;
  }
  const receipt = ReceiptBody.safeParse(json);
  return receipt.success ? { envelope: { seq, kind, from, state: receipt.data.state, ids: receipt.data.ids, at }, size } : undefined;
}

export function toRow(recipient: string, e: Envelope, size: number): MailboxRow {
  return e.kind === 'message'
    ? { seq: e.seq, recipient, kind: 'message', sender: e.from, msg_id: e.id, body: e.body, sent_at: e.sentAt, at: e.at, size }
    : { seq: e.seq, recipient, kind: 'receipt', sender: e.from, msg_id: null, body: JSON.stringify({ state: e.state, ids: e.ids }), sent_at: null, at: e.at, size };
}

export type Queries = ReturnType<typeof prepareQueries>;

/** A (sender, id) record as written: seq, key (hash52 of recordKey), sender, id, digest, at, delivered at. */
export type RecordRow = [number, number, string, string, string, number, number | null];

/**
 * The idempotency records' `sent`: a table in relay.db, a view of the segments in the record
 * file (record-file.ts), with the same columns.
 */
export function prepareRecordQueries(db: Database) {
  return {
    getSent: db.prepare<[number, string, string], { seq: number; digest: string; delivered_at: number | null }>(
      'SELECT seq, digest, delivered_at FROM sent WHERE key = ? AND sender = ? AND id = ?'),
    insertSent: db.prepare<RecordRow>('INSERT OR IGNORE INTO sent (seq, key, sender, id, digest, at, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    pruneSent: db.prepare<[number]>('DELETE FROM sent WHERE at < ?'),
    countSent: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM sent'),
    allSent: db.prepare<[], [number]>('SELECT key FROM sent').raw(),
    sentAfter: db.prepare<[number, number], [number, number]>('SELECT seq, key FROM sent WHERE seq > ? ORDER BY seq LIMIT ?').raw(),
    // (Not max(seq): over the view, that would read every record.)
    maxSentSeq: db.prepare<[], { m: number }>('SELECT seq AS m FROM sent ORDER BY seq DESC LIMIT 1'),
  };
}

export function prepareQueries(db: Database) {
  return {
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
    changedUsers: db.prepare<[number, number], UserRow>('SELECT * FROM users WHERE rev > ? ORDER BY rev LIMIT ?'),
    ...prepareRecordQueries(db),
    // A recipient's rows are found by boxKey(recipient), then the recipient (the key is a hash).
    box: db.prepare<[number, string], { rows: number; messages: number; bytes: number }>(
      "SELECT count(*) AS rows, count(*) FILTER (WHERE kind = 'message') AS messages, coalesce(sum(size) FILTER (WHERE kind = 'message'), 0) AS bytes FROM mailbox WHERE box = ? AND recipient = ?"),
    insertRow: db.prepare<[number, string, number, string, string, string | null, string, number | null, number, number]>(
      'INSERT INTO mailbox (seq, recipient, box, kind, sender, msg_id, body, sent_at, at, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    page: db.prepare<[number, string, number, number], StoredRow>('SELECT * FROM mailbox WHERE box = ? AND recipient = ? AND seq > ? ORDER BY seq LIMIT ?'),
    bySeq: db.prepare<[number], StoredRow>('SELECT * FROM mailbox WHERE seq = ?'),
    messageRows: db.prepare<[], StoredRow>("SELECT * FROM mailbox WHERE kind = 'message'"),
    deleteRow: db.prepare<[number]>('DELETE FROM mailbox WHERE seq = ?'),
    copyToDeadLetters: db.prepare<[number, number]>(`
      INSERT OR REPLACE INTO dead_letters (seq, recipient, kind, sender, msg_id, body, sent_at, at, size, set_aside_at)
      SELECT seq, recipient, kind, sender, msg_id, body, sent_at, at, size, ? FROM mailbox WHERE seq = ?`),
  };
}
