// A RelayStore in Redis, so that every node of a cluster sees one directory, one mailbox per
// user, one seq counter and one set of idempotency records, and a message accepted by any
// node outlives that node. Each write is one atomic script (scripts.ts); a sender is
// answered only after Redis replied, so "acknowledged" means "in Redis" (and as durable as
// Redis's appendfsync setting makes it: see relay/redis/README.md). Where it keeps what: context.ts.
//
// The fast path: a message for a recipient connected to this node (and to no other node: their
// sockets there must get it too, so it goes through the mailbox then) is claimed in Redis (its
// seq and a "held" record) but kept in this node's memory for up to holdMs; taken by the
// recipient in that time, it never enters the Redis mailbox and its sender's answer carries
// the delivery. Otherwise it is written then. If this node dies meanwhile its sender was not
// answered and resends; the held record expires and the resend is accepted anew (held.ts).
//
// A message for a recipient connected to another node goes into the Redis mailbox, and its
// sender's answer waits up to holdMs for that node's acknowledgement (told on this node's
// wake-up channel, see taken()): in time, the answer carries the delivery and no receipt
// travels back; else the answer says "stored" and the receipt follows as usual (UNWAIT; waits.ts).
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { base32 } from '../identity.ts';
import { silentLogger, type Logger } from '../log.ts';
import type { Envelope } from '../protocol.ts';
import { StorageError, type AcceptOutcome, type IncomingMessage, type Offer, type PageRequest, type RelayStore } from '../mailbox/store.ts';
import type { Redis } from './commands.ts';
import { storeKeys, type StoreContext } from './context.ts';
import { heldMessages } from './held.ts';
import { AcceptReply, AcknowledgeReply, IdentityReply, Int, Scored, Strings, messageHeader, readMember, tail, toEnvelope } from './members.ts';
import { ACCEPT, ACKNOWLEDGE, CLAIM, IDENTITY, POST, SET_ASIDE } from './scripts.ts';
import { redisDirectory } from './users.ts';
import { senderWaits } from './waits.ts';

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
  log?: Logger;
}

/** The Redis store, and what this node's wake-up channel tells it. */
export interface ClusterStore extends RelayStore {
  /** Another node's recipient took a message whose sender this node keeps waiting. */
  taken(from: string, id: string, at: number): void;
  /** The user connected a socket to another node: what is held here for them goes into the mailbox, for that socket too. */
  joinedElsewhere(userId: string): void;
}

/** How long a "held" record outlives its hold: a resend through another node waits that long at most if this node dies. */
const HELD_MARGIN_MS = 5_000;
/** How long a resend waits for a held record on another node to settle before answering E_UNAVAILABLE. */
const HELD_WAIT_MS = 2_000;

export async function openRedisStore(options: RedisStoreOptions): Promise<ClusterStore> {
  const { redis } = options;
  const retention = options.dedupRetentionMs ?? 30 * 24 * 3600 * 1000;
  const me = options.nodeId ?? '';
  const key = storeKeys(options.prefix ?? 'parley:');
  const holdMs = options.holdMs ?? 1000;
  const log = options.log ?? silentLogger;
  const [relayId, secret] = await redis.run(IDENTITY, [key.relay], [base32(randomBytes(16)), randomBytes(32).toString('base64')], IdentityReply);
  let closed = false;
  const open = () => {
    if (closed) throw new StorageError('E_UNAVAILABLE', 'relay store is closed');
  };

  /** Writes not settled yet, which close() waits for. */
  const writes = new Set<Promise<unknown>>();
  const track = (work: Promise<unknown>) => {
    writes.add(work);
    void work.finally(() => writes.delete(work));
  };
  const context: StoreContext = { redis, key, me, holdMs, retention, track };
  const held = heldMessages(context);
  /**
   * CLAIMs in flight per recipient, and the recipients whose join notice (another node) came
   * meanwhile: the notice travels on another connection, so it can overtake the claim's reply.
   */
  const claiming = new Map<string, number>();
  const joinedWhileClaiming = new Set<string>();
  const waits = senderWaits(context);

  const acceptInRedis = (m: IncomingMessage, quota: { messages: number; bytes: number }) => {
    const size = Buffer.byteLength(m.body);
    const header = messageHeader(size, m.from, m.id);
    const json = tail({ kind: 'message', id: m.id, from: m.from, body: m.body, sentAt: m.sentAt, at: m.at });
    return redis.run(
      ACCEPT,
      [key.sent(m.from, m.id), key.mailbox(m.to), key.quota(m.to), key.seq, key.nodes, key.held(m.to)],
      [m.digest, size, quota.messages, quota.bytes, retention, header, json, key.prefix, me, m.to, holdMs > 0 && !closed ? '1' : '0'],
      AcceptReply,
    );
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
          return { kind: 'accepted', seq, prev: third, durable: waits.wait(m, seq) };
        case 'duplicate':
          return { kind, seq, durable: Promise.resolve(third > 0 ? { deliveredAt: third } : {}) };
        case 'conflict':
        case 'full':
          return { kind };
        case 'elsewhere': // only CLAIM answers so, and accept() goes on with ACCEPT
          throw new StorageError('E_STORAGE', 'unexpected reply from redis to a message');
        case 'held':
          if (performance.now() > deadline) throw new StorageError('E_UNAVAILABLE', 'this message is still being delivered through another relay node; send it again');
          await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  const pageCommand = (recipient: string, { afterSeq, limit }: PageRequest) => ['ZRANGE', key.mailbox(recipient), `(${afterSeq}`, '+inf', 'BYSCORE', 'LIMIT', 0, limit];
  const readMailbox = (recipient: string, request: PageRequest) => redis.command(pageCommand(recipient, request), Strings);

  /**
   * A page of `members` read from the recipient's mailbox. Members that cannot be read are
   * moved to the dead letters (SET_ASIDE) and the page is read again: left there, they would
   * fail every page, and the recipient would get nothing more.
   */
  const pageOf = async (recipient: string, members: string[], request: PageRequest): Promise<Envelope[]> => {
    for (;;) {
      try {
        return held.withHeld(recipient, members, request);
      } catch (error) {
        if (members.every((m) => readMember(m) !== undefined)) throw error;
        // Their seqs, read again with the page: SET_ASIDE finds them by seq (scripts.ts).
        const scored = await redis.command([...pageCommand(recipient, request), 'WITHSCORES'], Scored);
        const bad = scored.filter(([member]) => readMember(member) === undefined).map(([, seq]) => seq);
        const moved = await redis.run(SET_ASIDE, [key.mailbox(recipient), key.quota(recipient), key.deadLetters(recipient)], bad, Int);
        if (moved > 0) log.error('redis: set aside mailbox entries that cannot be read', { recipient, count: moved, key: key.deadLetters(recipient) });
      }
      members = await readMailbox(recipient, request);
    }
  };

  const store: ClusterStore = {
    relayId,
    secret: Buffer.from(secret, 'base64'),
    ...redisDirectory(redis, key, open),

    async accept(m, quota, live = false): Promise<AcceptOutcome> {
      open();
      const here = held.bySent(m.from, m.id) ?? waits.bySent(m.from, m.id);
      if (here) {
        const seq = 'envelope' in here ? here.envelope.seq : here.seq;
        return here.digest === m.digest ? { kind: 'duplicate', seq, durable: here.done.promise } : { kind: 'conflict' };
      }
      const size = Buffer.byteLength(m.body);
      // Held too when something for the recipient is held here (they may just have left): a
      // message written into the mailbox now would reach their other devices before it.
      if ((live || held.holding(m.to)) && holdMs > 0) {
        claiming.set(m.to, (claiming.get(m.to) ?? 0) + 1);
        let claimed: z.infer<typeof AcceptReply>;
        let joined: boolean;
        try {
          claimed = await redis.run(
            CLAIM,
            [key.sent(m.from, m.id), key.mailbox(m.to), key.quota(m.to), key.seq, key.nodes, key.held(m.to)],
            [m.digest, size, quota.messages, quota.bytes, holdMs + HELD_MARGIN_MS, key.prefix, me, m.to],
            AcceptReply,
          );
        } finally {
          joined = joinedWhileClaiming.has(m.to);
          const left = (claiming.get(m.to) ?? 1) - 1;
          if (left > 0) claiming.set(m.to, left);
          else {
            claiming.delete(m.to);
            joinedWhileClaiming.delete(m.to);
          }
        }
        const [kind, seq, third] = claimed;
        if (kind === 'elsewhere') {
          // The recipient is connected to another node too: held here, it would reach only
          // their sockets here. Into the mailbox instead, which wakes the other nodes; what is
          // held here for them is written first, so that it stays ahead of this one.
          const failed = await held.release(m.to, m.from);
          if (failed) throw failed;
          return outcomeOf(await acceptInRedis(m, quota), m, quota);
        }
        if (kind === 'accepted') {
          const h = held.hold(m, seq);
          // What waits here for the recipient comes after what waits in Redis.
          const prev = Math.max(third, ...held.seqsFor(m.to).filter((s) => s < seq));
          // They connected to another node after the claim, and the notice came before its
          // reply (another connection): into the mailbox now, as joinedElsewhere() does.
          if (joined) void held.release(m.to);
          return { kind, seq, prev, durable: h.done.promise };
        }
        return outcomeOf([kind, seq, third], m, quota);
      }
      return outcomeOf(await acceptInRedis(m, quota), m, quota);
    },
    async postReceipt(to, r) {
      open();
      const receipt = tail({ kind: 'receipt', from: r.from, state: r.state, ids: r.ids, at: r.at });
      const seq = await redis.run(POST, [key.mailbox(to), key.seq, key.nodes], [receipt, key.prefix, me, to], Int);
      return { seq, durable: Promise.resolve({}) };
    },
    async page(recipient, afterSeq, limit, bytes) {
      open();
      const request = { afterSeq, limit, ...(bytes === undefined ? {} : { bytes }) };
      return pageOf(recipient, await readMailbox(recipient, request), request);
    },
    async acknowledge(recipient, seqs, at, next) {
      open();
      // Taken while held here: never written; the sender's answer carries the delivery.
      const taken = held.take(recipient, seqs, at);
      if (taken.length === seqs.length) {
        // Nothing more held here: the following page is empty, without reading Redis.
        // Whatever enters this recipient's Redis mailbox wakes their delivery streams here
        // (this node's writes offer it, another node's publish a wake-up, a lost wake-up is
        // swept), and a stream woken while it delivers reads the mailbox before it goes idle
        // (relay/delivery.ts). Reading here anyway would cost a round trip per delivered
        // message. More held here: no page, so that the stream reads Redis and memory
        // together; a page from memory alone could hold a held envelope while skipping an
        // older one in Redis, and the stream's cursor would move past that one for good.
        const following = next && held.withHeld(recipient, [], next).length === 0 ? { next: [] } : {};
        return { removed: taken.length, receiptsFor: [], ...following };
      }
      seqs = taken.length === 0 ? seqs : seqs.filter((s) => !taken.includes(s));
      const keys = [key.mailbox(recipient), key.quota(recipient), key.seq, key.nodes];
      const args = [recipient, at, key.prefix, me, next?.afterSeq ?? 0, next?.limit ?? 0, ...seqs];
      const [removed, flat, following] = await redis.run(ACKNOWLEDGE, keys, args, AcknowledgeReply);
      const offers: Offer[] = [];
      for (let i = 0; i + 2 < flat.length; i += 3) {
        const [to, prev, member] = [flat[i], flat[i + 1], flat[i + 2]];
        if (typeof to !== 'string' || typeof prev !== 'number' || typeof member !== 'string') throw new StorageError('E_STORAGE', 'unexpected reply from redis to an acknowledgement');
        offers.push({ to, prev, envelope: toEnvelope(member) });
      }
      // The acknowledgement is in Redis: a following page that fails now is read by the stream itself.
      const page = next && (await pageOf(recipient, following, next).catch(() => undefined));
      return { removed: removed + taken.length, receiptsFor: offers.map((o) => o.to), offers, ...(page ? { next: page } : {}) };
    },
    taken: (from, id, at) => waits.taken(from, id, at),
    joinedElsewhere(userId) {
      if (claiming.has(userId)) joinedWhileClaiming.add(userId);
      if (held.holding(userId)) void held.release(userId);
    },
    async close() {
      // What is held is written first, and waiting senders answered; the connection belongs
      // to the cluster (relay/redis/cluster.ts), which closes it.
      held.close();
      waits.close();
      while (writes.size > 0) await Promise.allSettled([...writes]);
      closed = true;
    },
  };
  return store;
}
