// Two relay nodes sharing one Redis: a recipient gets every message, whichever node each one
// came through and wherever it waited (in the Redis mailbox, or held in a node's memory for a
// moment), without reconnecting.
import { describe, expect, it } from 'vitest';
import { eventually, newMessageId } from '../support/relay.ts';
import { useTwoNodes } from './support/nodes.ts';

const nodes = useTwoNodes();
const { join } = nodes;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('delivery across nodes', () => {
  it('delivers a message from the other node that arrived between two held on this one', async () => {
    // Bob (node A) is slow to acknowledge. While he sits on alice's message, carol's comes
    // through node B (into the shared mailbox) and then dave's through node A (held there).
    const bob = await join(nodes.a.url, { onDeliver: () => new Promise((resolve) => setTimeout(() => resolve({ ok: true }), 500)) });
    const alice = await join(nodes.a.url);
    const dave = await join(nodes.a.url);
    const carol = await join(nodes.b.url);
    await pause(300); // every socket counted in Redis
    const fromAlice = alice.send(bob.id, 'from alice');
    await eventually(() => bob.messages().some((m) => m.body === 'from alice'), 'bob to get alice\'s message');
    const carolsId = newMessageId();
    const fromCarol = carol.send(bob.id, 'from carol', carolsId);
    await pause(100);
    const fromDave = dave.send(bob.id, 'from dave');
    expect((await Promise.all([fromAlice, fromCarol, fromDave])).map((r) => r.ok)).toEqual([true, true, true]);

    await eventually(() => bob.messages().some((m) => m.body === 'from carol'), 'bob to get carol\'s message', 4_000);
    expect(bob.messages().map((m) => m.body).sort()).toEqual(['from alice', 'from carol', 'from dave']);
    // And carol sees it delivered: in her answer, or as a receipt.
    const answer = await fromCarol;
    if (!(answer.ok && answer.value.deliveredAt)) {
      await eventually(() => carol.receipts().some((r) => r.state === 'delivered' && r.ids.includes(carolsId)), 'carol\'s delivered receipt');
    }
  });
});
