// B12 scale-out-node-loss: three real `npm run relay -- --redis …` processes; one is killed
// with SIGKILL while messages flow. Its clients fail over to the others, and the total-queue
// check stays clean. A user whose only socket was on the killed node goes offline for the
// others within the node expiry.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, eventually, type TestClient } from '../support/relay.ts';
import { startRedis, type TestRedis } from './support/redis.ts';
import { startCliNode, type CliNode } from './support/nodes.ts';
import { FailoverClient } from '../support/failover.ts';
import { totalQueue } from '../support/check.ts';

let redis: TestRedis;
const nodes: CliNode[] = [];
const clients: (FailoverClient | TestClient)[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(nodes.splice(0).map((n) => n.kill('SIGTERM')));
});
afterAll(async () => {
  await redis?.remove();
});

const startNodes = async (count: number) => {
  const started = await Promise.all(Array.from({ length: count }, () => startCliNode(redis.url, ['--max-connections', '200'])));
  nodes.push(...started);
  return started;
};

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('losing a node of the cluster', () => {
  it('loses, duplicates and reorders nothing when a node is killed mid-stream', { timeout: 60_000 }, async () => {
    const started = await startNodes(3);
    const urls = started.map((n) => n.url);
    const people = Array.from({ length: 6 }, (_, i) => new FailoverClient(urls, { start: i % 3, name: `p${i}` }));
    clients.push(...people);
    await Promise.all(people.map((p) => p.connect()));
    const victims = people.filter((p) => p.url === urls[0]);
    expect(victims.length).toBe(2);

    // Each person talks to the next two, one message per conversation every 40 ms.
    const rounds = 50;
    const sending = (async () => {
      for (let round = 0; round < rounds; round += 1) {
        people.forEach((p, i) => {
          p.send(people[(i + 1) % 6]!.id, `r${round} to +1`);
          p.send(people[(i + 2) % 6]!.id, `r${round} to +2`);
        });
        await pause(40);
      }
    })();
    await pause(700);
    await started[0]!.kill('SIGKILL');
    await sending;

    await eventually(() => people.every((p) => p.pending === 0), 'every outbox to drain', 30_000);
    const expected = people.length * 2 * rounds;
    await eventually(() => people.reduce((n, p) => n + p.history.length, 0) >= expected, 'every message to arrive', 30_000);
    const report = totalQueue(people);
    expect(report).toEqual({ acknowledged: expected, lost: [], duplicated: [], reordered: [] });
    for (const v of victims) {
      expect(v.connects).toBeGreaterThanOrEqual(2);
      expect(v.url).not.toBe(urls[0]);
    }
  });

  it('takes a user whose only socket was on the killed node offline for the others', { timeout: 30_000 }, async () => {
    const [doomed, survivor] = await startNodes(2);
    const watcher = await connectClient(survivor!.url);
    const victim = await connectClient(doomed!.url, { name: 'victim' });
    clients.push(watcher, victim);
    // Watched, and seen online (its node counts it in the shared presence just after admitting it).
    await eventually(async () => (await watcher.watch(victim.id))[0]?.online === true, 'the victim to be seen online');

    const killedAt = Date.now();
    await doomed!.kill('SIGKILL');
    await eventually(() => watcher.presence.filter((p) => p.id === victim.id).at(-1)?.online === false, 'the victim to go offline', 10_000);
    // Node expiry 2 s (--node-ttl 2000), reaped by a survivor's heartbeat every 400 ms: about
    // 2.4 s at most, plus the announcement; the bound leaves room for a loaded machine.
    expect(Date.now() - killedAt).toBeLessThan(6_000);
    const dir = await watcher.request('directory:get', { ids: [victim.id] });
    expect(dir.ok && dir.value.users[0]?.online).toBe(false);
  });
});
