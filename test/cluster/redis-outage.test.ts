// Redis goes away mid-stream (SIGKILL) and comes back on the same port with its append-only
// file. Meanwhile sends are answered E_UNAVAILABLE and handshakes refused with it; the nodes
// stay up and recover by themselves; no message the relay acknowledged is lost.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, eventually } from '../support/relay.ts';
import { startRedis, type TestRedis } from './support/redis.ts';
import { startNode, type TestNode } from './support/nodes.ts';
import { FailoverClient } from '../support/failover.ts';
import { totalQueue } from '../support/check.ts';

let redis: TestRedis;
const nodes: TestNode[] = [];
const people: FailoverClient[] = [];

beforeAll(async () => {
  redis = await startRedis({ appendfsync: 'everysec' });
  nodes.push(await startNode(redis.url), await startNode(redis.url));
});
afterAll(async () => {
  for (const p of people) p.close();
  for (const n of nodes) await n.stop();
  await redis?.remove();
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a Redis restart under a running cluster', () => {
  it('loses no acknowledged message, and answers E_UNAVAILABLE while Redis is down', { timeout: 60_000 }, async () => {
    const urls = nodes.map((n) => n.url);
    people.push(...Array.from({ length: 4 }, (_, i) => new FailoverClient(urls, { start: i % 2 })));
    await Promise.all(people.map((p) => p.connect()));

    let sendingDone = false;
    const rounds = 60;
    const sending = (async () => {
      for (let round = 0; round < rounds; round += 1) {
        people.forEach((p, i) => p.send(people[(i + 1) % people.length]!.id, `round ${round}`));
        await pause(40);
      }
      sendingDone = true;
    })();

    await pause(600);
    await redis.stop('SIGKILL');
    const downAt = Date.now();
    // A handshake now cannot be checked against the shared challenge set: E_UNAVAILABLE.
    await expect(connectClient(urls[0]!)).rejects.toMatchObject({ message: 'E_UNAVAILABLE', data: { code: 'E_UNAVAILABLE' } });
    await eventually(() => people.some((p) => (p.errors.get('E_UNAVAILABLE') ?? 0) > 0), 'a send answered E_UNAVAILABLE');
    await pause(Math.max(0, 1_500 - (Date.now() - downAt)));
    await redis.start();

    await sending;
    expect(sendingDone).toBe(true);
    await eventually(() => people.every((p) => p.pending === 0), 'every outbox to drain', 30_000);
    const expected = people.length * rounds;
    await eventually(() => people.reduce((n, p) => n + p.history.length, 0) >= expected, 'every message to arrive', 30_000);
    expect(totalQueue(people)).toEqual({ acknowledged: expected, lost: [], duplicated: [], reordered: [] });

    // The nodes recovered by themselves: a fresh client joins, sends and is delivered to.
    const late = await connectClient(urls[1]!);
    const sent = await late.send(people[0]!.id, 'after the outage');
    expect(sent.ok).toBe(true);
    await eventually(() => people[0]!.history.find((m) => m.body === 'after the outage'), 'a message after the outage');
    late.close();
  });
});
