// Two relay nodes sharing one Redis: a user with a device on each node gets a new message on
// both, as on one relay (PROTOCOL.md 7.5: "two sockets connected at the same time normally
// both receive a new message"), whichever node it was sent through.
import { describe, expect, it } from 'vitest';
import { eventually, type TestClient } from '../support/relay.ts';
import { generateIdentity } from '../../relay/identity.ts';
import { useTwoNodes } from './support/nodes.ts';

const nodes = useTwoNodes();
const { join } = nodes;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bodies = (c: TestClient) => c.messages().map((m) => m.body);

describe('a user with a device on each node', () => {
  it('gets a message on both devices, whichever node it was sent through', async () => {
    const bobId = generateIdentity();
    const bobOnA = await join(nodes.a.url, { identity: bobId });
    const bobOnB = await join(nodes.b.url, { identity: bobId });
    const alice = await join(nodes.a.url);
    const carol = await join(nodes.b.url);
    await pause(300); // both of bob's sockets counted in Redis

    const viaA = await alice.send(bobId.userId, 'through node A');
    expect(viaA.ok).toBe(true);
    await eventually(() => bodies(bobOnA).includes('through node A') && bodies(bobOnB).includes('through node A'), 'both devices to get the message sent through node A', 3_000);

    const viaB = await carol.send(bobId.userId, 'through node B');
    expect(viaB.ok).toBe(true);
    await eventually(() => bodies(bobOnA).includes('through node B') && bodies(bobOnB).includes('through node B'), 'both devices to get the message sent through node B', 3_000);
  });

  it('gets a message to themselves from one device on their device on the other node', async () => {
    const bobId = generateIdentity();
    const bobOnA = await join(nodes.a.url, { identity: bobId });
    const bobOnB = await join(nodes.b.url, { identity: bobId });
    await pause(300);
    expect((await bobOnA.send(bobId.userId, 'note to self')).ok).toBe(true);
    await eventually(() => bodies(bobOnB).includes('note to self'), 'the device on node B to get the note', 3_000);
    await eventually(() => bodies(bobOnA).includes('note to self'), 'the device on node A to get it too', 3_000);
  });

  it('gets, on a device that joined on the other node, what was waiting on this node, before what came after it', async () => {
    // Bob's device on node A is slow to take messages: alice's waits in node A's memory for
    // it. Then bob's other device connects to node B, and dave sends through node A.
    const bobId = generateIdentity();
    await join(nodes.a.url, { identity: bobId, onDeliver: () => new Promise((resolve) => setTimeout(() => resolve({ ok: true }), 800)) });
    const alice = await join(nodes.a.url);
    const dave = await join(nodes.a.url);
    await pause(300);
    const fromAlice = alice.send(bobId.userId, 'from alice');
    await pause(100);
    const bobOnB = await join(nodes.b.url, { identity: bobId });
    await pause(300);
    const fromDave = dave.send(bobId.userId, 'from dave');
    expect((await Promise.all([fromAlice, fromDave])).map((r) => r.ok)).toEqual([true, true]);
    await eventually(() => bobOnB.messages().length >= 2, 'both messages on the device on node B', 3_000);
    expect(bodies(bobOnB)).toEqual(['from alice', 'from dave']);
  });

  it('gets, on a device that joins on the other node, a message waiting on this node for the first device, with nothing sent after it', async () => {
    const bobId = generateIdentity();
    const bobOnA = await join(nodes.a.url, { identity: bobId, onDeliver: () => new Promise((resolve) => setTimeout(() => resolve({ ok: true }), 800)) });
    const alice = await join(nodes.a.url);
    await pause(300);
    // Alice's message waits in node A's memory for bob's slow device there; meanwhile bob's
    // other device connects to node B.
    const sent = alice.send(bobId.userId, 'while you were joining');
    await pause(100);
    const bobOnB = await join(nodes.b.url, { identity: bobId });
    expect((await sent).ok).toBe(true);
    await eventually(() => bodies(bobOnB).includes('while you were joining'), 'the device on node B to get it', 3_000);
    await eventually(() => bodies(bobOnA).includes('while you were joining'), 'the device on node A to get it', 3_000);
  });
});
