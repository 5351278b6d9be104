// The wire contract between Parley clients and a relay: version, limits, error codes,
// payload schemas and the Socket.IO event maps. relay/PROTOCOL.md describes it in prose.
import { z } from 'zod';

export const PROTOCOL_VERSION = 1;
/** Path of the HTTP hello endpoint that hands out relay facts and a fresh challenge. */
export const HELLO_PATH = '/parley/hello';
export const SOCKET_PATH = '/socket.io/';

export const LIMITS = {
  /** Largest Socket.IO frame the relay accepts; a larger one closes the socket. */
  frameBytes: 64 * 1024,
  /** Largest message body in UTF-8 bytes (an opaque string, normally ASCII ciphertext). */
  bodyBytes: 32 * 1024,
  nameChars: 64,
  accessCodeChars: 128,
  /** Messages in one message:send-many. */
  sendBatch: 50,
  /** Ids in one read receipt, directory lookup or presence:watch. */
  idsPerRequest: 500,
  /** Users one socket may watch the presence of. */
  watchIds: 5_000,
  pageSize: 500,
  /** Envelopes in one delivery batch, and its size in body bytes (at least one envelope). */
  batchSize: 500,
  batchBytes: 1024 * 1024,
  challengeTtlMs: 30_000,
  /**
   * How far ahead of a relay's clock a challenge's issue time may be: behind a load balancer
   * the hello may come from another node of the cluster, whose clock differs.
   */
  challengeClockSkewMs: 30_000,
  /** An error's code and its human-readable message, in characters (a relay's answers stay within them). */
  errorCodeChars: 64,
  errorMessageChars: 500,
} as const;

export const ERROR_CODES = [
  'E_SCHEMA', // payload does not match the schema
  'E_TOO_LARGE', // body or request over its limit
  'E_UNKNOWN_EVENT', // event name not in the protocol
  'E_UNKNOWN_RECIPIENT', // no user with that id has ever joined this relay
  'E_ID_CONFLICT', // the same message id was used for a different message
  'E_RATE_LIMITED', // over the per-socket budget; retry later
  'E_QUEUE_FULL', // the recipient's mailbox is full; retry later
  'E_STORAGE', // the relay could not store the message; retry later
  'E_UNAVAILABLE', // the relay is shutting down or a backing service is down; retry later
  'E_AUTH', // handshake proof missing, stale, replayed or invalid
  'E_ACCESS_CODE', // access code missing or wrong
  'E_VERSION', // unsupported protocol version
  'E_THROTTLED', // too many failed handshakes from this address; wait
  'E_ORIGIN', // browser origin not allowed
  'E_TOO_MANY_CONNECTIONS', // per-address connection cap reached
  'E_INTERNAL', // unexpected relay error (logged at the relay)
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];
/** Errors that mean "not now": resend the same message later (PROTOCOL.md 13.1). */
export const RETRYABLE_CODES: ReadonlySet<ErrorCode> = new Set(['E_RATE_LIMITED', 'E_QUEUE_FULL', 'E_STORAGE', 'E_UNAVAILABLE', 'E_INTERNAL']);

export interface RelayError {
  code: ErrorCode;
  message: string;
}
export type Result<T> = { ok: true; value: T } | { ok: false; error: RelayError };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const err = (code: ErrorCode, message: string): Result<never> => ({ ok: false, error: { code, message } });

/**
 * An error message within LIMITS.errorMessageChars: a longer one (it may quote the client's
 * own input, such as its unknown keys) is cut and ends in `…`, never inside a surrogate pair.
 */
export function cutErrorMessage(text: string): string {
  if (text.length <= LIMITS.errorMessageChars) return text;
  let end = LIMITS.errorMessageChars - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1; // the first half of a pair: keep neither half
  return `${text.slice(0, end)}…`;
}

// ---- primitive schemas ----------------------------------------------------------------

/** A user id: the first 20 bytes of SHA-256(identity public key), base32 (RFC 4648, lower case, no padding). */
export const UserIdSchema = z.string().regex(/^[a-z2-7]{32}$/, 'user id');
// One byte string has exactly one accepted spelling: the canonical base64url (unused low bits zero).
export const isCanonicalBase64url = (s: string) => Buffer.from(s, 'base64url').toString('base64url') === s;
/** A 32-byte key, canonical base64url without padding. */
export const KeySchema = z.string().regex(/^[A-Za-z0-9_-]{43}$/, '32-byte key, base64url').refine(isCanonicalBase64url, 'key is not canonical base64url');
/** A 64-byte Ed25519 signature, canonical base64url without padding. */
export const SignatureSchema = z.string().regex(/^[A-Za-z0-9_-]{86}$/, '64-byte signature, base64url').refine(isCanonicalBase64url, 'signature is not canonical base64url');
/**
 * A 40-byte handshake challenge, canonical base64url without padding: the relay records a
 * used challenge by its text, so another spelling of the same bytes would be a new challenge.
 */
export const ChallengeSchema = z.string().regex(/^[A-Za-z0-9_-]{54}$/, '40-byte challenge, base64url').refine(isCanonicalBase64url, 'challenge is not canonical base64url');
/** A client-chosen message id: 8 to 64 of [A-Za-z0-9_-]. Random, never derived from time. */
export const MessageIdSchema = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'message id');
const Millis = z.number().int().min(0).max(8.64e15);

// Control characters, bidi embeddings/overrides/isolates and line separators make names lie about themselves;
// a lone surrogate would not survive storage (SQLite and Redis keep UTF-8) as it was sent.
// eslint-disable-next-line no-control-regex
const FORBIDDEN_NAME_CHARS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\p{Cs}]/u;
export const DisplayNameSchema = z
  .string()
  .transform((s) => s.normalize('NFC').trim())
  .pipe(
    z
      .string()
      .min(1, 'display name is empty')
      .max(LIMITS.nameChars, `display name is over ${LIMITS.nameChars} characters`)
      .refine((s) => !FORBIDDEN_NAME_CHARS.test(s), 'display name has control or bidi-override characters'),
  );

// ---- handshake ------------------------------------------------------------------------

/** GET /parley/hello answers this. */
export const HelloSchema = z.strictObject({
  protocol: z.number().int(),
  relayId: z.string().regex(/^[a-z2-7]{26}$/),
  name: z.string().max(LIMITS.nameChars),
  accessCode: z.boolean(),
  challenge: ChallengeSchema,
  challengeTtlMs: z.number().int(),
});
export type Hello = z.infer<typeof HelloSchema>;

/** The Socket.IO handshake `auth` object. */
export const AuthSchema = z.strictObject({
  v: z.number().int(),
  idKey: KeySchema,
  kaKey: KeySchema,
  kaSig: SignatureSchema,
  name: DisplayNameSchema,
  challenge: ChallengeSchema,
  sig: SignatureSchema,
  accessCode: z.string().max(LIMITS.accessCodeChars).optional(),
});
export type Auth = z.input<typeof AuthSchema>;

// ---- requests (client -> relay, answered through the Socket.IO ack) -----------------------

/**
 * A surrogate that is not half of a pair: not Unicode, so a store that writes UTF-8 (SQLite,
 * Redis) would hand back U+FFFD instead of the body as sent. (What `isWellFormed()` checks;
 * the lib here is ES2023.)
 */
const LONE_SURROGATE = /\p{Cs}/u;

export const SendSchema = z.strictObject({
  id: MessageIdSchema,
  to: UserIdSchema,
  body: z.string().min(1).refine((body) => !LONE_SURROGATE.test(body), 'has a lone surrogate (not well-formed UTF-16)'),
  sentAt: Millis,
});
export type SendPayload = z.infer<typeof SendSchema>;
export interface SendResult {
  /** Relay order of this message: the same answer for every retry of the same id. */
  seq: number;
  /**
   * When the recipient took the message before the relay answered (the recipient was
   * connected): the time it did. No "delivered" receipt follows then; this is the receipt.
   */
  deliveredAt?: number;
}

/** Several messages in one request: each is handled as a message:send of its own, in order. */
export const SendManySchema = z.strictObject({
  messages: z.array(SendSchema).min(1).max(LIMITS.sendBatch),
});
export type SendManyPayload = z.infer<typeof SendManySchema>;
export interface SendManyResult {
  /** One answer per message, in the same order, each what message:send would have answered. */
  results: Result<SendResult>[];
}

export const ReadSchema = z.strictObject({
  peer: UserIdSchema,
  ids: z.array(MessageIdSchema).min(1).max(LIMITS.idsPerRequest),
});
export type ReadPayload = z.infer<typeof ReadSchema>;

export const DirectoryPageSchema = z.strictObject({
  after: UserIdSchema.optional(),
  limit: z.number().int().min(1).max(LIMITS.pageSize).optional(),
});
export type DirectoryPagePayload = z.infer<typeof DirectoryPageSchema>;

export const DirectoryGetSchema = z.strictObject({
  ids: z.array(UserIdSchema).min(1).max(LIMITS.idsPerRequest),
});
export type DirectoryGetPayload = z.infer<typeof DirectoryGetSchema>;

export const DirectoryChangesSchema = z.strictObject({
  /** A directory rev: the users whose entry changed after it. */
  since: z.number().int().min(0),
  limit: z.number().int().min(1).max(LIMITS.pageSize).optional(),
});
export type DirectoryChangesPayload = z.infer<typeof DirectoryChangesSchema>;

export const WatchSchema = z.strictObject({
  ids: z.array(UserIdSchema).min(1).max(LIMITS.idsPerRequest),
});
export type WatchPayload = z.infer<typeof WatchSchema>;

export const ProfileSchema = z.strictObject({ name: DisplayNameSchema });
export type ProfilePayload = z.input<typeof ProfileSchema>;

export const TypingSchema = z.strictObject({ to: UserIdSchema, typing: z.boolean() });
export type TypingPayload = z.infer<typeof TypingSchema>;

// ---- what the relay sends -----------------------------------------------------------------

/** A user as the directory knows them. `rev` grows with every change; keep the highest. */
export interface UserEntry {
  id: string;
  name: string;
  idKey: string;
  kaKey: string;
  kaSig: string;
  online: boolean;
  lastSeen: number;
  rev: number;
}

export interface DirectoryPage {
  users: UserEntry[];
  /** Pass as `after` for the next page; null on the last page. */
  next: string | null;
}

export interface DirectoryChanges {
  /** Users whose entry changed after `since`, in rev order. */
  users: UserEntry[];
  /** Pass as `since` for more; null when there is no more. */
  next: number | null;
}

export type Envelope =
  | { seq: number; kind: 'message'; id: string; from: string; body: string; sentAt: number; at: number }
  | { seq: number; kind: 'receipt'; from: string; state: ReceiptState; ids: string[]; at: number };
export type ReceiptState = 'delivered' | 'read';

/** For clients: what a relay sends is untrusted too. */
export const EnvelopeSchema = z.discriminatedUnion('kind', [
  z.object({ seq: z.number().int().positive(), kind: z.literal('message'), id: MessageIdSchema, from: UserIdSchema, body: z.string().max(LIMITS.bodyBytes), sentAt: Millis, at: Millis }),
  z.object({ seq: z.number().int().positive(), kind: z.literal('receipt'), from: UserIdSchema, state: z.enum(['delivered', 'read']), ids: z.array(MessageIdSchema).max(LIMITS.idsPerRequest), at: Millis }),
]);
/** For clients: a relay's answer is untrusted too (an error code this client does not know is kept). */
export const resultSchema = <T extends z.ZodType>(value: T) =>
  z.union([z.object({ ok: z.literal(true), value }), z.object({ ok: z.literal(false), error: z.object({ code: z.string().max(LIMITS.errorCodeChars), message: z.string().max(LIMITS.errorMessageChars) }) })]);
export const SendResultSchema = z.object({ seq: z.number().int().positive(), deliveredAt: Millis.optional() });
export const SendManyResultSchema = z.object({ results: z.array(resultSchema(SendResultSchema)).max(LIMITS.sendBatch) });
export const UserEntrySchema = z.object({
  id: UserIdSchema,
  name: z.string().max(LIMITS.nameChars),
  idKey: KeySchema,
  kaKey: KeySchema,
  kaSig: SignatureSchema,
  online: z.boolean(),
  lastSeen: Millis,
  rev: z.number(),
});

/**
 * For clients: each request's answer as a client may believe it (wrapped in resultSchema()).
 * Directory entries stay unknown here: a client checks each one (UserEntrySchema, then its
 * keys) and skips a bad one rather than the whole page.
 */
const Entries = z.array(z.unknown()).max(Math.max(LIMITS.pageSize, LIMITS.idsPerRequest));
export const ANSWER_SCHEMAS = {
  'message:send': SendResultSchema,
  'message:send-many': SendManyResultSchema,
  'message:read': z.null(),
  'directory:page': z.object({ users: Entries, next: UserIdSchema.nullable() }),
  'directory:get': z.object({ users: Entries }),
  'directory:changes': z.object({ users: Entries, next: z.number().int().min(0).nullable() }),
  'presence:watch': z.object({ users: Entries }),
  'profile:update': z.unknown(),
} as const satisfies { [K in RequestName]: z.ZodType };
export type Answer<K extends RequestName> = z.output<(typeof ANSWER_SCHEMAS)[K]>;

/** For clients: a typing:update as a client may believe it. */
export const TypingUpdateSchema = z.object({ from: UserIdSchema, typing: z.boolean() });

/** The client's answer to a delivery batch. */
export type DeliverAck = { ok: true } | { ok: false; retryInMs?: number };

// ---- Socket.IO event maps ----------------------------------------------------------------

type Ack<T> = (result: Result<T>) => void;

/** Requests with their payloads and results; each is answered through the ack. */
export interface Requests {
  'message:send': [SendPayload, SendResult];
  'message:send-many': [SendManyPayload, SendManyResult];
  'message:read': [ReadPayload, null];
  'directory:page': [DirectoryPagePayload, DirectoryPage];
  'directory:get': [DirectoryGetPayload, { users: UserEntry[] }];
  'directory:changes': [DirectoryChangesPayload, DirectoryChanges];
  'presence:watch': [WatchPayload, { users: UserEntry[] }];
  'profile:update': [ProfilePayload, UserEntry];
}
export type RequestName = keyof Requests;
export const REQUEST_NAMES = [
  'message:send', 'message:send-many', 'message:read', 'directory:page', 'directory:get', 'directory:changes', 'presence:watch', 'profile:update',
] as const satisfies readonly RequestName[];

/** What a client emits (typed for clients). */
export type ClientToServerEvents = {
  [K in RequestName]: (payload: Requests[K][0], ack: Ack<Requests[K][1]>) => void;
} & {
  'typing:set': (payload: TypingPayload) => void;
};

/** What the relay receives: everything is untrusted until parsed. */
export type UntrustedClientEvents = {
  [K in keyof ClientToServerEvents]: (...args: unknown[]) => void;
};

export interface ServerToClientEvents {
  'message:deliver': (batch: Envelope[], ack: (answer: DeliverAck) => void) => void;
  /** A watched user's entry changed (online, offline, renamed). */
  'presence:update': (user: UserEntry) => void;
  /** Someone joined the directory or changed their name or keys: ask for `directory:changes`. At most one a second. */
  'directory:changed': (hint: { rev: number }) => void;
  'typing:update': (update: { from: string; typing: boolean }) => void;
}

/** The connect_error a refused handshake produces: `err.message` is the code, `err.data` this. */
export interface ConnectErrorData {
  code: ErrorCode;
  message: string;
}
