// Two relay nodes sharing one Redis: what people on different nodes see of each other.
import { describe, expect, it } from 'vitest';
import { io } from 'socket.io-client';
import { eventually, newMessageId, type ClientSocket } from '../support/relay.ts';
import { generateIdentity } from '../../relay/identity.ts';
import { buildAuth, fetchHello } from '../../relay/handshake.ts';
import { useTwoNodes } from './support/nodes.ts';

const nodes = useTwoNodes();
const { join } = nodes;

describe('a cluster of two nodes', () => {
  it('is one relay to its clients: same relay id, one directory', async () => {
    const [helloA, helloB] = await Promise.all([fetchHello(new URL(nodes.a.url)), fetchHello(new URL(nodes.b.url))]);
    expect(helloA.relayId).toBe(helloB.relayId);
    const alice = await join(nodes.a.url, { name: 'Alice' });
    const bob = await join(nodes.b.url, { name: 'Bob' });
    const page = await bob.request('directory:get', { ids: [alice.id, bob.id] });
    const expected = [[alice.id, 'Alice', true], [bob.id, 'Bob', true]].sort((x, y) => String(x[0]).localeCompare(String(y[0])));
    expect(page.ok && page.value.users.map((u) => [u.id, u.name, u.online])).toEqual(expected);
  });

  it('shows presence across nodes and carries messages, receipts and typing between them', async () => {
    const alice = await join(nodes.a.url, { name: 'Alice' });
    const bobIdentity = generateIdentity();
    await alice.watch(bobIdentity.userId);
    const bob = await join(nodes.b.url, { name: 'Bob', identity: bobIdentity });
    await eventually(() => alice.presence.some((p) => p.id === bob.id && p.online), 'alice (node A) to see bob (node B) come online');
    // Bob is new: node B hinted everyone, alice on node A too, and node A answers what changed.
    await eventually(() => alice.hints.length > 0, 'a directory hint from node B at alice');
    const changes = await alice.request('directory:changes', { since: 0 });
    expect(changes.ok && changes.value.users.map((u) => u.id)).toContain(bob.id);

    const id = newMessageId();
    const sent = await alice.send(bob.id, 'hello from A', id);
    // Bob took it on node B before node A answered: the answer is the delivered receipt.
    expect(sent.ok && sent.value.deliveredAt).toBeGreaterThan(0);
    expect(bob.messages().map((m) => [m.from, m.body])).toEqual([[alice.id, 'hello from A']]);
    // A resend through either node is answered the same.
    const again = await Promise.all([alice.send(bob.id, 'hello from A', id), (await join(nodes.b.url, { identity: alice.identity })).send(bob.id, 'hello from A', id)]);
    expect(again).toEqual([sent, sent]);

    expect((await bob.request('message:read', { peer: alice.id, ids: [id] })).ok).toBe(true);
    await eventually(() => alice.receipts().find((r) => r.state === 'read' && r.ids.includes(id)), 'the read receipt on node A');
    expect(alice.receipts().filter((r) => r.state === 'delivered')).toEqual([]);

    bob.socket.emit('typing:set', { to: alice.id, typing: true });
    await eventually(() => alice.typing.find((t) => t.from === bob.id && t.typing), 'typing from node B on node A');

    bob.close();
    await eventually(() => alice.presence.filter((p) => p.id === bob.id).at(-1)?.online === false, 'bob to go offline on node A');
    const dir = await alice.request('directory:get', { ids: [bob.id] });
    expect(dir.ok && dir.value.users[0]?.online).toBe(false);
  });

  it('answers "stored" when a recipient on the other node is slow to take a message, and the delivered receipt follows', async () => {
    const alice = await join(nodes.a.url);
    const bob = await join(nodes.b.url, { onDeliver: () => new Promise((resolve) => setTimeout(() => resolve({ ok: true }), 1_500)) });
    const id = newMessageId();
    const t0 = Date.now();
    const sent = await alice.send(bob.id, 'take your time', id);
    expect(sent.ok && sent.value).toEqual({ seq: expect.any(Number) });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900); // it waited about a second for the acknowledgement
    const receipt = await eventually(() => alice.receipts().find((r) => r.state === 'delivered' && r.ids.includes(id)), 'the delivered receipt');
    expect(receipt.from).toBe(bob.id);
    expect(bob.messages().filter((m) => m.id === id)).toHaveLength(1);
    // A resend through the other node while node A still waits takes its place: answered at
    // once, node A's answer says stored too, and the receipt follows when bob takes it.
    const later = newMessageId();
    const sentAt = Date.now();
    const first = alice.request('message:send', { id: later, to: bob.id, body: 'again', sentAt });
    await new Promise((r) => setTimeout(r, 100)); // node A is waiting by now
    const t1 = Date.now();
    const resent = await (await join(nodes.b.url, { identity: alice.identity })).request('message:send', { id: later, to: bob.id, body: 'again', sentAt });
    expect(resent).toEqual({ ok: true, value: { seq: expect.any(Number) } });
    expect(Date.now() - t1).toBeLessThan(900);
    expect(await first).toEqual(resent);
    await eventually(() => alice.receipts().find((r) => r.state === 'delivered' && r.ids.includes(later)), 'its receipt');
    expect(bob.messages().filter((m) => m.id === later)).toHaveLength(1);
  });

  it('answers with the delivery even when the other node tells of it before its own accept has returned', async () => {
    // The notice comes on the wake-up connection, in no order with the accept's reply: here,
    // first (as if the recipient had been that fast); bob is slow, so only the notice explains an early answer.
    const alice = await join(nodes.a.url);
    const bob = await join(nodes.b.url, { onDeliver: () => new Promise((resolve) => setTimeout(() => resolve({ ok: true }), 1_500)) });
    const id = newMessageId();
    nodes.a.store.taken(alice.id, id, 1234);
    const sent = await alice.send(bob.id, 'quick', id);
    expect(sent.ok && sent.value.deliveredAt).toBe(1234);
  });

  it('keeps a user online while a socket remains on either node', async () => {
    const watcher = await join(nodes.a.url);
    const identity = generateIdentity();
    await watcher.watch(identity.userId);
    const onA = await join(nodes.a.url, { identity });
    const onB = await join(nodes.b.url, { identity });
    await eventually(() => watcher.presence.filter((p) => p.id === identity.userId && p.online).length >= 2, 'both sockets announced');
    onA.close();
    await new Promise((r) => setTimeout(r, 300));
    expect(watcher.presence.filter((p) => p.id === identity.userId).at(-1)?.online).toBe(true);
    onB.close();
    await eventually(() => watcher.presence.filter((p) => p.id === identity.userId).at(-1)?.online === false, 'offline once the last socket left');
  });

  it('delivers what was sent through one node to an offline recipient who comes back on the other, in order', async () => {
    const bobId = generateIdentity();
    (await join(nodes.a.url, { identity: bobId })).close(); // bob joins once, then is away
    const alice = await join(nodes.b.url);
    const ids: string[] = [];
    for (let i = 0; i < 30; i += 1) {
      const id = newMessageId();
      ids.push(id);
      expect((await alice.send(bobId.userId, `m${i}`, id)).ok).toBe(true);
    }
    const bob = await join(nodes.a.url, { identity: bobId });
    await eventually(() => bob.messages().length >= 30, 'the backlog');
    expect(bob.messages().map((m) => m.id)).toEqual(ids);
    const seqs = bob.messages().map((m) => m.seq);
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
  });

  it('stores a message id sent through both nodes once, and delivers it once', async () => {
    const aliceId = generateIdentity();
    const alice1 = await join(nodes.a.url, { identity: aliceId });
    const alice2 = await join(nodes.b.url, { identity: aliceId });
    const bob = await join(nodes.a.url);
    const id = newMessageId();
    const sentAt = Date.now();
    const answers = await Promise.all([
      alice1.request('message:send', { id, to: bob.id, body: 'once', sentAt }),
      alice2.request('message:send', { id, to: bob.id, body: 'once', sentAt }),
      alice1.request('message:send', { id, to: bob.id, body: 'once', sentAt }),
    ]);
    const seqs = answers.map((r) => (r.ok ? r.value.seq : -1));
    expect(new Set(seqs).size).toBe(1);
    expect(seqs[0]).toBeGreaterThan(0);
    const conflict = await alice2.request('message:send', { id, to: bob.id, body: 'different', sentAt });
    expect(conflict.ok ? null : conflict.error.code).toBe('E_ID_CONFLICT');
    await eventually(() => bob.messages().length === 1, 'the message');
    await new Promise((r) => setTimeout(r, 300));
    expect(bob.messages().map((m) => [m.id, m.body])).toEqual([[id, 'once']]);
  });

  it('wakes a recipient who just connected to the other node, however the join and the send interleave', async () => {
    // The nodes' periodic sweep is off in these tests (60 s): only wake-ups can deliver in time.
    const sender = await join(nodes.b.url);
    for (let i = 0; i < 20; i += 1) {
      const identity = generateIdentity();
      (await join(nodes.a.url, { identity })).close(); // known to the directory, then away
      const recipient = await join(nodes.a.url, { identity });
      const id = newMessageId();
      expect((await sender.send(identity.userId, `race ${i}`, id)).ok).toBe(true);
      await eventually(() => recipient.messages().find((m) => m.id === id), `message ${i} to arrive`, 2_000);
      recipient.close(); // stays under the per-address connection cap
    }
  });

  it('spends a handshake challenge on every node', async () => {
    const identity = generateIdentity();
    const hello = await fetchHello(new URL(nodes.a.url));
    const auth = buildAuth(identity, hello, { name: 'replayer' });
    const connect = (url: string) =>
      new Promise<string>((resolve) => {
        const socket: ClientSocket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true, auth });
        socket.once('connect', () => {
          socket.disconnect();
          resolve('connected');
        });
        socket.once('connect_error', (error) => {
          socket.disconnect();
          resolve(error.message);
        });
      });
    expect(await connect(nodes.b.url)).toBe('connected'); // a challenge from node A is good on node B
    expect(await connect(nodes.a.url)).toBe('E_AUTH'); // and then spent on node A too
  });
});
