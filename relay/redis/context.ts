// What the parts of the Redis store (relay/redis/store.ts) share: where it keeps things (every
// key below), and the connection, node and timings they work with.
//
// Keys (P = prefix): P relay  hash {id, secret}; P seq  the seq counter; P users  sorted set
// of user ids (lexical paging); P u:<id>  hash, a directory entry; P mb:<id>  sorted set, the
// mailbox, scored by seq; P mq:<id>  hash {n, b, hn, hb}, the mailbox's message count and
// body bytes, then those of the messages held for them (the totals of P mh:<id>);
// P mh:<id>  sorted set of "<seq> <body bytes>" scored by expiry, the messages held in a node's
// memory for them (reserved: the quota counts them until they expire or are given back);
// P dead:<id>  sorted set, members of the mailbox that could not be read, scored by seq;
// P sent:<sender>:<id>  "<seq> <digest>[ <delivered at>| held]", the idempotency record,
// expiring after the retention.
import type { Redis } from './commands.ts';

export type StoreKeys = ReturnType<typeof storeKeys>;

export function storeKeys(p: string) {
  return {
    /** The prefix itself: the scripts build some key names from it (lua.ts). */
    prefix: p,
    nodes: `${p}nodes`,
    relay: `${p}relay`,
    seq: `${p}seq`,
    /** Directory revisions, shared with the nodes' presence (node-scripts.ts). */
    rev: `${p}rev`,
    users: `${p}users`,
    usersByRev: `${p}users:rev`,
    user: (id: string) => `${p}u:${id}`,
    mailbox: (id: string) => `${p}mb:${id}`,
    quota: (id: string) => `${p}mq:${id}`,
    held: (id: string) => `${p}mh:${id}`,
    deadLetters: (id: string) => `${p}dead:${id}`,
    sent: (from: string, id: string) => `${p}sent:${from}:${id}`,
  };
}

/** What the store's parts that keep things in this node's memory (held.ts, waits.ts) work with. */
export interface StoreContext {
  redis: Redis;
  key: StoreKeys;
  /** This node: writes wake up the recipient's streams on the other nodes only (lua.ts). */
  me: string;
  /** How long a message waits in memory for its recipient, or a sender for another node's recipient. */
  holdMs: number;
  /** How long (sender, id) records are kept. */
  retention: number;
  /** Keeps a write's promise until it settles, for the store's close() to wait for. */
  track: (work: Promise<unknown>) => void;
}
