// The local history: every conversation, in one SQLite file per installation.
// All SQL lives here, prepared once, values always bound.
import Database from 'better-sqlite3';
import { migrate, tune } from '../../../relay/sqlite/migrate.ts';
import { isDamaged } from '../../../relay/sqlite/damaged.ts';
import { historyMigrations } from './migrations.ts';
import type { Message, MessageState, SearchHit } from '../../../preload/contract.ts';

export interface StoredPeer {
  id: string;
  name: string;
  idKey: string;
  kaKey: string;
  pendingKaKey: string | null;
  verified: boolean;
  firstSeen: number;
  lastSeen: number;
}

export interface PeerSummary {
  peer: StoredPeer;
  unread: number;
  last: Pick<Message, 'text' | 'direction' | 'createdAt' | 'flagged'> | null;
  /** What the user has written to them and not sent yet. */
  draft: string | null;
}

export interface IncomingMessage {
  id: string;
  peer: string;
  text: string;
  sentAt: number;
  seq: number;
  flagged: boolean;
  error: string | null;
}

/** A deleted message as it was; `attempted`: queued, but a request that carried it went unanswered, so the relay may have it. */
export interface Removed {
  message: Message;
  attempted: boolean;
}

/** What seeing a peer's directory entry changed. */
export type PeerChange = 'new' | 'unchanged' | 'renamed' | 'key-changed';

/** How many of the newest matches a search ranks. */
const SEARCH_WINDOW = 500;

const FORWARD: Record<MessageState, number> = { failed: 0, queued: 1, sent: 2, delivered: 3, read: 4, received: 0 };

/** A messages row: the fields Message shares verbatim, plus the stored forms of the rest. */
type MessageRow = Pick<Message, 'n' | 'id' | 'peer' | 'direction' | 'text' | 'state' | 'error'> & {
  flagged: number;
  attempted: number;
  seq: number | null;
  sent_at: number;
  created_at: number;
  read_at: number | null;
};

interface PeerRow {
  id: string;
  name: string;
  id_key: string;
  ka_key: string;
  pending_ka_key: string | null;
  verified: number;
  first_seen: number;
  last_seen: number;
}

type SummaryRow = PeerRow & { unread: number; last_text: string | null; last_direction: 'in' | 'out' | null; last_at: number | null; last_flagged: number | null; draft: string | null };

/** Each peer with its unread count, newest message and draft. */
const SUMMARIES = `
  SELECT p.*,
    coalesce((SELECT count FROM unread u WHERE u.peer = p.id), 0) AS unread,
    m.text AS last_text, m.direction AS last_direction, m.created_at AS last_at, m.flagged AS last_flagged,
    (SELECT text FROM drafts d WHERE d.peer = p.id) AS draft
  FROM peers p
  LEFT JOIN messages m ON m.n = (SELECT max(n) FROM messages WHERE peer = p.id)`;

/** The n a new message gets: past every message there is and every one deleted (migration 4). */
const NEXT_N = '(SELECT max(coalesce(max(n), 0), coalesce((SELECT n FROM removed_n), 0)) + 1 FROM messages)';

const toMessage = (r: MessageRow): Message => ({
  n: r.n, id: r.id, peer: r.peer, direction: r.direction, text: r.text, state: r.state, error: r.error,
  flagged: r.flagged === 1, sentAt: r.sent_at, createdAt: r.created_at, readAt: r.read_at,
});

const toPeer = (r: PeerRow): StoredPeer => ({
  id: r.id, name: r.name, idKey: r.id_key, kaKey: r.ka_key, pendingKaKey: r.pending_ka_key,
  verified: r.verified === 1, firstSeen: r.first_seen, lastSeen: r.last_seen,
});

/** What a person typed, as up to 16 words (runs between spaces with a letter or digit in them). */
const searchWords = (input: string): string[] =>
  input.normalize('NFC').split(/\s+/u).filter((word) => /[\p{L}\p{N}]/u.test(word)).slice(0, 16);

/**
 * Turns what a person types into an FTS5 query, so that no input is a syntax error: each word
 * a quoted phrase matched as a prefix. The index splits a word as the query's phrase is split,
 * so "3.5" finds "3.5" (not "35 … 5"), and a word with combining marks (Hindi, Thai) stays whole.
 */
export function ftsQuery(input: string): string | null {
  const words = searchWords(input);
  return words.length > 0 ? words.map((word) => `"${word.replaceAll('"', '""')}"*`).join(' ') : null;
}

/**
 * Chinese and Japanese are written without spaces: the index holds a whole run of such text as
 * one word, so a word inside it is found only by a substring search (newest first).
 */
const UNSPACED = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;

/** A snippet of `text` around the first of `words` found in it, each found one marked (U+0002 … U+0003), as FTS5's snippet() marks. */
function substringSnippet(text: string, words: readonly string[], around = 24): string {
  // ASCII only, as LIKE compares (and so every index stays where it was).
  const fold = (value: string) => value.replace(/[A-Z]/g, (c) => c.toLowerCase());
  const lower = fold(text);
  const spans: [number, number][] = [];
  for (const word of words.map(fold)) {
    for (let at = lower.indexOf(word); at !== -1 && word.length > 0; at = lower.indexOf(word, at + word.length)) spans.push([at, at + word.length]);
  }
  spans.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const first = spans[0]?.[0] ?? 0;
  // Never between the halves of a surrogate pair (an emoji).
  const whole = (i: number) => (/[\uDC00-\uDFFF]/.test(text[i] ?? '') ? i - 1 : i);
  const start = whole(Math.max(0, first - around));
  const end = whole(Math.min(text.length, first + around * 2));
  let out = start > 0 ? '…' : '';
  let at = start;
  for (const [from, to] of spans) {
    if (from < at || to > end) continue; // overlapping an earlier mark, or past the window
    out += `${text.slice(at, from)}\u0002${text.slice(from, to)}\u0003`;
    at = to;
  }
  return out + text.slice(at, end) + (end < text.length ? '…' : '');
}

export type History = ReturnType<typeof openHistory>;

export interface HistoryOptions {
  now?: () => number;
  /**
   * A cap on the file's size in pages (SQLite's `max_page_count`): a write that would grow it
   * further fails as on a full disk. Tests use it to fill the disk; default: no cap.
   */
  maxPageCount?: number;
}

/** What a person does about a damaged history.db. */
export const DAMAGED_ADVICE = 'Parley leaves it as it is: restore it from a backup, or move it away to start with an empty history.';

/**
 * history.db, or a page of it, is not what SQLite can read. At the start Parley stops rather
 * than start an empty history over it; later, what touches a damaged page fails with it.
 */
export class DamagedHistoryError extends Error {
  readonly path: string;
  constructor(path: string, cause: Error) {
    super(`the message history is damaged (${cause.message}): ${path}. ${DAMAGED_ADVICE}`, { cause });
    this.path = path;
  }
}

/** The history's functions, each with SQLite's damaged-file errors thrown as DamagedHistoryError (naming the file). */
function guarded<T extends object>(history: T, path: string): T {
  for (const [name, fn] of Object.entries(history)) {
    if (typeof fn !== 'function') continue;
    const call = fn as (...args: unknown[]) => unknown;
    Object.assign(history, {
      [name]: (...args: unknown[]) => {
        try {
          return call(...args);
        } catch (error) {
          throw isDamaged(error) ? new DamagedHistoryError(path, error as Error) : error;
        }
      },
    });
  }
  return history;
}

export function openHistory(path: string, options: HistoryOptions = {}) {
  const now = options.now ?? Date.now;
  const db = new Database(path);
  try {
    // Every commit synced to disk: the inbox acknowledges a message once it is stored, and the
    // relay then forgets it, so a commit lost to a power cut would be a message lost for good.
    tune(db, 'full', options.maxPageCount);
    migrate(db, historyMigrations);
  } catch (error) {
    db.close();
    if (isDamaged(error)) throw new DamagedHistoryError(path, error as Error);
    throw error;
  }

  const q = {
    peer: db.prepare<[string], PeerRow>('SELECT * FROM peers WHERE id = ?'),
    peerIds: db.prepare<[], string>('SELECT id FROM peers').pluck(),
    insertPeer: db.prepare<[PeerRow]>('INSERT INTO peers (id, name, id_key, ka_key, pending_ka_key, verified, first_seen, last_seen) VALUES (@id, @name, @id_key, @ka_key, @pending_ka_key, @verified, @first_seen, @last_seen)'),
    updatePeer: db.prepare<[{ id: string; name: string; pending: string | null; lastSeen: number }]>('UPDATE peers SET name = @name, pending_ka_key = @pending, last_seen = max(last_seen, @lastSeen) WHERE id = @id'),
    acceptKey: db.prepare<[string]>('UPDATE peers SET ka_key = pending_ka_key, pending_ka_key = NULL, verified = 0 WHERE id = ? AND pending_ka_key IS NOT NULL'),
    setVerified: db.prepare<[number, string]>('UPDATE peers SET verified = ? WHERE id = ?'),
    summaries: db.prepare<[], SummaryRow>(`${SUMMARIES} ORDER BY coalesce(m.n, 0) DESC, p.name`),
    summariesOf: db.prepare<[string], SummaryRow>(`${SUMMARIES} WHERE p.id IN (SELECT value FROM json_each(?))`),
    peerNames: db.prepare<[], { id: string; name: string }>('SELECT id, name FROM peers'),
    insertOut: db.prepare<[{ id: string; peer: string; text: string; sealed: string; at: number }], MessageRow>(`
      INSERT INTO messages (n, id, peer, direction, text, sealed, state, sent_at, created_at) VALUES (${NEXT_N}, @id, @peer, 'out', @text, @sealed, 'queued', @at, @at) RETURNING *`),
    sealed: db.prepare<[number], { sealed: string | null }>('SELECT sealed FROM messages WHERE n = ?'),
    insertIn: db.prepare<[Omit<IncomingMessage, 'flagged'> & { flagged: number; at: number }], MessageRow>(`
      INSERT INTO messages (n, id, peer, direction, text, state, error, flagged, seq, sent_at, created_at)
      SELECT ${NEXT_N}, @id, @peer, 'in', @text, 'received', @error, @flagged, @seq, @sentAt, @at
      WHERE NOT EXISTS (SELECT 1 FROM removed WHERE peer = @peer AND id = @id)
      ON CONFLICT (peer, id) DO NOTHING RETURNING *`),
    deleteMessage: db.prepare<[number], MessageRow>('DELETE FROM messages WHERE n = ? RETURNING *'),
    insertRemoved: db.prepare<[string, string]>('INSERT OR IGNORE INTO removed (peer, id) VALUES (?, ?)'),
    markAttempted: db.prepare<[string]>("UPDATE messages SET attempted = 1 WHERE n IN (SELECT value FROM json_each(?)) AND state = 'queued' AND attempted = 0"),
    newestN: db.prepare<[string], number | null>('SELECT max(n) FROM messages WHERE peer = ?').pluck(),
    deleteOldest: db.prepare<[string, number, number], MessageRow>(
      'DELETE FROM messages WHERE n IN (SELECT n FROM messages WHERE peer = ? AND n <= ? ORDER BY n LIMIT ?) RETURNING *'),
    byId: db.prepare<[string, string], MessageRow>('SELECT * FROM messages WHERE peer = ? AND id = ?'),
    outById: db.prepare<[string], MessageRow>("SELECT * FROM messages WHERE id = ? AND direction = 'out'"),
    outbox: db.prepare<[string, number], MessageRow>(
      "SELECT * FROM messages WHERE state = 'queued' AND peer NOT IN (SELECT value FROM json_each(?)) ORDER BY n LIMIT ?"),
    // A transition happens only from the state it expects: a receipt that arrived first is never undone.
    setState: db.prepare<[{ n: number; from: MessageState; state: MessageState; seq: number | null; error: string | null }], MessageRow>(
      'UPDATE messages SET state = @state, seq = coalesce(@seq, seq), error = @error WHERE n = @n AND state = @from RETURNING *'),
    page: db.prepare<[string, number, number], MessageRow>('SELECT * FROM messages WHERE peer = ? AND n < ? ORDER BY n DESC LIMIT ?'),
    around: db.prepare<[string, number, number], MessageRow>('SELECT * FROM messages WHERE peer = ? AND n >= ? ORDER BY n LIMIT ?'),
    firstUnread: db.prepare<[string], number | null>("SELECT min(n) FROM messages WHERE peer = ? AND direction = 'in' AND read_at IS NULL").pluck(),
    unread: db.prepare<[], { peer: string; unread: number }>('SELECT peer, count AS unread FROM unread WHERE count > 0'),
    markRead: db.prepare<[number, string, number]>("UPDATE messages SET read_at = ? WHERE peer = ? AND direction = 'in' AND read_at IS NULL AND n <= ?"),
    // Ranking every match of a common word in a big history is slow, so rank the newest
    // SEARCH_WINDOW matches (cheap: rowid order) and build snippets only for what is shown.
    searchRecent: db.prepare<[string, number], { n: number; rank: number }>(
      'SELECT rowid AS n, bm25(messages_fts) AS rank FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid DESC LIMIT ?'),
    // Snippets for chosen rows, in one pass over the rowid range they span: a MATCH with a
    // `rowid = ?` constraint would expand a prefix term's whole doclist again for every hit.
    // (`+` keeps the IN from becoming such a constraint; snippet() runs only for rows that pass.)
    // Rowids are bound as BigInts: FTS5 ignores a rowid constraint bound as a REAL.
    searchHits: db.prepare<[string, bigint, bigint, string], MessageRow & { name: string; snippet: string }>(`
      SELECT m.*, p.name AS name, snippet(messages_fts, 0, char(2), char(3), '…', 12) AS snippet
      FROM messages_fts JOIN messages m ON m.n = messages_fts.rowid JOIN peers p ON p.id = m.peer
      WHERE messages_fts MATCH ? AND messages_fts.rowid BETWEEN ? AND ?
        AND +messages_fts.rowid IN (SELECT value FROM json_each(?)) AND m.flagged = 0`),
    // Substring search (UNSPACED): messages holding every pattern, newest first.
    searchSubstrings: db.prepare<[string, number], MessageRow & { name: string }>(`
      SELECT m.*, p.name AS name FROM messages m JOIN peers p ON p.id = m.peer
      WHERE m.flagged = 0 AND NOT EXISTS (SELECT 1 FROM json_each(?) WHERE m.text NOT LIKE value ESCAPE '\\')
      ORDER BY m.n DESC LIMIT ?`),
    unsentReads: db.prepare<[], { peer: string; id: string }>('SELECT peer, id FROM unsent_reads ORDER BY peer'),
    readSent: db.prepare<[string, string]>('DELETE FROM unsent_reads WHERE peer = ? AND id = ?'),
    setDraft: db.prepare<[{ peer: string; text: string; at: number }]>(
      'INSERT INTO drafts (peer, text, updated_at) SELECT @peer, @text, @at WHERE EXISTS (SELECT 1 FROM peers WHERE id = @peer) ON CONFLICT (peer) DO UPDATE SET text = excluded.text, updated_at = excluded.updated_at'),
    draft: db.prepare<[string], string>('SELECT text FROM drafts WHERE peer = ?').pluck(),
    deleteDraft: db.prepare<[string]>('DELETE FROM drafts WHERE peer = ?'),
    getSetting: db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE key = ?'),
    setSetting: db.prepare<[string, string]>('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
  };

  const addIncoming = db.transaction((items: readonly IncomingMessage[]) => {
    const added: Message[] = [];
    const at = now();
    for (const item of items) {
      const row = q.insertIn.get({ ...item, flagged: item.flagged ? 1 : 0, at });
      if (row) added.push(toMessage(row));
    }
    return added;
  });

  // The message and the end of its draft together: after a crash, never both (the text would
  // be sent again) and never neither.
  const addOutgoing = db.transaction((m: { id: string; peer: string; text: string }, sealed: (at: number) => string): Message => {
    const at = now();
    const row = q.insertOut.get({ ...m, sealed: sealed(at), at });
    if (!row) throw new Error('insert returned nothing');
    q.deleteDraft.run(m.peer);
    return toMessage(row);
  });

  const remove = db.transaction((n: number): Removed | undefined => {
    const row = q.deleteMessage.get(n);
    if (!row) return undefined;
    if (row.direction === 'in') q.insertRemoved.run(row.peer, row.id);
    return { message: toMessage(row), attempted: row.attempted === 1 };
  });

  const clear = db.transaction((peer: string, upTo: number, limit: number): { count: number; through: number } => {
    const rows = q.deleteOldest.all(peer, upTo, limit);
    let through = 0;
    for (const row of rows) {
      if (row.direction === 'in') q.insertRemoved.run(row.peer, row.id);
      through = Math.max(through, row.n);
    }
    return { count: rows.length, through };
  });

  const readsSent = db.transaction((peer: string, ids: readonly string[]) => {
    for (const id of ids) q.readSent.run(peer, id);
  });

  const applyReceipt = db.transaction((peer: string, ids: readonly string[], state: 'delivered' | 'read') => {
    const changed: Message[] = [];
    for (const id of ids) {
      const row = q.byId.get(peer, id);
      // Receipts only move an outgoing message forward, and only from the peer it was sent to.
      if (!row || row.direction !== 'out' || row.state === 'failed' || FORWARD[row.state] >= FORWARD[state]) continue;
      const updated = q.setState.get({ n: row.n, from: row.state, state, seq: null, error: null });
      if (updated) changed.push(toMessage(updated));
    }
    return changed;
  });

  // One transaction: the relay queues no receipt for a message its answer says was delivered,
  // so a crash between "sent" and "delivered" would leave it shown as only sent for good.
  const markSentDelivered = db.transaction((m: Pick<Message, 'n' | 'peer' | 'id'>, seq: number): Message[] => {
    const sent = q.setState.get({ n: m.n, from: 'queued', state: 'sent', seq, error: null });
    return [...(sent ? [toMessage(sent)] : []), ...applyReceipt(m.peer, [m.id], 'delivered')];
  });

  return guarded({
    /** Records what the directory says about a peer; pins keys on first sight. */
    seePeer(p: { id: string; name: string; idKey: string; kaKey: string; lastSeen: number }): { change: PeerChange; peer: StoredPeer; formerName?: string } {
      const known = q.peer.get(p.id);
      if (!known) {
        const row: PeerRow = { id: p.id, name: p.name, id_key: p.idKey, ka_key: p.kaKey, pending_ka_key: null, verified: 0, first_seen: now(), last_seen: p.lastSeen };
        q.insertPeer.run(row);
        return { change: 'new', peer: toPeer(row) };
      }
      const keyChanged = p.kaKey !== known.ka_key;
      const pending = keyChanged ? p.kaKey : null;
      q.updatePeer.run({ id: p.id, name: p.name, pending, lastSeen: p.lastSeen });
      const peer = toPeer({ ...known, name: p.name, pending_ka_key: pending, last_seen: Math.max(known.last_seen, p.lastSeen) });
      const change: PeerChange = keyChanged && known.pending_ka_key !== pending ? 'key-changed' : p.name !== known.name ? 'renamed' : 'unchanged';
      return { change, peer, formerName: known.name };
    },
    /** Everyone's display name: cheaper than summaries() when only names are compared. */
    peerNames: (): { id: string; name: string }[] => q.peerNames.all(),
    /** Everyone the history knows, by id. */
    peerIds: (): string[] => q.peerIds.all(),
    peer: (id: string): StoredPeer | undefined => {
      const row = q.peer.get(id);
      return row ? toPeer(row) : undefined;
    },
    acceptKeyChange: (id: string): boolean => q.acceptKey.run(id).changes === 1,
    setVerified: (id: string, verified: boolean): boolean => q.setVerified.run(verified ? 1 : 0, id).changes === 1,
    /** Everyone's summary, newest conversation first; or, given ids, those peers' only (in no set order). */
    summaries: (ids?: readonly string[]): PeerSummary[] =>
      (ids ? q.summariesOf.all(JSON.stringify(ids)) : q.summaries.all()).map((r) => ({
        peer: toPeer(r),
        unread: r.unread,
        last: r.last_text === null || r.last_direction === null || r.last_at === null ? null : { text: r.last_text, direction: r.last_direction, createdAt: r.last_at, flagged: r.last_flagged === 1 },
        draft: r.draft,
      })),

    /**
     * Stores a message the user wrote, as queued: it is in the outbox before anything is sent.
     * `seal` encrypts it once, with the timestamp it is stored under. The conversation's draft goes.
     */
    addOutgoing: (m: { id: string; peer: string; text: string }, seal: (sentAt: number) => string = () => ''): Message => addOutgoing(m, seal),
    /**
     * Keeps what the user has written to `peer` and not sent; text with nothing but white space
     * removes it. Returns whether the stored draft changed (false too for a peer not known).
     */
    setDraft: (peer: string, text: string): boolean => {
      const before = q.draft.get(peer);
      if (text.trim() === '') return before !== undefined && q.deleteDraft.run(peer).changes === 1;
      return before !== text && q.setDraft.run({ peer, text, at: now() }).changes === 1;
    },
    /** Stores incoming messages in one transaction; returns those that were new (redeliveries are skipped). */
    addIncoming: (items: readonly IncomingMessage[]): Message[] => addIncoming(items),
    /** The oldest `limit` queued messages, but none to the peers in `skip` (those must wait, the others need not). */
    outbox: (limit: number, skip: readonly string[] = []): Message[] => q.outbox.all(JSON.stringify(skip), limit).map(toMessage),
    sealedBody: (n: number): string | null => q.sealed.get(n)?.sealed ?? null,
    outgoing: (id: string): Message | undefined => {
      const row = q.outById.get(id);
      return row ? toMessage(row) : undefined;
    },
    /** The relay accepted it. Undefined when a receipt already moved it further. */
    markSent: (n: number, seq: number): Message | undefined => {
      const row = q.setState.get({ n, from: 'queued', state: 'sent', seq, error: null });
      return row ? toMessage(row) : undefined;
    },
    /** The relay accepted it, and its answer says the recipient already took it: both changes, in order, or none. */
    markSentDelivered: (m: Pick<Message, 'n' | 'peer' | 'id'>, seq: number): Message[] => markSentDelivered(m, seq),
    markFailed: (n: number, error: string): Message | undefined => {
      const row = q.setState.get({ n, from: 'queued', state: 'failed', seq: null, error });
      return row ? toMessage(row) : undefined;
    },
    /** A failed message goes back to the outbox, same id: the relay answers a resend idempotently. */
    requeue: (n: number): Message | undefined => {
      const row = q.setState.get({ n, from: 'failed', state: 'queued', seq: null, error: null });
      return row ? toMessage(row) : undefined;
    },
    applyReceipt: (peer: string, ids: readonly string[], state: 'delivered' | 'read'): Message[] => applyReceipt(peer, ids, state),
    /**
     * Deletes a message from this computer: from its conversation, the search index and the
     * unread count, and, if it was still queued, from the outbox. Returns it as it was, or
     * undefined when there was none. A deleted incoming message is not stored again when the
     * relay delivers it once more; receipts for a deleted outgoing one change nothing.
     */
    remove: (n: number): Removed | undefined => remove(n),
    /** Requests carried these queued messages and were not answered for them: the relay may have them (see remove()). */
    markAttempted: (ns: readonly number[]): void => void q.markAttempted.run(JSON.stringify(ns)),
    /** The n of the newest message with `peer`, or null when there is none. */
    newest: (peer: string): number | null => q.newestN.get(peer) ?? null,
    /**
     * Deletes, as remove() does, the oldest `limit` messages with `peer` up to n `upTo`, in one
     * transaction; returns how many, and the highest n among them (0 for none). Called until it
     * deletes less than `limit`, it empties the conversation up to `upTo` a part at a time, so
     * that no one step holds the history long; stopped half-way, the oldest part is gone.
     */
    clear: (peer: string, upTo: number, limit: number): { count: number; through: number } => clear(peer, upTo, limit),

    /** The newest `limit` messages before `before` (exclusive), oldest first. */
    page: (peer: string, before: number | null, limit: number): Message[] => q.page.all(peer, before ?? Number.MAX_SAFE_INTEGER, limit).reverse().map(toMessage),
    /** Messages from `from` on, oldest first: for jumping to a search result. */
    from: (peer: string, from: number, limit: number): Message[] => q.around.all(peer, from, limit).map(toMessage),
    /** The oldest unread incoming message's n, or null. */
    firstUnread: (peer: string): number | null => q.firstUnread.get(peer) ?? null,
    unreadCounts: (): Map<string, number> => new Map(q.unread.all().map((r) => [r.peer, r.unread])),
    /**
     * Marks incoming messages up to `upTo` as read; returns how many were unread. Their read
     * receipts (none for unverified messages) wait in unsentReads() until readsSent().
     */
    markRead: (peer: string, upTo: number): number => q.markRead.run(now(), peer, upTo).changes,
    /** The ids of read messages whose receipts the relay has not acknowledged yet, by peer. */
    unsentReads: (): Map<string, string[]> => {
      const byPeer = new Map<string, string[]>();
      for (const { peer, id } of q.unsentReads.all()) {
        const ids = byPeer.get(peer);
        if (ids) ids.push(id);
        else byPeer.set(peer, [id]);
      }
      return byPeer;
    },
    /** The relay acknowledged these read receipts (or refused them for good). */
    readsSent: (peer: string, ids: readonly string[]): void => readsSent(peer, ids),
    search: (input: string, limit = 50): SearchHit[] => {
      if (UNSPACED.test(input)) {
        const words = searchWords(input);
        const patterns = words.map((word) => `%${word.replace(/[\\%_]/g, '\\$&')}%`);
        return q.searchSubstrings.all(JSON.stringify(patterns), limit).map((r) => ({ message: toMessage(r), peerName: r.name, snippet: substringSnippet(r.text, words) }));
      }
      const match = ftsQuery(input);
      if (!match) return [];
      const best = q.searchRecent.all(match, SEARCH_WINDOW).sort((a, b) => a.rank - b.rank || b.n - a.n);
      const hits: SearchHit[] = [];
      // Usually one round; another only if some chosen rows turned out flagged.
      for (let next = 0; hits.length < limit && next < best.length;) {
        const chosen = best.slice(next, next + limit - hits.length).map((b) => b.n);
        next += chosen.length;
        const rows = new Map(q.searchHits.all(match, BigInt(Math.min(...chosen)), BigInt(Math.max(...chosen)), JSON.stringify(chosen)).map((r) => [r.n, r]));
        for (const n of chosen) {
          const r = rows.get(n);
          if (r) hits.push({ message: toMessage(r), peerName: r.name, snippet: r.snippet });
        }
      }
      return hits;
    },

    getSetting: (key: string): string | undefined => q.getSetting.get(key)?.value,
    setSetting: (key: string, value: string): void => void q.setSetting.run(key, value),
    close: (): void => {
      db.close();
    },
  }, path);
}
