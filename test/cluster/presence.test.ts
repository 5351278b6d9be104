// Presence across nodes when a node's view in Redis went wrong without an outage that anyone
// noticed at once: a node that lapsed (did not renew in time, as after a long pause) but was
// renewed before anyone reaped it, and a presence change that ran in Redis but whose answer
// came after the node's deadline; or a rename whose save landed after a later presence change.
// Either way a watcher on another node must end up seeing the user as they really are, without
// paging the directory again.
import type { Socket } from 'node:net';
import { createClient } from 'redis';
import { afterEach, describe, expect, it } from 'vitest';
import { connectClient, eventually, type TestClient } from '../support/relay.ts';
import { generateIdentity } from '../../relay/identity.ts';
import type { UserEntry } from '../../relay/protocol.ts';
import { startProxy, type Proxy, type Tap } from '../support/proxy.ts';
import { useRedis } from './support/redis.ts';
import { startNode, type NodeOptions, type TestNode } from './support/nodes.ts';
import { RESYNC } from '../../relay/redis/node-scripts.ts';
import { SAVE_USER } from '../../relay/redis/scripts.ts';

const redis = useRedis();
const nodes: TestNode[] = [];
const clients: TestClient[] = [];
const proxies: Proxy[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

const node = async (url: string, options: NodeOptions) => {
  const started = await startNode(url, options);
  nodes.push(started);
  return started;
};
const join = async (url: string, options: Parameters<typeof connectClient>[1] = {}) => {
  const client = await connectClient(url, options);
  clients.push(client);
  return client;
};
/**
 * What the watcher was told of the user, as a client keeps it (the entry with the highest rev,
 * the later one of equal revs): true online, false offline, undefined nothing yet.
 */
const lastEntry = (watcher: TestClient, userId: string) =>
  watcher.presence.filter((p) => p.id === userId).reduce<UserEntry | undefined>((kept, p) => (kept && kept.rev > p.rev ? kept : p), undefined);
const lastSeen = (watcher: TestClient, userId: string) => lastEntry(watcher, userId)?.online;
/** A watcher joins `watchFrom` and watches Bob, who then joins `bobOn`: resolves once the watcher has seen him online. */
const bobWatched = async (watchFrom: string, bobOn: string) => {
  const watcher = await join(watchFrom);
  const identity = generateIdentity();
  await watcher.watch(identity.userId);
  const bob = await join(bobOn, { identity, name: 'Bob' });
  await eventually(() => lastSeen(watcher, bob.id) === true, 'Bob to be seen online');
  return { watcher, identity, bob };
};
/** A node that never renews nor reaps during a test (its first reap ran at start). */
const QUIET: NodeOptions = { nodeTtlMs: 600_000, heartbeatMs: 600_000 };

describe('presence across nodes, after a lapse or a late answer', () => {
  it('announces the users of a node that lapsed and renewed before anyone reaped it', { timeout: 30_000 }, async () => {
    const a = await node(redis.url, { nodeTtlMs: 10_000, heartbeatMs: 1_500 });
    const b = await node(redis.url, QUIET);
    const watcher = await join(b.url);
    const identity = generateIdentity();
    const onA = await join(a.url, { identity, name: 'on both' });
    const onB = await join(b.url, { identity, name: 'on both' });
    await eventually(async () => (await watcher.watch(onA.id))[0]?.online === true, 'the user to be seen online');

    // Just after A renews, it is made to look as if it had paused past its expiry.
    const probe = createClient({ url: redis.url });
    await probe.connect();
    try {
      const renewed = await probe.zScore('parley:nodes', a.cluster.nodeId);
      await eventually(async () => (await probe.zScore('parley:nodes', a.cluster.nodeId)) !== renewed, 'node A to renew', 5_000);
      await probe.zAdd('parley:nodes', { score: 1, value: a.cluster.nodeId });
    } finally {
      await probe.close();
    }
    // The user's socket on B leaves while A counts for nothing: B announces them offline.
    onB.close();
    await eventually(() => lastSeen(watcher, onA.id) === false, 'the watcher to be told the user went offline');
    // A renews (within 1.5 s) and finds it had lapsed: the user it still holds is online again.
    await eventually(() => lastSeen(watcher, onA.id) === true, 'the watcher to be told the user is online again', 5_000);
    expect(onA.socket.connected).toBe(true);
    const [entry] = await watcher.watch(onA.id);
    expect(entry?.online).toBe(true);
  });

  it('announces the users of a reaped node again even when its first resync after Redis came back failed', { timeout: 30_000 }, async () => {
    const proxy = await startProxy(redis.port);
    proxies.push(proxy);
    const x = await node(`redis://127.0.0.1:${proxy.port}`, {});
    const y = await node(redis.url, {});
    const { watcher, bob } = await bobWatched(y.url, x.url);

    // Node X loses Redis for longer than its expiry: node Y reaps it and announces Bob offline.
    proxy.refuse();
    await eventually(() => lastSeen(watcher, bob.id) === false, 'node Y to announce Bob offline', 8_000);
    // Redis comes back, but the connection drops just as X sends its first resync.
    proxy.dropOn(RESYNC.sha);
    proxy.heal();
    await eventually(() => lastSeen(watcher, bob.id) === true, 'node X to announce Bob online again', 10_000);
    expect(bob.socket.connected).toBe(true);
  });

  it('does not announce offline a user who came back while their unsure state was being announced', { timeout: 30_000 }, async () => {
    const proxy = await startProxy(redis.port);
    proxies.push(proxy);
    const a = await node(`redis://127.0.0.1:${proxy.port}`, {});
    const b = await node(redis.url, QUIET);
    const { watcher, identity, bob: first } = await bobWatched(b.url, a.url);

    // Node A is cut off from Redis for a moment (shorter than its expiry): Bob's socket there
    // leaves meanwhile, and his leave fails, so his state is unsure at A.
    proxy.refuse();
    first.close();
    await new Promise((r) => setTimeout(r, 400));
    // Redis is back but answers A slowly; as A announces what it was unsure of, Bob comes back through B.
    const toldOfBob = () => watcher.presence.filter((p) => p.id === identity.userId).length;
    let back: Promise<unknown> | undefined;
    const toldBefore = toldOfBob();
    a.cluster.onRestored(() => {
      back ??= join(b.url, { identity, name: 'Bob' });
    });
    proxy.heal();
    proxy.slowReplies(500);
    await eventually(() => back, 'node A to be restored', 10_000);
    await back;
    // Told three times more: that he went offline with A's counts (its resync found him gone),
    // of his return through B and, at last, by A of what it had been unsure of.
    await eventually(() => toldOfBob() >= toldBefore + 3, "node A's announcements of Bob", 10_000);
    proxy.heal();
    await new Promise((r) => setTimeout(r, 300));
    // Whatever was announced meanwhile, the last word is the one that is true: Bob is online.
    expect(lastSeen(watcher, identity.userId)).toBe(true);
    const [entry] = await watcher.watch(identity.userId);
    expect(entry?.online).toBe(true);
  });

  it('announces a user who left while the answer of their node\'s Redis came too late', { timeout: 30_000 }, async () => {
    const proxy = await startProxy(redis.port);
    proxies.push(proxy);
    const a = await node(`redis://127.0.0.1:${proxy.port}`, { commandTimeoutMs: 300 });
    const b = await node(redis.url, QUIET);
    const watcher = await join(b.url);
    const leaving = await join(a.url, { name: 'leaving' });
    await eventually(async () => (await watcher.watch(leaving.id))[0]?.online === true, 'the user to be seen online');

    // Redis answers node A a second late: A's leave runs there but times out at A.
    proxy.slowReplies(1_000);
    leaving.close();
    await new Promise((r) => setTimeout(r, 600));
    proxy.heal();
    // Redis already counts the user offline; once A hears from Redis again it tells the others.
    await eventually(() => lastSeen(watcher, leaving.id) === false, 'the watcher to be told the user went offline', 8_000);
    const [entry] = await watcher.watch(leaving.id);
    expect(entry?.online).toBe(false);
  });

  it('tells a rename at once to a watcher on another node that was told of a later presence change before the rename was saved', { timeout: 30_000 }, async () => {
    // Node A's link to Redis can hold back its next directory save (and what it sends after it).
    let holding = false;
    let heldOn: Socket | undefined;
    const heldBack: Buffer[] = [];
    const release = () => {
      holding = false;
      for (const chunk of heldBack.splice(0)) heldOn?.write(chunk);
    };
    const tap: Tap = (client, upstream) => ({
      fromClient: (chunk) => {
        if (holding && (heldOn === upstream || (!heldOn && chunk.includes(SAVE_USER.sha)))) {
          heldOn = upstream;
          heldBack.push(chunk);
        } else {
          upstream.write(chunk);
        }
      },
      fromUpstream: (chunk) => void client.write(chunk),
    });
    const proxy = await startProxy(redis.port, tap);
    proxies.push(proxy);
    const a = await node(`redis://127.0.0.1:${proxy.port}`, { commandTimeoutMs: 5_000 });
    const b = await node(redis.url, QUIET);
    const { watcher, identity, bob: first } = await bobWatched(b.url, a.url);

    // Bob renames himself on A: A takes the rev of the rename, and its save waits on the way.
    holding = true;
    const renamed = first.request('profile:update', { name: 'Robert' });
    await eventually(() => heldBack.length > 0, "node A's save of the rename to be on its way");
    // Meanwhile his other device comes online through B, with a later rev, told to the watcher at once.
    const told = watcher.presence.length;
    await join(b.url, { identity, name: 'Bob' });
    await eventually(() => watcher.presence.length > told, 'the watcher to be told of the second device');
    release();
    const answer = await renamed;
    expect(answer.ok).toBe(true);
    // The rename was saved with a rev after the second device's: the watcher is told so, and
    // the hint that follows takes directory readers past that device's change to it.
    await eventually(() => lastEntry(watcher, identity.userId)?.name === 'Robert', 'the watcher to be told of the rename', 3_000);
    const [stored] = await watcher.watch(identity.userId);
    expect(stored).toMatchObject({ name: 'Robert', rev: lastEntry(watcher, identity.userId)?.rev });
    expect(answer.ok && answer.value.rev).toBe(stored?.rev);
    await eventually(() => watcher.hints.some((rev) => rev >= (stored?.rev ?? Infinity)), 'a directory hint that takes readers to the rename', 3_000);
  });
});
