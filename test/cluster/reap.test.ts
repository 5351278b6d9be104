// A node that dies with a great many users: every one of them goes offline for the others
// (unless connected elsewhere too), and Redis keeps answering the rest of the cluster
// meanwhile, so that messages sent then are answered as fast as ever.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from 'redis';
import { openRedisCluster, type RedisCluster } from '../../relay/redis/cluster.ts';
import { startRedis, type TestRedis } from './support/redis.ts';

let redis: TestRedis;
const opened: RedisCluster[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const { store, cluster } of opened) {
    await store.close();
    await cluster.close();
  }
  await redis?.remove();
});

const open = async (options: { nodeTtlMs: number; heartbeatMs: number }) => {
  const c = await openRedisCluster({ url: redis.url, prefix: 'reap:', ...options });
  opened.push(c);
  return c;
};

const USERS = 200_000;
const userOf = (n: number) => `u${String(n).padStart(31, '0')}`;

describe('reaping a dead node', () => {
  it('announces each of its 200,000 users offline, while Redis keeps answering a sender on another node at once', { timeout: 60_000 }, async () => {
    const reaper = await open({ nodeTtlMs: 2_000, heartbeatMs: 250 });
    const other = await open({ nodeTtlMs: 600_000, heartbeatMs: 600_000 }); // never reaps during the test
    const gone = new Set<string>();
    reaper.cluster.onLost((lost) => lost.forEach((l) => gone.add(l.userId)));
    other.cluster.onLost((lost) => lost.forEach((l) => gone.add(l.userId)));
    // The dead node counted a socket of each, and of one user still connected to the other node.
    const stillHere = userOf(USERS);
    await other.cluster.presence.join(stillHere);
    const admin = createClient({ url: redis.url });
    await admin.connect();
    for (let from = 0; from <= USERS; from += 50_000) {
      const counts = Object.fromEntries(Array.from({ length: Math.min(50_000, USERS + 1 - from) }, (_, i) => [userOf(from + i), '1']));
      await admin.hSet('reap:node:ghost:p', counts);
    }
    await admin.zAdd('reap:nodes', { score: 0, value: 'ghost' });

    // Messages go through the other node one after another until everyone was announced.
    let slowest = 0;
    const deadline = performance.now() + 40_000;
    for (let n = 0; gone.size < USERS && performance.now() < deadline; n += 1) {
      const started = performance.now();
      const outcome = await other.store.accept({ from: userOf(1), to: userOf(2), id: `m-${n}-000000`, body: 'hi', sentAt: 1, at: 2, digest: `d${n}` }, { messages: 1e6, bytes: 1e9 });
      expect(outcome.kind).toBe('accepted');
      slowest = Math.max(slowest, performance.now() - started);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(gone.size).toBe(USERS);
    expect(gone.has(stillHere)).toBe(false);
    expect(slowest).toBeLessThan(300);
    const sample = Array.from({ length: 500 }, (_, i) => userOf(i * 400));
    expect(await other.cluster.presence.online([...sample, stillHere])).toEqual(new Set([stillHere]));
    // Nothing of the dead node is left behind.
    expect(await admin.keys('reap:reap*')).toEqual([]);
    expect(await admin.exists('reap:node:ghost:p')).toBe(0);
    await admin.close();
  });
});
