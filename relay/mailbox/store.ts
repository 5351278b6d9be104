// What the relay keeps: its own identity, the directory of users, the mailbox of envelopes
// waiting for their recipients, and the (sender, id) records that make sends idempotent.
// SQLite implements it by default (sqlite.ts); a Redis implementation lets relays scale out.
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
  /** Digest of (to, body): a retry must match it, or the id is in conflict. */
  digest: string;
}

export interface Quota {
  messages: number;
  bytes: number;
}

/**
 * `durable` settles once the envelope is committed, or once its recipient acknowledged it
 * (whichever comes first); it rejects with a StorageError if it could not be stored.
 */
export type AcceptOutcome =
  | { kind: 'accepted'; seq: number; durable: Promise<void> }
  | { kind: 'duplicate'; seq: number; durable: Promise<void> }
  | { kind: 'conflict' }
  | { kind: 'full' };

export interface RelayStore {
  /** Stable across restarts; created on first open. */
  readonly relayId: string;
  /** Key for the handshake challenges' MAC; stable across restarts. */
  readonly secret: Buffer;

  /** Inserts or updates a user; the identity key of an existing id never changes. */
  saveUser(user: StoredUser): Promise<void>;
  setLastSeen(id: string, lastSeen: number, rev: number): Promise<void>;
  getUsers(ids: readonly string[]): Promise<StoredUser[]>;
  /** Users ordered by id, strictly after `after`. */
  pageUsers(after: string | undefined, limit: number): Promise<StoredUser[]>;

  /** Idempotent by (from, id); checks the recipient's quota; queues the message for `to`. */
  accept(message: IncomingMessage, quota: Quota): Promise<AcceptOutcome>;
  /** Queues a receipt for `to` (the sender of the messages it speaks of). */
  postReceipt(to: string, receipt: { from: string; state: ReceiptState; ids: string[]; at: number }): Promise<{ seq: number; durable: Promise<void> }>;
  /** Envelopes waiting for `recipient` with seq > afterSeq, in seq order. */
  page(recipient: string, afterSeq: number, limit: number): Promise<Envelope[]>;
  /** Drops acknowledged envelopes; returns those actually removed now (a second removal returns none). */
  remove(recipient: string, seqs: readonly number[]): Promise<Envelope[]>;
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
