// A mailbox in Redis with an entry that cannot be read (written by hand, or by a faulty older
// version): its owner still gets everything else, and the entry is kept aside, not lost.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from 'redis';
import { generateIdentity } from '../../relay/identity.ts';
import { connectClient, eventually, type TestClient } from '../support/relay.ts';
import { startRedis, type TestRedis } from './support/redis.ts';
import { startNode, type TestNode } from './support/nodes.ts';

let redis: TestRedis;
let node: TestNode;
let probe: ReturnType<typeof createClient>;
const errors: string[] = [];
const clients: TestClient[] = [];
const log = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: (message: string, fields?: object) => void errors.push(`${message} ${JSON.stringify(fields)}`) };

beforeAll(async () => {
  redis = await startRedis();
  node = await startNode(redis.url, { log });
  probe = createClient({ url: redis.url });
  await probe.connect();
});
afterAll(async () => {
  for (const c of clients) c.close();
  await probe?.close();
  await node?.stop();
  await redis?.remove();
});

const join = async (identity = generateIdentity()) => {
  const client = await connectClient(node.url, { identity });
  clients.push(client);
  return client;
};

describe('a mailbox entry that cannot be read', () => {
  it('does not stop the others from reaching their recipient, and is kept in the dead letters', async () => {
    const bobIdentity = generateIdentity();
    (await join(bobIdentity)).close(); // bob is in the directory, and offline
    const alice = await join();
    const mailbox = `parley:mb:${bobIdentity.userId}`;
    const first = await alice.send(bobIdentity.userId, 'first');
    if (!first.ok) throw new Error(first.error.message);

    // Between the two, an entry an older version wrote (and counted in the quota) that no one can read.
    const damaged = `m 7 ${alice.id} damaged-0001\n{"seq":${first.value.seq},"kind":"message","body":"secret!"`;
    await probe.zAdd(mailbox, { score: first.value.seq + 0.5, value: damaged });
    await probe.hIncrBy(`parley:mq:${bobIdentity.userId}`, 'n', 1);
    await probe.hIncrBy(`parley:mq:${bobIdentity.userId}`, 'b', 7);
    expect((await alice.send(bobIdentity.userId, 'second')).ok).toBe(true);

    const bob = await join(bobIdentity);
    await eventually(() => bob.messages().length >= 2, 'bob to get both messages');
    expect(bob.messages().map((m) => m.body)).toEqual(['first', 'second']);

    await eventually(async () => (await probe.zCard(mailbox)) === 0, 'bob\'s mailbox to be empty');
    expect(await probe.zRangeWithScores(`parley:dead:${bobIdentity.userId}`, 0, -1)).toEqual([{ score: first.value.seq + 0.5, value: damaged }]);
    // The quota counts nothing waiting: the mailbox takes as many as before.
    expect(await probe.hGetAll(`parley:mq:${bobIdentity.userId}`)).toEqual({ n: '0', b: '0' });
    // Told once, without what the entry holds.
    expect(errors.length).toBe(1);
    expect(errors[0]).toContain(bobIdentity.userId);
    expect(errors[0]).not.toContain('secret');
  });

  it('is set aside when it fills the page that an acknowledgement reads next, and the page holds what follows it', async () => {
    const [alice, bob] = ['a'.repeat(32), 'b'.repeat(32)];
    const send = (id: string) => node.store.accept({ from: alice, to: bob, id, body: id, sentAt: 1, at: 2, digest: id }, { messages: 10, bytes: 10_000 });
    await send('before-0001');
    await send('after-00001');
    const [before] = await node.store.page(bob, 0, 1);
    if (!before) throw new Error('nothing in the mailbox');
    await probe.zAdd(`parley:mb:${bob}`, { score: before.seq + 0.5, value: 'r\n{"seq":' });
    const acked = await node.store.acknowledge(bob, [before.seq], 3, { afterSeq: before.seq, limit: 1 });
    expect(acked.next?.map((e) => (e.kind === 'message' ? e.id : e.kind))).toEqual(['after-00001']);
    expect(await probe.zRange(`parley:dead:${bob}`, 0, -1)).toEqual(['r\n{"seq":']);
  });
  it('is set aside when it is not even valid UTF-8 (the node reads it altered, and finds it again by its seq)', async () => {
    const [alice, bob] = ['c'.repeat(32), 'd'.repeat(32)];
    await node.store.accept({ from: alice, to: bob, id: 'good-000001', body: 'good', sentAt: 1, at: 2, digest: 'good' }, { messages: 10, bytes: 10_000 });
    const junk = Buffer.concat([Buffer.from('r\n{"seq":'), Buffer.from([0xff, 0xfe])]);
    await probe.zAdd(`parley:mb:${bob}`, { score: 0.5, value: junk });
    const page = await Promise.race([
      node.store.page(bob, 0, 10),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no page within 5 s')), 5_000)),
    ]);
    expect(page.map((e) => (e.kind === 'message' ? e.id : e.kind))).toEqual(['good-000001']);
    expect(await probe.zScore(`parley:dead:${bob}`, junk)).toBe(0.5);
  });
});
