// What the relay keeps: its own identity, the directory of users, the mailbox of envelopes
// waiting for their recipients, and the (sender, id) records that make sends idempotent.
// SQLite implements it by default (sqlite.ts); a Redis implementation lets relays scale out.
import { hash } from 'node:crypto';
import type { Envelope, ReceiptState } from '../protocol.ts';

export interface StoredUser {
  id: string;
  name: string;
  idKey: string;
  kaKey: string;
  kaSig: string;
  lastSeen: number;
  rev: number;
}

export interface IncomingMessage {
  from: string;
  to: string;
  id: string;
  body: string;
  sentAt: number;
  at: number;
  /** digestOf(to, body): a retry must match it, or the id is in conflict. */
  digest: string;
}

/** What a retry of a message must match (its recipient and body), as its idempotency record keeps it. */
export const digestOf = (to: string, body: string) => hash('sha256', `${to}\n${body}`, 'base64url').slice(0, 22);

export interface Quota {
  messages: number;
  bytes: number;
}

/**
 * How an envelope settled: committed to the mailbox, or acknowledged by its recipient first
 * (`deliveredAt`: then a sender is answered with the delivery, and no receipt is queued).
 */
export interface Settled {
  deliveredAt?: number;
}

/** An answer that settles later (see Settled): its promise, and the ways to settle it. */
/** A (sender, id) pair as one key: a message's idempotency record, in memory and in the dedup filter. */
export const recordKey = (sender: string, id: string) => `${sender}\n${id}`;

export interface Deferred {
  promise: Promise<Settled>;
  resolve: (settled: Settled) => void;
  reject: (error: Error) => void;
}

export function deferred(): Deferred {
  let resolve!: (settled: Settled) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<Settled>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * A just-queued envelope for `to`, with the seq of the envelope before it in that mailbox
 * (0: none): a delivery stream that has sent everything up to `prev` may send it at once.
 */
export interface Offer {
  to: string;
  envelope: Envelope;
  prev: number;
}

/**
 * `durable` settles once the envelope is committed, or once its recipient acknowledged it
 * (whichever comes first); it rejects with a StorageError if it could not be stored.
 */
export type AcceptOutcome =
  | { kind: 'accepted'; seq: number; durable: Promise<Settled>; /** When the store knows it: see Offer. */ prev?: number }
  | { kind: 'duplicate'; seq: number; durable: Promise<Settled> }
  | { kind: 'conflict' }
  | { kind: 'full' };

export interface Acknowledged {
  /** How many envelopes this removed (a second acknowledgement removes none). */
  removed: number;
  /** Senders who got a delivered receipt, in batch order. */
  receiptsFor: string[];
  /**
   * When asked for: the envelopes waiting after `next.afterSeq`, read in the same step (saves
   * a round trip). A store may leave out those whose arrival wakes the stream anyway: a
   * stream woken while it delivers reads the mailbox before it goes idle (relay/delivery.ts).
   */
  next?: Envelope[];
  /** When the store knows them: the receipts queued, as offers (see Offer). */
  offers?: Offer[];
}

/** The delivered receipts an acknowledgement causes: per sender, their message ids in batch order. */
export function deliveredIds(removed: readonly Envelope[]): Map<string, string[]> {
  const bySender = new Map<string, string[]>();
  for (const e of removed) {
    if (e.kind !== 'message') continue;
    const ids = bySender.get(e.from) ?? [];
    ids.push(e.id);
    bySender.set(e.from, ids);
  }
  return bySender;
}

/** The page an acknowledgement reads next (see RelayStore.page). */
export interface PageRequest {
  afterSeq: number;
  limit: number;
  bytes?: number;
}

/** What an envelope counts against a page's `bytes`: a message's body bytes, a receipt's ids. */
export const envelopeBytes = (e: Envelope): number => (e.kind === 'message' ? Buffer.byteLength(e.body) : e.ids.length * 24);

export interface RelayStore {
  /** Stable across restarts; created on first open. */
  readonly relayId: string;
  /** Key for the handshake challenges' MAC; stable across restarts. */
  readonly secret: Buffer;

  /**
   * Inserts or updates a user; the identity key of an existing id never changes. Resolves with
   * the rev it was saved at: `user.rev`, or a newer one where the store never moves a user's
   * rev back (a cluster's, when another node's change with a later rev landed first).
   */
  saveUser(user: StoredUser): Promise<number>;
  setLastSeen(id: string, lastSeen: number, rev: number): Promise<void>;
  getUsers(ids: readonly string[]): Promise<StoredUser[]>;
  /** Users ordered by id, strictly after `after`. */
  pageUsers(after: string | undefined, limit: number): Promise<StoredUser[]>;
  /** Users whose rev is over `since`, in rev order. */
  changedUsers(since: number, limit: number): Promise<StoredUser[]>;

  /**
   * Idempotent by (from, id); checks the recipient's quota; queues the message for `to`.
   * `live`: the recipient is connected here, so a store may keep the envelope in memory for a
   * moment: acknowledged in that time, it never touches the disk (the fast path).
   */
  accept(message: IncomingMessage, quota: Quota, live?: boolean): Promise<AcceptOutcome>;
  /** Queues a receipt for `to` (the sender of the messages it speaks of); `live` as for accept. */
  postReceipt(to: string, receipt: { from: string; state: ReceiptState; ids: string[]; at: number }, live?: boolean): Promise<{ seq: number; durable: Promise<Settled> }>;
  /**
   * Envelopes waiting for `recipient` with seq > afterSeq, in seq order: at most `limit`, and a
   * store may stop before that once they hold `bytes` of bodies (always at least one envelope),
   * so that a page of large messages does not read hundreds it cannot send. Never a gap: what
   * it leaves out all comes after what it returns.
   */
  page(recipient: string, afterSeq: number, limit: number, bytes?: number): Promise<Envelope[]>;
  /**
   * A recipient acknowledged these envelopes: removes them and, in the same atomic step,
   * queues one "delivered" receipt (at `at`) for each sender of a message removed now, unless
   * that sender is still waiting for its answer (which then carries the delivery, see Settled).
   * Resolves with what was removed, the senders who got a receipt and, with `next`, the
   * following page of the mailbox.
   */
  acknowledge(recipient: string, seqs: readonly number[], at: number, next?: PageRequest): Promise<Acknowledged>;
  /** Commits whatever is pending and closes. */
  close(): Promise<void>;
}

export class StorageError extends Error {
  readonly code: 'E_STORAGE' | 'E_UNAVAILABLE';
  constructor(code: 'E_STORAGE' | 'E_UNAVAILABLE', message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = code;
  }
}
