// A RelayStore in Redis, so that every node of a cluster sees one directory, one mailbox per
// user, one seq counter and one set of idempotency records, and a message accepted by any
// node outlives that node. Each write is one atomic script (scripts.ts); a sender is
// answered only after Redis replied, so "acknowledged" means "in Redis" (and as durable as
// Redis's appendfsync setting makes it: see relay/redis/README.md).
//
// Keys (P = prefix): P relay  hash {id, secret}; P seq  the seq counter; P users  sorted set
// of user ids (lexical paging); P u:<id>  hash, a directory entry; P mb:<id>  sorted set, the
// mailbox, scored by seq; P mq:<id>  hash {n, b}, the mailbox's message count and body bytes;
// P sent:<sender>:<id>  "<seq> <digest>", the idempotency record, expiring after the retention.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Envelope } from '../protocol.ts';
import { base32 } from '../identity.ts';
import { StorageError, type AcceptOutcome, type Offer, type RelayStore, type StoredUser } from '../mailbox/store.ts';
import type { Redis } from './commands.ts';
import { ACCEPT, ACKNOWLEDGE, IDENTITY, POST, SAVE_USER, SET_LAST_SEEN } from './scripts.ts';

export interface RedisStoreOptions {
  redis: Redis;
  /** Prefix of every key. Default "parley:". */
  prefix?: string;
  /** How long (sender, id) records are kept for idempotent retries. Default 30 days. */
  dedupRetentionMs?: number;
  /** This node: writes wake up the recipient's streams on the other nodes only (lua.ts). */
  nodeId?: string;
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
const AcceptReply = z.tuple([z.enum(['accepted', 'duplicate', 'conflict', 'full']), Int, Int]);
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

export async function openRedisStore(options: RedisStoreOptions): Promise<RelayStore> {
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
  const [relayId, secret] = await redis.run(IDENTITY, [key.relay], [base32(randomBytes(16)), randomBytes(32).toString('base64')], IdentityReply);
  let closed = false;
  const open = () => {
    if (closed) throw new StorageError('E_UNAVAILABLE', 'relay store is closed');
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

  const store: RelayStore = {
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

    async accept(m, quota): Promise<AcceptOutcome> {
      open();
      const size = Buffer.byteLength(m.body);
      const header = `m ${size} ${m.from} ${m.id}\n`;
      const json = tail({ kind: 'message', id: m.id, from: m.from, body: m.body, sentAt: m.sentAt, at: m.at });
      const [kind, seq, prev] = await redis.run(
        ACCEPT,
        [key.sent(m.from, m.id), key.mailbox(m.to), key.quota(m.to), key.seq, key.nodes],
        [m.digest, size, quota.messages, quota.bytes, retention, header, json, p, me, m.to],
        AcceptReply,
      );
      // Redis has replied: the write is as durable as its appendfsync makes it.
      if (kind === 'accepted') return { kind, seq, prev, durable: Promise.resolve({}) };
      if (kind === 'duplicate') return { kind, seq, durable: Promise.resolve({}) };
      return { kind };
    },
    async postReceipt(to, r) {
      open();
      const receipt = tail({ kind: 'receipt', from: r.from, state: r.state, ids: r.ids, at: r.at });
      const seq = await redis.run(POST, [key.mailbox(to), key.seq, key.nodes], [receipt, p, me, to], Int);
      return { seq, durable: Promise.resolve({}) };
    },
    async page(recipient, afterSeq, limit) {
      open();
      const members = await redis.command(['ZRANGE', key.mailbox(recipient), `(${afterSeq}`, '+inf', 'BYSCORE', 'LIMIT', 0, limit], Strings);
      return members.map(toEnvelope);
    },
    async acknowledge(recipient, seqs, at, next) {
      open();
      const keys = [key.mailbox(recipient), key.quota(recipient), key.seq, key.nodes];
      const args = [recipient, at, p, me, next?.afterSeq ?? 0, next?.limit ?? 0, ...seqs];
      const [removed, flat, following] = await redis.run(ACKNOWLEDGE, keys, args, AcknowledgeReply);
      const offers: Offer[] = [];
      for (let i = 0; i + 2 < flat.length; i += 3) {
        const [to, prev, member] = [flat[i], flat[i + 1], flat[i + 2]];
        if (typeof to !== 'string' || typeof prev !== 'number' || typeof member !== 'string') throw new StorageError('E_STORAGE', 'unexpected reply from redis to an acknowledgement');
        offers.push({ to, prev, envelope: toEnvelope(member) });
      }
      return { removed, receiptsFor: offers.map((o) => o.to), offers, ...(next ? { next: following.map(toEnvelope) } : {}) };
    },
    close() {
      // The connection belongs to the cluster (relay/redis/cluster.ts), which closes it.
      closed = true;
      return Promise.resolve();
    },
  };
  return store;
}
