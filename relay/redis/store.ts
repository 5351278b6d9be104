// A RelayStore in Redis, so that every node of a cluster sees one directory, one mailbox per
// user, one seq counter and one set of idempotency records, and a message accepted by any
// node outlives that node. Each write is one atomic script (scripts.ts); a sender is
// answered only after Redis replied, so "acknowledged" means "in Redis" (and as durable as
// Redis's appendfsync setting makes it: see relay/redis/README.md).
//
// Keys (P = prefix): P relay  hash {id, secret}; P seq  the seq counter; P users  sorted set
// of user ids (lexical paging); P u:<id>  hash, a directory entry; P mb:<id>  sorted set, the
// mailbox, scored by seq; P mq:<id>  hash {n, b}, the mailbox's message count and body bytes;
// P sent:<sender>:<id>  "<seq> <digest>[ <delivered at>| held]", the idempotency record,
// expiring after the retention.
//
// The fast path: a message for a recipient connected to this node is claimed in Redis (its
// seq and a "held" record) but kept in this node's memory for up to holdMs; taken by the
// recipient in that time, it never enters the Redis mailbox and its sender's answer carries
// the delivery. Otherwise it is written then. If this node dies meanwhile its sender was not
// answered and resends; the held record expires and the resend is accepted anew.
//
// A message for a recipient connected to another node goes into the Redis mailbox, and its
// sender's answer waits up to holdMs for that node's acknowledgement (told on this node's
// wake-up channel, see taken()): in time, the answer carries the delivery and no receipt
// travels back; else the answer says "stored" and the receipt follows as usual (UNWAIT).
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Envelope } from '../protocol.ts';
import { base32 } from '../identity.ts';
import { StorageError, type AcceptOutcome, type IncomingMessage, type Offer, type PageRequest, type RelayStore, type Settled, type StoredUser } from '../mailbox/store.ts';
import type { Redis } from './commands.ts';
import { ACCEPT, ACKNOWLEDGE, CLAIM, IDENTITY, POST, RECORD, SAVE_USER, SET_LAST_SEEN, UNWAIT, WRITE } from './scripts.ts';

export interface RedisStoreOptions {
  redis: Redis;
  /** Prefix of every key. Default "parley:". */
  prefix?: string;
  /** How long (sender, id) records are kept for idempotent retries. Default 30 days. */
  dedupRetentionMs?: number;
  /** This node: writes wake up the recipient's streams on the other nodes only (lua.ts). */
  nodeId?: string;
  /**
   * How long a message for a recipient connected to this node waits in memory for their ack,
   * and a sender waits for the ack of a recipient connected to another node. Default 1,000 ms.
   */
  holdMs?: number;
}

/** The Redis store, and what this node's wake-up channel tells it. */
export interface ClusterStore extends RelayStore {
  /** Another node's recipient took a message whose sender this node keeps waiting. */
  taken(from: string, id: string, at: number): void;
}

/** How long a "held" record outlives its hold: a resend through another node waits that long at most if this node dies. */
const HELD_MARGIN_MS = 5_000;
/** How long the records of taken messages wait to be written together, ms (a resend meanwhile waits for them, see HELD_WAIT_MS). */
const RECORD_BATCH_MS = 20;
/** How long a delivery notice that came before its sender's wait was registered is kept for it. */
const EARLY_NOTICE_MS = 5_000;
/** How long a resend waits for a held record on another node to settle before answering E_UNAVAILABLE. */
const HELD_WAIT_MS = 2_000;

interface Held {
  recipient: string;
  envelope: Extract<Envelope, { kind: 'message' }>;
  size: number;
  digest: string;
  due: number;
  resolve: (settled: Settled) => void;
  reject: (error: Error) => void;
  durable: Promise<Settled>;
}

const USER_FIELDS = ['id', 'name', 'idKey', 'kaKey', 'kaSig', 'lastSeen', 'rev'] as const;
const UserSchema = z.object({
  id: z.string(),
  name: z.string(),
  idKey: z.string(),
  kaKey: z.string(),
  kaSig: z.string(),
  lastSeen: z.coerce.number().int(),
  rev: z.coerce.number(),
});
const Fields = z.array(z.string().nullable());
const Strings = z.array(z.string());
const Int = z.number().int();
const AcceptReply = z.tuple([z.enum(['accepted', 'waiting', 'duplicate', 'held', 'conflict', 'full']), Int, Int]);
const AcknowledgeReply = z.tuple([Int, z.array(z.union([z.string(), Int])), Strings]);
const IdentityReply = z.tuple([z.string().regex(/^[a-z2-7]{26}$/), z.string().min(43)]);
// What the scripts wrote: checked for shape (cheaply: it is read once per delivery), not re-validated as client input.
const StoredEnvelope = z.discriminatedUnion('kind', [
  z.object({ seq: Int, kind: z.literal('message'), id: z.string(), from: z.string(), body: z.string(), sentAt: z.number(), at: z.number() }),
  z.object({ seq: Int, kind: z.literal('receipt'), from: z.string(), state: z.enum(['delivered', 'read']), ids: Strings, at: z.number() }),
]);

/** A mailbox member: a header line, then the envelope's JSON. */
export function toEnvelope(member: string): Envelope {
  const json = member.slice(member.indexOf('\n') + 1);
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    value = undefined;
  }
  const parsed = StoredEnvelope.safeParse(value);
  if (!parsed.success) throw new StorageError('E_STORAGE', 'a mailbox entry in redis is malformed');
  return parsed.data;
}

/** The JSON of an envelope without its opening brace: the script puts `{"seq":N,` in front. */
const tail = (fields: object) => JSON.stringify(fields).slice(1);

/**
 * The first members of a page that fit `bytes` of bodies (at least one), counted from their
 * header lines (a message's gives its body's bytes; a receipt counts its whole member), so
 * that what a page cannot send is not parsed. `cut`: some were left out.
 */
function fitting(members: string[], bytes: number): { members: string[]; cut: boolean } {
  let used = 0;
  for (let i = 0; i < members.length; i++) {
    const member = members[i] as string;
    used += member.startsWith('m ') ? Number.parseInt(member.slice(2, member.indexOf(' ', 2)), 10) || 0 : member.length;
    if (i > 0 && used > bytes) return { members: members.slice(0, i), cut: true };
  }
  return { members, cut: false };
}

interface Waiting {
  /** Its idempotency record's key. */
  record: string;
  seq: number;
  digest: string;
  timer: NodeJS.Timeout;
  resolve: (settled: Settled) => void;
  reject: (error: Error) => void;
  durable: Promise<Settled>;
}

export async function openRedisStore(options: RedisStoreOptions): Promise<ClusterStore> {
  const { redis } = options;
  const p = options.prefix ?? 'parley:';
  const retention = options.dedupRetentionMs ?? 30 * 24 * 3600 * 1000;
  const me = options.nodeId ?? '';
  const key = {
    nodes: `${p}nodes`,
    relay: `${p}relay`,
    seq: `${p}seq`,
    users: `${p}users`,
    usersByRev: `${p}users:rev`,
    user: (id: string) => `${p}u:${id}`,
    mailbox: (id: string) => `${p}mb:${id}`,
    quota: (id: string) => `${p}mq:${id}`,
    sent: (from: string, id: string) => `${p}sent:${from}:${id}`,
  };
  const holdMs = options.holdMs ?? 1000;
  const [relayId, secret] = await redis.run(IDENTITY, [key.relay], [base32(randomBytes(16)), randomBytes(32).toString('base64')], IdentityReply);
  let closed = false;
  const open = () => {
    if (closed) throw new StorageError('E_UNAVAILABLE', 'relay store is closed');
  };

  // Held messages, in seq (= due) order, and per recipient; and by (sender, id) for resends here.
  const held = new Map<number, Held>();
  const heldFor = new Map<string, Map<number, Held>>();
  const heldBySent = new Map<string, Held>();
  let holdTimer: NodeJS.Timeout | undefined;
  const writes = new Set<Promise<unknown>>();
  /** Records of taken messages, written together a moment later (until then they read "held"). */
  const records = new Map<string, string>();
  let recordTimer: NodeJS.Timeout | undefined;
  const writeRecords = () => {
    recordTimer = undefined;
    if (records.size === 0) return;
    const keys = [...records.keys()];
    const values = [...records.values()];
    records.clear();
    const work = redis.run(RECORD, keys, [...values, retention], Int);
    writes.add(work);
    // Not recorded (Redis away): the held records expire and a resend is delivered again, deduplicated by the recipient.
    void work.catch(() => undefined).finally(() => writes.delete(work));
  };
  /** Senders' answers waiting for a recipient on another node, by `${from}\n${id}`. */
  const waits = new Map<string, Waiting>();
  /**
   * Notices that arrived before the script's reply made the sender wait here (they come on
   * another connection, in no order with it), kept a few seconds for wait() to find.
   */
  const early = new Map<string, { at: number; until: number }>();

  const forget = (h: Held) => {
    held.delete(h.envelope.seq);
    heldBySent.delete(`${h.envelope.from}\n${h.envelope.id}`);
    const mine = heldFor.get(h.recipient);
    mine?.delete(h.envelope.seq);
    if (mine?.size === 0) heldFor.delete(h.recipient);
  };
  /** Not taken in time: into the Redis mailbox, and then its sender is answered. */
  const write = (h: Held) => {
    forget(h);
    const member = `m ${h.size} ${h.envelope.from} ${h.envelope.id}\n${JSON.stringify(h.envelope)}`;
    const work = redis
      .run(WRITE, [key.sent(h.envelope.from, h.envelope.id), key.mailbox(h.recipient), key.quota(h.recipient), key.nodes],
        [h.digest, h.size, retention, h.envelope.seq, member, p, me, h.recipient], Int)
      .then(() => h.resolve({}), (error: unknown) => h.reject(error instanceof StorageError ? error : new StorageError('E_STORAGE', `relay storage failed: ${String(error)}`)));
    writes.add(work);
    void work.finally(() => writes.delete(work));
  };
  const writeDue = (all = false) => {
    holdTimer = undefined;
    const t = performance.now(); // monotonic: a wall clock stepped back must not stall the holds
    for (const h of held.values()) {
      if (!all && h.due > t) {
        holdTimer = setTimeout(writeDue, Math.max(1, h.due - t)).unref();
        break;
      }
      write(h);
    }
  };
  const hold = (m: IncomingMessage, seq: number): Held => {
    let resolve!: (settled: Settled) => void;
    let reject!: (error: Error) => void;
    const durable = new Promise<Settled>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const envelope = { seq, kind: 'message' as const, id: m.id, from: m.from, body: m.body, sentAt: m.sentAt, at: m.at };
    const h: Held = { recipient: m.to, envelope, size: Buffer.byteLength(m.body), digest: m.digest, due: performance.now() + holdMs, resolve, reject, durable };
    held.set(seq, h);
    heldBySent.set(`${m.from}\n${m.id}`, h);
    let mine = heldFor.get(m.to);
    if (!mine) heldFor.set(m.to, (mine = new Map()));
    mine.set(seq, h);
    holdTimer ??= setTimeout(writeDue, holdMs).unref();
    return h;
  };
  /** A page read from Redis, with what is held here merged in seq order: none newer than a page cut short by its bytes. */
  const withHeld = (recipient: string, members: string[], request: PageRequest): Envelope[] => {
    const { members: kept, cut } = fitting(members, request.bytes ?? Infinity);
    const fromRedis = kept.map(toEnvelope);
    const mine = heldFor.get(recipient);
    if (!mine) return fromRedis;
    const readTo = cut ? (fromRedis.at(-1)?.seq ?? request.afterSeq) : Infinity;
    const merged = [...fromRedis, ...[...mine.values()].filter((h) => h.envelope.seq > request.afterSeq && h.envelope.seq <= readTo).map((h) => h.envelope)];
    return merged.sort((a, b) => a.seq - b.seq).slice(0, request.limit);
  };

  const getUsers = async (ids: readonly string[]): Promise<StoredUser[]> => {
    open();
    const rows = await Promise.all(ids.map((id) => redis.command(['HMGET', key.user(id), ...USER_FIELDS], Fields)));
    const users: StoredUser[] = [];
    for (const row of rows) {
      if (row[0] === null || row[0] === undefined) continue;
      const parsed = UserSchema.safeParse(Object.fromEntries(USER_FIELDS.map((f, i) => [f, row[i]])));
      if (!parsed.success) throw new StorageError('E_STORAGE', 'a directory entry in redis is malformed');
      users.push(parsed.data);
    }
    return users.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  };

  const acceptInRedis = (m: IncomingMessage, quota: { messages: number; bytes: number }) => {
    const size = Buffer.byteLength(m.body);
    const header = `m ${size} ${m.from} ${m.id}\n`;
    const json = tail({ kind: 'message', id: m.id, from: m.from, body: m.body, sentAt: m.sentAt, at: m.at });
    return redis.run(
      ACCEPT,
      [key.sent(m.from, m.id), key.mailbox(m.to), key.quota(m.to), key.seq, key.nodes],
      [m.digest, size, quota.messages, quota.bytes, retention, header, json, p, me, m.to, holdMs > 0 && !closed ? '1' : '0'],
      AcceptReply,
    );
  };

  /** Stops waiting: the answer says stored, or delivered when the recipient took it meanwhile. */
  const unwait = (sent: string, w: Waiting) => {
    waits.delete(sent);
    clearTimeout(w.timer);
    const work = redis.run(UNWAIT, [w.record], [me], Int).then(
      (at) => w.resolve(at > 0 ? { deliveredAt: at } : {}),
      // Unsure whether a receipt will follow: not answered, the sender resends, and the
      // duplicate clears the wait (scripts.ts), so that it will.
      () => w.reject(new StorageError('E_UNAVAILABLE', 'relay storage is unreachable; send it again')),
    );
    writes.add(work);
    void work.finally(() => writes.delete(work));
  };
  const wait = (m: IncomingMessage, seq: number): Promise<Settled> => {
    let resolve!: (settled: Settled) => void;
    let reject!: (error: Error) => void;
    const durable = new Promise<Settled>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const sent = `${m.from}\n${m.id}`;
    const noticed = early.get(sent);
    if (noticed) {
      early.delete(sent);
      return Promise.resolve({ deliveredAt: noticed.at });
    }
    const w: Waiting = { record: key.sent(m.from, m.id), seq, digest: m.digest, resolve, reject, durable, timer: setTimeout(() => unwait(sent, w), holdMs).unref() };
    waits.set(sent, w);
    return durable;
  };

  /** The outcome of a script's reply. A message another node holds is waited for: its answer comes when that settles. */
  async function outcomeOf(reply: z.infer<typeof AcceptReply>, m: IncomingMessage, quota: { messages: number; bytes: number }): Promise<AcceptOutcome> {
    const deadline = performance.now() + HELD_WAIT_MS;
    for (let [kind, seq, third] = reply; ; [kind, seq, third] = await acceptInRedis(m, quota)) {
      switch (kind) {
        // Redis has replied: the write is as durable as its appendfsync makes it.
        case 'accepted':
          return { kind, seq, prev: third, durable: Promise.resolve({}) };
        case 'waiting':
          return { kind: 'accepted', seq, prev: third, durable: wait(m, seq) };
        case 'duplicate':
          return { kind, seq, durable: Promise.resolve(third > 0 ? { deliveredAt: third } : {}) };
        case 'conflict':
        case 'full':
          return { kind };
        case 'held':
          if (performance.now() > deadline) throw new StorageError('E_UNAVAILABLE', 'this message is still being delivered through another relay node; send it again');
          await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  const store: ClusterStore = {
    relayId,
    secret: Buffer.from(secret, 'base64'),

    async saveUser(user) {
      open();
      await redis.run(SAVE_USER, [key.user(user.id), key.users, key.usersByRev], [user.id, user.name, user.idKey, user.kaKey, user.kaSig, user.lastSeen, user.rev], Int);
    },
    async setLastSeen(id, lastSeen, rev) {
      open();
      await redis.run(SET_LAST_SEEN, [key.user(id), key.usersByRev], [id, lastSeen, rev], Int);
    },
    getUsers,
    async pageUsers(after, limit) {
      open();
      const ids = await redis.command(['ZRANGE', key.users, after === undefined ? '-' : `(${after}`, '+', 'BYLEX', 'LIMIT', 0, limit], Strings);
      return getUsers(ids);
    },
    async changedUsers(since, limit) {
      open();
      const ids = await redis.command(['ZRANGE', key.usersByRev, `(${since}`, '+inf', 'BYSCORE', 'LIMIT', 0, limit], Strings);
      return (await getUsers(ids)).sort((a, b) => a.rev - b.rev);
    },

    async accept(m, quota, live = false): Promise<AcceptOutcome> {
      open();
      const here = heldBySent.get(`${m.from}\n${m.id}`) ?? waits.get(`${m.from}\n${m.id}`);
      if (here) {
        const seq = 'envelope' in here ? here.envelope.seq : here.seq;
        return here.digest === m.digest ? { kind: 'duplicate', seq, durable: here.durable } : { kind: 'conflict' };
      }
      const size = Buffer.byteLength(m.body);
      if (live && holdMs > 0) {
        const [kind, seq, third] = await redis.run(
          CLAIM,
          [key.sent(m.from, m.id), key.mailbox(m.to), key.quota(m.to), key.seq],
          [m.digest, size, quota.messages, quota.bytes, holdMs + HELD_MARGIN_MS],
          AcceptReply,
        );
        if (kind === 'accepted') {
          const h = hold(m, seq);
          // What waits here for the recipient comes after what waits in Redis.
          const prev = Math.max(third, ...[...(heldFor.get(m.to)?.keys() ?? [])].filter((s) => s < seq));
          return { kind, seq, prev, durable: h.durable };
        }
        return outcomeOf([kind, seq, third], m, quota);
      }
      return outcomeOf(await acceptInRedis(m, quota), m, quota);
    },
    async postReceipt(to, r) {
      open();
      const receipt = tail({ kind: 'receipt', from: r.from, state: r.state, ids: r.ids, at: r.at });
      const seq = await redis.run(POST, [key.mailbox(to), key.seq, key.nodes], [receipt, p, me, to], Int);
      return { seq, durable: Promise.resolve({}) };
    },
    async page(recipient, afterSeq, limit, bytes) {
      open();
      const members = await redis.command(['ZRANGE', key.mailbox(recipient), `(${afterSeq}`, '+inf', 'BYSCORE', 'LIMIT', 0, limit], Strings);
      return withHeld(recipient, members, { afterSeq, limit, ...(bytes === undefined ? {} : { bytes }) });
    },
    async acknowledge(recipient, seqs, at, next) {
      open();
      // Taken while held here: never written; the sender's answer carries the delivery.
      const mine = heldFor.get(recipient);
      const taken = mine ? seqs.filter((s) => mine.has(s)) : [];
      for (const s of taken) {
        const h = mine?.get(s);
        if (!h) continue;
        forget(h);
        h.resolve({ deliveredAt: at });
        records.set(key.sent(h.envelope.from, h.envelope.id), `${s} ${h.digest} ${at}`);
      }
      if (taken.length > 0) recordTimer ??= setTimeout(writeRecords, RECORD_BATCH_MS).unref();
      if (taken.length === seqs.length) {
        // The following page without reading Redis: whatever enters this recipient's Redis
        // mailbox wakes their delivery streams here (this node's writes offer it, another
        // node's publish a wake-up, a lost wake-up is swept), and a stream woken while it
        // delivers reads the mailbox before it goes idle (relay/delivery.ts). Reading here
        // anyway would cost a round trip per delivered message.
        return { removed: taken.length, receiptsFor: [], ...(next ? { next: withHeld(recipient, [], next) } : {}) };
      }
      seqs = taken.length === 0 ? seqs : seqs.filter((s) => !taken.includes(s));
      const keys = [key.mailbox(recipient), key.quota(recipient), key.seq, key.nodes];
      const args = [recipient, at, p, me, next?.afterSeq ?? 0, next?.limit ?? 0, ...seqs];
      const [removed, flat, following] = await redis.run(ACKNOWLEDGE, keys, args, AcknowledgeReply);
      const offers: Offer[] = [];
      for (let i = 0; i + 2 < flat.length; i += 3) {
        const [to, prev, member] = [flat[i], flat[i + 1], flat[i + 2]];
        if (typeof to !== 'string' || typeof prev !== 'number' || typeof member !== 'string') throw new StorageError('E_STORAGE', 'unexpected reply from redis to an acknowledgement');
        offers.push({ to, prev, envelope: toEnvelope(member) });
      }
      return {
        removed: removed + taken.length, receiptsFor: offers.map((o) => o.to), offers,
        ...(next ? { next: withHeld(recipient, following, next) } : {}),
      };
    },
    taken(from, id, at) {
      const sent = `${from}\n${id}`;
      const w = waits.get(sent);
      if (!w) {
        // Not waiting yet (or answered already: then UNWAIT read the time from the record).
        const t = Date.now();
        for (const [k, e] of early) {
          if (e.until > t) break;
          early.delete(k);
        }
        early.set(sent, { at, until: t + EARLY_NOTICE_MS });
        return;
      }
      waits.delete(sent);
      clearTimeout(w.timer);
      w.resolve({ deliveredAt: at });
    },
    async close() {
      // What is held is written first, and waiting senders answered; the connection belongs
      // to the cluster (relay/redis/cluster.ts), which closes it.
      clearTimeout(holdTimer);
      writeDue(true);
      clearTimeout(recordTimer);
      writeRecords();
      for (const [sent, w] of [...waits]) unwait(sent, w);
      while (writes.size > 0) await Promise.allSettled([...writes]);
      closed = true;
    },
  };
  return store;
}
