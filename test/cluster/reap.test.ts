// A node that dies with a great many users: every one of them goes offline for the others
// (unless connected elsewhere too), and Redis keeps answering the rest of the cluster
// meanwhile, so that messages sent then are answered as fast as ever; those who watch them,
// on any node, are told.
import { describe, expect, it } from 'vitest';
import { createClient } from 'redis';
import { connectClient, eventually, type TestClient } from '../support/relay.ts';
import { startNode, useSharedState } from './support/nodes.ts';
import { startProxy, type Tap } from '../support/proxy.ts';
import { REAP } from '../../relay/redis/node-scripts.ts';

const shared = useSharedState();

const open = (options: { nodeTtlMs: number; heartbeatMs: number }) => shared.open({ prefix: 'reap:', ...options });

const USERS = 200_000;
/** A user id as the protocol spells them (base32): the offline notices carry no other kind. */
const B32 = 'abcdefghijklmnopqrstuvwxyz234567';
const idOf = (n: number) => [...n.toString(32)].map((c) => B32[parseInt(c, 32)]).join('').padStart(32, 'a');

describe('reaping a dead node', () => {
  it('announces each of its 200,000 users offline, while Redis keeps answering a sender on another node at once', { timeout: 60_000 }, async () => {
    const reaper = await open({ nodeTtlMs: 2_000, heartbeatMs: 250 });
    const other = await open({ nodeTtlMs: 600_000, heartbeatMs: 600_000 }); // never reaps during the test
    const gone = new Set<string>();
    reaper.cluster.onLost((lost) => lost.forEach((l) => gone.add(l.userId)));
    other.cluster.onLost((lost) => lost.forEach((l) => gone.add(l.userId)));
    // The dead node counted a socket of each, and of one user still connected to the other node.
    const stillHere = idOf(USERS);
    await other.cluster.presence.join(stillHere);
    const admin = createClient({ url: shared.redis.url });
    await admin.connect();
    for (let from = 0; from <= USERS; from += 50_000) {
      const counts = Object.fromEntries(Array.from({ length: Math.min(50_000, USERS + 1 - from) }, (_, i) => [idOf(from + i), '1']));
      await admin.hSet('reap:node:ghost:p', counts);
    }
    await admin.zAdd('reap:nodes', { score: 0, value: 'ghost' });

    // Messages go through the other node one after another until everyone was announced.
    let slowest = 0;
    const deadline = performance.now() + 40_000;
    for (let n = 0; gone.size < USERS && performance.now() < deadline; n += 1) {
      const started = performance.now();
      const outcome = await other.store.accept({ from: idOf(1), to: idOf(2), id: `m-${n}-000000`, body: 'hi', sentAt: 1, at: 2, digest: `d${n}` }, { messages: 1e6, bytes: 1e9 });
      expect(outcome.kind).toBe('accepted');
      slowest = Math.max(slowest, performance.now() - started);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(gone.size).toBe(USERS);
    expect(gone.has(stillHere)).toBe(false);
    expect(slowest).toBeLessThan(300);
    const sample = Array.from({ length: 500 }, (_, i) => idOf(i * 400));
    expect(await other.cluster.presence.online([...sample, stillHere])).toEqual(new Set([stillHere]));
    // Nothing of the dead node is left behind.
    expect(await admin.keys('reap:reap*')).toEqual([]);
    expect(await admin.exists('reap:node:ghost:p')).toBe(0);
    await admin.close();
  });
});

describe('telling watchers of the users of a dead node', () => {
  it('tells watchers on every node that each of 100,000 users went offline, while sends through live nodes are answered quickly', { timeout: 90_000 }, async () => {
    const options = { prefix: 'told:', nodeTtlMs: 2_000, heartbeatMs: 250, rate: { capacity: 1_000, perSecond: 1_000, abuseMs: 60_000 } };
    const a = await startNode(shared.redis.url, options);
    const b = await startNode(shared.redis.url, options);
    const clients: TestClient[] = [];
    const admin = createClient({ url: shared.redis.url });
    await admin.connect();
    try {
      // 100,000 users in the directory, each counted by a live node that is about to die.
      const users = 100_000;
      for (let from = 0; from < users; from += 10_000) {
        const batch = admin.multi();
        const counts: Record<string, string> = {};
        for (let n = from; n < from + 10_000; n += 1) {
          const id = idOf(n);
          counts[id] = '1';
          batch.hSet(`told:u:${id}`, { id, name: `user ${n}`, idKey: 'k', kaKey: 'k', kaSig: 's', lastSeen: '1', rev: String(n + 1), firstSeen: '1' });
          batch.zAdd('told:users', { score: 0, value: id });
          batch.zAdd('told:users:rev', { score: n + 1, value: id });
        }
        batch.hSet('told:node:ghost:p', counts);
        await batch.exec();
      }
      await admin.zAdd('told:nodes', { score: 1e15, value: 'ghost' });
      const join = async (url: string) => {
        const client = await connectClient(url);
        clients.push(client);
        return client;
      };
      // A watcher on each node watches the same 1,000 of them.
      const watched = Array.from({ length: 1_000 }, (_, i) => idOf(i * 100));
      const onA = await join(a.url);
      const watchers = [onA, await join(b.url)];
      for (const watcher of watchers) {
        for (let i = 0; i < watched.length; i += 500) expect((await watcher.watch(...watched.slice(i, i + 500))).every((u) => u.online)).toBe(true);
      }
      const sender = await join(a.url);
      const recipient = await join(b.url);
      await eventually(async () => (await sender.request('directory:get', { ids: [recipient.id] })).ok, 'the recipient to be in the directory');
      const toldOffline = (watcher: TestClient) => new Set(watcher.presence.filter((p) => !p.online).map((p) => p.id));

      const died = Date.now();
      await admin.zAdd('told:nodes', { score: 0, value: 'ghost' });
      // Messages go from one node to the other, one after another, until the watchers were told.
      let slowest = 0;
      const failed: unknown[] = [];
      const deadline = performance.now() + 40_000;
      while (performance.now() < deadline && (watchers.some((w) => toldOffline(w).size < watched.length) || (await admin.exists('told:reaping')) === 1)) {
        const started = performance.now();
        const sent = await sender.send(recipient.id, 'still here');
        slowest = Math.max(slowest, performance.now() - started);
        if (!sent.ok) failed.push(sent.error);
        await new Promise((r) => setTimeout(r, 10));
      }
      for (const watcher of watchers) expect(watched.filter((id) => !toldOffline(watcher).has(id))).toEqual([]);
      expect(failed).toEqual([]);
      expect(slowest).toBeLessThan(300);
      // As the directory holds them now: offline, seen when their node died.
      const [entry] = await onA.watch(idOf(100));
      expect(entry?.online).toBe(false);
      expect(entry?.lastSeen).toBeGreaterThanOrEqual(died - 1_000);
      expect(onA.presence.filter((p) => p.id === idOf(100)).at(-1)).toMatchObject({ online: false, rev: entry?.rev, lastSeen: entry?.lastSeen, name: 'user 100' });
    } finally {
      for (const client of clients) client.close();
      await admin.close();
      await a.stop();
      await b.stop();
    }
  });
});

describe('the node that reaps', () => {
  it('tells its own watchers too when the reply of the reap that found the dead node is lost', { timeout: 30_000 }, async () => {
    // Node A talks to Redis through a proxy that, once armed, lets the next reap run in Redis
    // but loses its reply (the connection drops).
    let armed = false;
    const tap: Tap = (client, upstream) => {
      let swallowing = false;
      return {
        fromClient: (chunk) => {
          upstream.write(chunk);
          if (!armed || !chunk.includes(REAP.sha)) return;
          armed = false;
          swallowing = true;
          setTimeout(() => {
            client.destroy();
            upstream.destroy();
          }, 200);
        },
        fromUpstream: (chunk) => void (swallowing || client.write(chunk)),
      };
    };
    const proxy = await startProxy(shared.redis.port, tap);
    const a = await startNode(`redis://127.0.0.1:${proxy.port}`, { prefix: 'own:', nodeTtlMs: 2_000, heartbeatMs: 250 });
    const b = await startNode(shared.redis.url, { prefix: 'own:', nodeTtlMs: 600_000, heartbeatMs: 600_000 }); // never reaps here
    const admin = createClient({ url: shared.redis.url });
    await admin.connect();
    const watchers: TestClient[] = [];
    try {
      // A user in the directory, counted by a live node that is about to die.
      const id = idOf(7);
      await admin.hSet(`own:u:${id}`, { id, name: 'Gus', idKey: 'k', kaKey: 'k', kaSig: 's', lastSeen: '1', rev: '1', firstSeen: '1' });
      await admin.zAdd('own:users', { score: 0, value: id });
      await admin.zAdd('own:users:rev', { score: 1, value: id });
      await admin.hSet('own:node:ghost:p', { [id]: '1' });
      await admin.zAdd('own:nodes', { score: 1e15, value: 'ghost' });
      for (const node of [a, b]) {
        const watcher = await connectClient(node.url);
        watchers.push(watcher);
        expect((await watcher.watch(id))[0]?.online).toBe(true);
      }
      await admin.zAdd('own:nodes', { score: 0, value: 'ghost' });
      armed = true;
      const toldOffline = (watcher: TestClient) => watcher.presence.some((p) => p.id === id && !p.online);
      await eventually(() => !armed, "node A's reap of the dead node");
      for (const [i, watcher] of watchers.entries()) await eventually(() => toldOffline(watcher), `the watcher on node ${'AB'[i]} to be told Gus went offline`, 5_000);
    } finally {
      for (const watcher of watchers) watcher.close();
      await admin.close();
      await a.stop();
      await b.stop();
      await proxy.close();
    }
  });
});
