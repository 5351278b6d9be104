// The Redis RelayStore and shared state on their own: the same contract as the SQLite store.
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from 'redis';
import { createRedis, type Redis } from '../../relay/redis/commands.ts';
import { openRedisStore } from '../../relay/redis/store.ts';
import { WRITE } from '../../relay/redis/scripts.ts';
import { StorageError, type IncomingMessage } from '../../relay/mailbox/store.ts';
import { eventually, idsOf, readPages } from '../support/relay.ts';
import { useSharedState } from './support/nodes.ts';

const shared = useSharedState();

const open = (prefix: string, holdMs?: number) => shared.open({ prefix, nodeTtlMs: 1_000, ...(holdMs === undefined ? {} : { holdMs }) });

const wrapped: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const node of wrapped.splice(0)) await node.close();
});

/** The store of a node (`nodeId`, a hold of `holdMs`) over its own Redis connection as `wrap` changes it; closed after the test. */
const wrappedNode = async (prefix: string, nodeId: string, wrap: (real: Redis) => Redis, holdMs = 50) => {
  const client = createClient({ url: shared.redis.url });
  await client.connect();
  const real = createRedis(client, 2_000);
  const store = await openRedisStore({ redis: wrap(real), prefix, nodeId, holdMs });
  const node = {
    store,
    close: async () => {
      await store.close();
      real.close();
      await client.close();
    },
  };
  wrapped.push(node);
  return node;
};

/** A reply `ms` late, in order (a busy event loop). */
const late = <T>(reply: Promise<T>, ms = 100) => reply.then(async (value) => (await new Promise((r) => setTimeout(r, ms)), value));

/** The store of a node (a hold of 50 ms) that loses Redis for good once it holds a message: its process died. */
const dyingNode = async (prefix: string) => {
  let dead = false;
  const { store } = await wrappedNode(prefix, 'dying', (real) => ({ ...real, run: (lua, keys, args, reply) => (dead ? Promise.reject(new StorageError('E_UNAVAILABLE', 'gone')) : real.run(lua, keys, args, reply)) }));
  /** Holds `m` for its recipient, connected here, then dies: settles as the message's durability does (rejected, E_UNAVAILABLE). */
  return async (m: IncomingMessage, quota: { messages: number; bytes: number }) => {
    const held = await store.accept(m, quota, true);
    if (held.kind !== 'accepted') throw new Error(held.kind);
    dead = true;
    return held.durable;
  };
};
/** The store of a node (a hold of 50 ms) whose first WRITE of a held message Redis refuses, `afterMs` after it was sent (a full Redis refuses writes). */
const refusingNode = async (prefix: string, afterMs: number) => {
  let refused = false;
  const { store } = await wrappedNode(prefix, 'refusing', (real) => ({
    ...real,
    run: (lua, keys, args, reply) => {
      if (lua !== WRITE || refused) return real.run(lua, keys, args, reply);
      refused = true;
      return new Promise((_, fail) => setTimeout(() => fail(new StorageError('E_STORAGE', "redis: OOM command not allowed when used memory > 'maxmemory'")), afterMs));
    },
  }));
  return store;
};
const user = (n: number) => String.fromCharCode(97 + n).repeat(32);
const message = (from: string, to: string, id: string, body = 'body'): IncomingMessage => ({ from, to, id, body, sentAt: 1, at: 2, digest: `d-${to}-${body}` });

describe('the Redis store', () => {
  it('keeps one relay id and secret for every node', async () => {
    const [one, two] = [await open('t1:'), await open('t1:')];
    expect(one.store.relayId).toMatch(/^[a-z2-7]{26}$/);
    expect(two.store.relayId).toBe(one.store.relayId);
    expect(two.store.secret.equals(one.store.secret)).toBe(true);
  });

  it('accepts idempotently, refuses conflicts and full mailboxes, and pages in seq order', async () => {
    const { store } = await open('t2:');
    const [alice, bob] = [user(0), user(1)];
    const first = await store.accept(message(alice, bob, 'id-00001', 'hello'), { messages: 2, bytes: 1000 });
    expect(first.kind).toBe('accepted');
    const again = await store.accept(message(alice, bob, 'id-00001', 'hello'), { messages: 2, bytes: 1000 });
    expect(again).toMatchObject({ kind: 'duplicate', seq: first.kind === 'accepted' ? first.seq : -1 });
    expect((await store.accept(message(alice, bob, 'id-00001', 'other'), { messages: 2, bytes: 1000 })).kind).toBe('conflict');
    expect((await store.accept(message(alice, bob, 'id-00002', 'x'.repeat(2000)), { messages: 5, bytes: 1000 })).kind).toBe('full');
    expect((await store.accept(message(alice, bob, 'id-00003'), { messages: 2, bytes: 1000 })).kind).toBe('accepted');
    expect((await store.accept(message(alice, bob, 'id-00004'), { messages: 2, bytes: 1000 })).kind).toBe('full');
    const page = await store.page(bob, 0, 10);
    expect(page.map((e) => (e.kind === 'message' ? [e.id, e.from, e.body] : null))).toEqual([
      ['id-00001', alice, 'hello'],
      ['id-00003', alice, 'body'],
    ]);
    expect(await store.page(bob, page[0]!.seq, 10)).toEqual([page[1]]);
  });

  it('keeps a message for a recipient connected to this node out of Redis until they take it, and answers with the delivery', async () => {
    const { store } = await open('t6:', 60_000);
    const other = (await open('t6:', 60_000)).store;
    const [alice, bob] = [user(0), user(1)];
    const outcome = await store.accept(message(alice, bob, 'live-00001'), { messages: 10, bytes: 10_000 }, true);
    if (outcome.kind !== 'accepted') throw new Error(outcome.kind);
    // Here it pages with the mailbox; in Redis (another node's view) the mailbox is empty.
    expect((await store.page(bob, 0, 10)).map((e) => e.seq)).toEqual([outcome.seq]);
    expect(await other.page(bob, 0, 10)).toEqual([]);
    // A resend through the other node waits for this one to settle, then gets the same answer.
    const resent = other.accept(message(alice, bob, 'live-00001'), { messages: 10, bytes: 10_000 });
    await new Promise((r) => setTimeout(r, 120));
    expect(await store.acknowledge(bob, [outcome.seq], 4242)).toMatchObject({ removed: 1, receiptsFor: [] });
    expect(await outcome.durable).toEqual({ deliveredAt: 4242 });
    const again = await resent;
    expect(again).toMatchObject({ kind: 'duplicate', seq: outcome.seq });
    if (again.kind === 'duplicate') expect(await again.durable).toEqual({ deliveredAt: 4242 });
    expect(await store.page(alice, 0, 10)).toEqual([]);
  });

  it('writes a held message into Redis when its recipient does not take it in time, and only then answers', async () => {
    const { store } = await open('t7:', 50);
    const other = (await open('t7:', 50)).store;
    const [alice, bob] = [user(0), user(1)];
    const outcome = await store.accept(message(alice, bob, 'slow-00001'), { messages: 10, bytes: 10_000 }, true);
    if (outcome.kind !== 'accepted') throw new Error(outcome.kind);
    expect(await outcome.durable).toEqual({});
    expect((await other.page(bob, 0, 10)).map((e) => e.seq)).toEqual([outcome.seq]);
    // Taken late, through the other node: the receipt is an envelope now.
    expect(await other.acknowledge(bob, [outcome.seq], 7)).toMatchObject({ removed: 1, receiptsFor: [alice] });
  });

  it('holds a message behind one held for the same recipient, even once they left this node, so their other devices never get it first', async () => {
    const { store } = await open('t10:', 300);
    const other = (await open('t10:', 300)).store;
    const [alice, bob] = [user(0), user(1)];
    const quota = { messages: 10, bytes: 10_000 };
    const first = await store.accept(message(alice, bob, 'first-0001'), quota, true);
    // Bob's socket here is gone (one request carried both: message:send-many); he has another on the other node.
    const second = await store.accept(message(alice, bob, 'second-001'), quota, false);
    if (first.kind !== 'accepted' || second.kind !== 'accepted') throw new Error('not accepted');
    expect(await other.page(bob, 0, 10)).toEqual([]);
    expect([await first.durable, await second.durable]).toEqual([{}, {}]);
    expect(idsOf(await other.page(bob, 0, 10))).toEqual(['first-0001', 'second-001']);
  });

  it.each([
    ['still held', 0, 30],
    ['being written', 40, 0],
  ])('fails the sender\'s later held messages to the same recipient when a held one cannot be written (the later one %s), so that none goes ahead of its resend', async (_, refusedAfterMs, gapMs) => {
    const prefix = `t17-${refusedAfterMs}:`;
    const store = await refusingNode(prefix, refusedAfterMs);
    const other = (await open(prefix)).store;
    const [alice, bob, carol] = [user(0), user(1), user(2)];
    const quota = { messages: 10, bytes: 10_000 };
    // One message:send-many from Alice carried both; Bob, connected here, takes neither in time.
    const first = await store.accept(message(alice, bob, 'first-0001'), quota, true);
    await new Promise((r) => setTimeout(r, gapMs));
    const second = await store.accept(message(alice, bob, 'second-001'), quota, true);
    const carols = await store.accept(message(carol, bob, 'carol-0001'), quota, true);
    if (first.kind !== 'accepted' || second.kind !== 'accepted' || carols.kind !== 'accepted') throw new Error('not accepted');
    await expect(first.durable).rejects.toMatchObject({ code: 'E_STORAGE' });
    await expect(second.durable).rejects.toMatchObject({ code: 'E_STORAGE' });
    // Another sender's conversation goes on.
    expect(await carols.durable).toEqual({});
    expect(idsOf(await other.page(bob, 0, 10))).toEqual(['carol-0001']);
  });

  it('refuses a message that must go through the mailbox while its sender\'s earlier one held here for the same recipient cannot be written', async () => {
    const store = await refusingNode('t18:', 0);
    const { store: other, cluster } = await open('t18:');
    const [alice, bob] = [user(0), user(1)];
    const quota = { messages: 10, bytes: 10_000 };
    const first = await store.accept(message(alice, bob, 'first-0001'), quota, true);
    if (first.kind !== 'accepted') throw new Error(first.kind);
    // Bob connects to the other node too: the next message goes through the mailbox, after
    // the held one is written there (which Redis refuses).
    await cluster.presence.join(bob);
    await expect(store.accept(message(alice, bob, 'second-001'), quota, true)).rejects.toMatchObject({ code: 'E_STORAGE' });
    await expect(first.durable).rejects.toMatchObject({ code: 'E_STORAGE' });
    expect(await other.page(bob, 0, 10)).toEqual([]);
  });

  it('writes a claimed message into the mailbox when its recipient\'s join on another node is told before the claim\'s reply, so their device there gets it too', async () => {
    // The claim's reply reaches this node 100 ms late; the join notice (another connection) does not.
    const { store } = await wrappedNode('t21:', 'slow', (real) => ({ ...real, run: (lua, keys, args, reply) => late(real.run(lua, keys, args, reply)) }), 60_000);
    const other = (await open('t21:')).store;
    const [alice, bob] = [user(0), user(1)];
    const claiming = store.accept(message(alice, bob, 'claimed-001'), { messages: 10, bytes: 10_000 }, true);
    await new Promise((r) => setTimeout(r, 30));
    store.joinedElsewhere(bob);
    const outcome = await claiming;
    if (outcome.kind !== 'accepted') throw new Error(outcome.kind);
    // Written (and its sender answered) at once, not held here for the minute.
    expect(await Promise.race([outcome.durable, new Promise((r) => setTimeout(() => r('still held'), 2_000))])).toEqual({});
    expect(idsOf(await other.page(bob, 0, 10))).toEqual(['claimed-001']);
  });

  it('still pages a held message while it is being written, for a read sent before the write', async () => {
    // Every reply reaches this node 100 ms late, in order (a busy event loop).
    const { store } = await wrappedNode('t11:', 'slow', (real) => ({ ...real, command: (args, reply) => late(real.command(args, reply)), run: (lua, keys, args, reply) => late(real.run(lua, keys, args, reply)) }));
    const other = (await open('t11:')).store;
    const [alice, bob, carol] = [user(0), user(1), user(2)];
    const quota = { messages: 10, bytes: 10_000 };
    const held = await store.accept(message(alice, bob, 'held-00001'), quota, true);
    const after = await other.accept(message(carol, bob, 'after-0001'), quota);
    if (held.kind !== 'accepted' || after.kind !== 'accepted') throw new Error('not accepted');
    // Read now, in Redis before the hold ends; answered here after it ended and the write went out.
    const page = await store.page(bob, 0, 10);
    expect(page.map((e) => e.seq)).toEqual([held.seq, after.seq]);
    expect(await held.durable).toEqual({});
  });

  it('keeps a mailbox within its quota when a burst is held in memory for its recipient, and gives the room back once they take it', async () => {
    const { store } = await open('t13:', 200);
    const other = (await open('t13:', 200)).store;
    const bob = user(1);
    const quota = { messages: 3, bytes: 10_000 };
    const burst = await Promise.all([0, 2, 3, 4, 5].map((n) => store.accept(message(user(n), bob, `burst-${n}-001`), quota, true)));
    expect(burst.map((o) => o.kind)).toEqual(['accepted', 'accepted', 'accepted', 'full', 'full']);
    // Through the other node too: the held ones count.
    expect((await other.accept(message(user(6), bob, 'other-00001'), quota)).kind).toBe('full');
    await Promise.all(burst.map((o) => (o.kind === 'accepted' ? o.durable : undefined)));
    const written = await other.page(bob, 0, 10);
    expect(written.length).toBe(3);
    // Written into the mailbox (Bob did not take them in time), they count once, as mail:
    // once he takes it, there is room again.
    expect((await other.accept(message(user(6), bob, 'other-00002'), quota)).kind).toBe('full');
    await other.acknowledge(bob, written.map((e) => e.seq), 6);
    expect((await other.accept(message(user(6), bob, 'other-00003'), quota)).kind).toBe('accepted');
    // Taken while held, they leave room behind them.
    const taken = await store.accept(message(user(6), user(2), 'taken-00001'), { messages: 1, bytes: 10_000 }, true);
    if (taken.kind !== 'accepted') throw new Error(taken.kind);
    await store.acknowledge(user(2), [taken.seq], 5);
    await new Promise((r) => setTimeout(r, 100)); // the taken ones' records are written together, a moment later
    expect((await other.accept(message(user(7), user(2), 'after-00001'), { messages: 1, bytes: 10_000 })).kind).toBe('accepted');
  });

  it('gives back the room of messages held by a node that died before it could write them', { timeout: 20_000 }, async () => {
    // The node loses Redis for good once it has claimed the message (its process dies).
    const holdAndDie = await dyingNode('t14:');
    const other = (await open('t14:')).store;
    const [alice, bob, carol] = [user(0), user(1), user(2)];
    const quota = { messages: 1, bytes: 10_000 };
    await expect(holdAndDie(message(alice, bob, 'held-00001'), quota)).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
    expect((await other.accept(message(carol, bob, 'carol-0001'), quota)).kind).toBe('full');
    // Not for good: the reservation expires with the held record.
    await eventually(async () => (await other.accept(message(carol, bob, 'carol-0001'), quota)).kind === 'accepted', 'room in bob\'s mailbox', 10_000);
  });

  it('stops counting a dead node\'s reservation on time even while its recipient keeps getting messages through another node', { timeout: 30_000 }, async () => {
    const holdAndDie = await dyingNode('t15:');
    const other = (await open('t15:', 50)).store;
    const [alice, bob, carol] = [user(0), user(1), user(2)];
    const quota = { messages: 2, bytes: 10_000 };
    await holdAndDie(message(alice, bob, 'held-00001'), quota).catch(() => undefined);
    // Bob, now connected to the other node, takes a message every second for 8 s (past the
    // dead node's held record, 5 s): each is claimed for him there.
    for (let i = 0; i < 8; i++) {
      const live = await other.accept(message(carol, bob, `live-${i}-0001`, `live ${i}`), quota, true);
      if (live.kind !== 'accepted') throw new Error(`live ${i}: ${live.kind}`);
      await other.acknowledge(bob, [live.seq], Date.now());
      await new Promise((r) => setTimeout(r, 1_000));
    }
    // Offline now, with an empty mailbox and a cap of 2: both fit.
    const outcomes = [await other.accept(message(carol, bob, 'off-1-00001', 'off 1'), quota), await other.accept(message(carol, bob, 'off-2-00001', 'off 2'), quota)];
    expect(outcomes.map((o) => o.kind)).toEqual(['accepted', 'accepted']);
  });

  it('stops counting a dead node\'s reservation on time while another node still holds a message for the same recipient', { timeout: 20_000 }, async () => {
    const holdAndDie = await dyingNode('t16:');
    const other = (await open('t16:', 60_000)).store;
    const [alice, bob, carol] = [user(0), user(1), user(2)];
    const quota = { messages: 2, bytes: 10_000 };
    await holdAndDie(message(alice, bob, 'held-00001'), quota).catch(() => undefined);
    // Bob, connected to the other node, has not taken this one yet: it stays held there.
    expect((await other.accept(message(carol, bob, 'kept-00001', 'kept'), quota, true)).kind).toBe('accepted');
    expect((await other.accept(message(carol, bob, 'next-00001', 'next'), quota, true)).kind).toBe('full');
    // Once the dead node's reservation expires (5 s), only the held one counts.
    await eventually(async () => (await other.accept(message(carol, bob, 'next-00001', 'next'), quota, true)).kind === 'accepted', 'room in bob\'s mailbox', 10_000);
  });

  it('pages large messages only as far as the page\'s bytes allow, never skipping one behind it', async () => {
    const { store } = await open('t8:', 60_000);
    const [alice, bob] = [user(0), user(1)];
    const roomy = { messages: 100, bytes: 10_000_000 };
    const ids = Array.from({ length: 12 }, (_, n) => `large-${String(n).padStart(5, '0')}`);
    for (const [n, id] of ids.entries()) expect((await store.accept(message(alice, bob, id, `${n}:`.padEnd(8 * 1024, 'x')), roomy)).kind).toBe('accepted');
    // Held here, newer than everything in Redis.
    expect((await store.accept(message(alice, bob, 'held-000099'), roomy, true)).kind).toBe('accepted');

    const first = await store.page(bob, 0, 500, 32 * 1024);
    expect(idsOf(first)).toEqual(ids.slice(0, 4));
    expect(idsOf(await store.page(bob, 0, 500, 100))).toEqual(ids.slice(0, 1));
    const pages = await readPages(store, bob, 500, 40 * 1024);
    expect(Math.max(...pages.map((page) => page.length))).toBeLessThanOrEqual(5);
    expect(idsOf(pages.flat())).toEqual([...ids, 'held-000099']);
    const acked = await store.acknowledge(bob, first.map((e) => e.seq), 1, { afterSeq: first.at(-1)?.seq ?? 0, limit: 500, bytes: 32 * 1024 });
    expect(idsOf(acked.next ?? [])).toEqual(ids.slice(4, 8));
  });

  it('removes acknowledged envelopes and queues the delivered receipts in the same step', async () => {
    const { store } = await open('t3:');
    const [alice, bob, carol] = [user(0), user(1), user(2)];
    await store.accept(message(alice, carol, 'from-alice-1'), { messages: 10, bytes: 10_000 });
    await store.accept(message(bob, carol, 'from-bob-001'), { messages: 10, bytes: 10_000 });
    await store.accept(message(alice, carol, 'from-alice-2'), { messages: 10, bytes: 10_000 });
    const batch = await store.page(carol, 0, 10);
    await store.accept(message(bob, carol, 'from-bob-002'), { messages: 10, bytes: 10_000 });
    const acked = await store.acknowledge(carol, batch.map((e) => e.seq), 1234, { afterSeq: batch.at(-1)!.seq, limit: 10 });
    expect(acked.receiptsFor).toEqual([alice, bob]);
    expect(acked.removed).toBe(3);
    // The next page comes with the acknowledgement.
    expect(idsOf(acked.next ?? [])).toEqual(['from-bob-002']);
    await store.acknowledge(carol, acked.next!.map((e) => e.seq), 1234);
    expect(await store.page(carol, 0, 10)).toEqual([]);
    const [receipt] = await store.page(alice, 0, 10);
    expect(receipt).toMatchObject({ kind: 'receipt', from: carol, state: 'delivered', ids: ['from-alice-1', 'from-alice-2'], at: 1234 });
    expect((await store.acknowledge(carol, batch.map((e) => e.seq), 1235)).removed).toBe(0);
    // The quota was given back: the mailbox takes ten more.
    for (let i = 0; i < 10; i += 1) expect((await store.accept(message(alice, carol, `again-${i}-xx`), { messages: 10, bytes: 10_000 })).kind).toBe('accepted');
  });

  it('keeps the directory, pages it by id, and never moves a rev backwards', async () => {
    const { store } = await open('t4:');
    const entry = (n: number, rev: number) => ({ id: user(n), name: `u${n}`, idKey: 'k'.repeat(43), kaKey: 'a'.repeat(43), kaSig: 's'.repeat(86), lastSeen: 10, rev });
    for (const n of [2, 0, 1]) await store.saveUser(entry(n, 100));
    expect((await store.pageUsers(undefined, 2)).map((u) => u.name)).toEqual(['u0', 'u1']);
    expect((await store.pageUsers(user(1), 2)).map((u) => u.name)).toEqual(['u2']);
    await store.setLastSeen(user(0), 20, 200);
    await store.setLastSeen(user(0), 30, 150);
    expect(await store.getUsers([user(0), 'nobody'])).toEqual([{ ...entry(0, 200), lastSeen: 20 }]);
  });

  it('never moves a rev backwards when a save lands after a newer presence change, so a directory reader past that change still gets the save', async () => {
    const { store, cluster } = await open('t12:');
    const entry = (name: string, rev: number) => ({ id: user(0), name, idKey: 'k'.repeat(43), kaKey: 'a'.repeat(43), kaSig: 's'.repeat(86), lastSeen: 10, rev });
    await store.saveUser(entry('before', await cluster.presence.nextRev()));
    // A rename takes its rev on one node; a presence change takes a later one on another node and lands first.
    const renamed = await cluster.presence.nextRev();
    const presence = await cluster.presence.nextRev();
    await store.setLastSeen(user(0), 20, presence);
    // A client reads the directory's changes now: its cursor is that presence change.
    expect((await store.changedUsers(0, 10)).map((u) => [u.name, u.rev])).toEqual([['before', presence]]);
    await store.saveUser(entry('after', renamed));
    const [stored] = await store.getUsers([user(0)]);
    expect(stored?.rev).toBeGreaterThan(presence);
    expect((await store.changedUsers(presence, 10)).map((u) => u.name)).toEqual(['after']);
    // A later change still moves it on.
    const later = await cluster.presence.nextRev();
    await store.setLastSeen(user(0), 30, later);
    expect((await store.getUsers([user(0)]))[0]?.rev).toBe(later);
  });

  it('reads a page of directory changes as one snapshot: an entry that changes meanwhile does not move the cursor past entries not read yet', async () => {
    // Once armed, another node's change lands right after the next reply reaches this node.
    let change: (() => Promise<void>) | undefined;
    const after = async <T>(reply: Promise<T>): Promise<T> => {
      const value = await reply;
      const now = change;
      change = undefined;
      await now?.();
      return value;
    };
    const { store: reader } = await wrappedNode('t19:', 'reader', (real) => ({ ...real, command: (args, reply) => after(real.command(args, reply)), run: (lua, keys, args, reply) => after(real.run(lua, keys, args, reply)) }));
    const { store: other, cluster } = await open('t19:');
    const users = Array.from({ length: 12 }, (_, n) => user(n));
    for (const [n, id] of users.entries()) await other.saveUser({ id, name: `u${n}`, idKey: 'k'.repeat(43), kaKey: 'a'.repeat(43), kaSig: 's'.repeat(86), lastSeen: 1, rev: 1000 + n });
    // The first user, on the first page, comes online on the other node as that page is read.
    change = async () => other.setLastSeen(users[0]!, 2, await cluster.presence.nextRev());
    const seen: string[] = [];
    let since = 0;
    for (;;) {
      const page = await reader.changedUsers(since, 5);
      seen.push(...page.map((u) => u.id));
      if (page.length < 5) break;
      since = page.at(-1)!.rev; // the page's `next` (handlers.ts)
    }
    expect(new Set(seen)).toEqual(new Set(users));
  });

  it('saves a directory entry above every change already readable, so a client whose cursor passed another user\'s change meanwhile still reads it', async () => {
    const [a, b] = [await open('t20:'), await open('t20:')];
    const [uma, vera] = [user(20), user(21)];
    const entry = (id: string, rev: number) => ({ id, name: 'someone', idKey: 'k'.repeat(43), kaKey: 'a'.repeat(43), kaSig: 's'.repeat(86), lastSeen: 1, rev });
    await b.store.saveUser(entry(vera, await b.cluster.presence.nextRev()));
    // Node A takes the rev of Uma's first handshake; meanwhile Vera comes online on node B ...
    const taken = await a.cluster.presence.nextRev();
    await b.store.setLastSeen(vera, 2, await b.cluster.presence.join(vera));
    // ... and a client reads the changes (its cursor: Vera's change) before Uma's entry lands.
    const cursor = Math.max(...(await b.store.changedUsers(0, 200)).map((u) => u.rev));
    const saved = await a.store.saveUser(entry(uma, taken));
    expect(saved).toBeGreaterThan(cursor);
    expect((await b.store.changedUsers(cursor, 200)).map((u) => u.id)).toEqual([uma]);
  });

  it('answers E_UNAVAILABLE at once while Redis is down, and works again when it is back', async () => {
    const { store } = await open('t5:');
    await shared.redis.stop('SIGKILL');
    const started = Date.now();
    await expect(store.accept(message(user(0), user(1), 'while-down'), { messages: 10, bytes: 10_000 })).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
    expect(Date.now() - started).toBeLessThan(1_000);
    await shared.redis.start();
    const deadline = Date.now() + 10_000;
    for (;;) {
      const outcome = await store.accept(message(user(0), user(1), 'after-back'), { messages: 10, bytes: 10_000 }).catch(() => null);
      if (outcome) break;
      if (Date.now() > deadline) throw new Error('the store did not recover');
      await new Promise((r) => setTimeout(r, 100));
    }
    // What was acknowledged before the SIGKILL is still there (append-only file).
    const probe = createClient({ url: shared.redis.url });
    await probe.connect();
    expect(await probe.zCard(`t2:mb:${user(1)}`)).toBe(2);
    await probe.close();
  });
});
