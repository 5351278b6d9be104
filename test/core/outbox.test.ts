// A recipient whose mailbox at the relay is full (E_QUEUE_FULL) waits alone: messages to
// everyone else leave at once, and that recipient's still arrive in the order they were written.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { connect } from '../../main/core/connection.ts';
import { openHistory } from '../../main/core/history/index.ts';
import { Outbox } from '../../main/core/outbox.ts';
import { sendBatch } from '../../main/core/send-batch.ts';
import { generateIdentity, type Identity } from '../../relay/identity.ts';
import { connectClient, eventually, newMessageId, tempDir, useRelay } from '../support/relay.ts';
import { conversation, knows, must, online, startCore, type TestCore } from '../support/messenger.ts';

const scope = useRelay();
/** Each mailbox at the relay holds 5 messages. */
const QUOTA = { maxMessages: 5, maxBytes: 50 * 1024 * 1024 };

async function joined(port: number, name: string): Promise<TestCore> {
  const core = scope.track(await startCore({ name }));
  must(await core.messenger.handlers['relay:join']({ address: `127.0.0.1:${port}` }));
  await online(core);
  return core;
}

/** Alice, Bob and Carol on a relay with small mailboxes; Bob has left, so his fills up. */
async function bobAway() {
  const relay = await scope.start({ mailbox: QUOTA });
  const [alice, bob, carol] = [await joined(relay.port, 'Alice'), await joined(relay.port, 'Bob'), await joined(relay.port, 'Carol')];
  await knows(alice, bob.id);
  await knows(alice, carol.id);
  must(await bob.messenger.handlers['relay:leave'](null));
  return { alice, bob, carol };
}

async function fillBobsMailbox(alice: TestCore, bob: TestCore, count: number): Promise<void> {
  for (let i = 0; i < count; i++) must(await alice.messenger.handlers['message:send']({ peer: bob.id, text: `for Bob ${i}` }));
  await eventually(async () => (await conversation(alice, bob.id)).filter((m) => m.state === 'sent').length === QUOTA.maxMessages, 'the relay took what fits');
}

async function say(from: TestCore, to: TestCore, text: string): Promise<void> {
  const sent = must(await from.messenger.handlers['message:send']({ peer: to.id, text }));
  await eventually(() => to.added.find((m) => m.id === sent.id), `"${text}" to arrive`, 10_000);
}

describe("a recipient's full mailbox", () => {
  it('with more messages held back than one request carries, does not keep anyone else from getting theirs', async () => {
    const { alice, bob, carol } = await bobAway();
    await fillBobsMailbox(alice, bob, 60);
    await say(alice, carol, 'Lunch at noon?');
    await say(alice, carol, 'At the usual place.');
    const toBob = await conversation(alice, bob.id);
    expect(toBob.map((m) => m.state)).toEqual([...Array(5).fill('sent'), ...Array(55).fill('queued')]);
  });

  it('with a few messages held back, lets a new message to someone else leave at once', async () => {
    const { alice, bob, carol } = await bobAway();
    await fillBobsMailbox(alice, bob, 8);
    await say(alice, carol, 'Are you in today?');
    await say(alice, carol, 'Bob is not answering.');
    expect((await conversation(alice, bob.id)).filter((m) => m.state === 'queued')).toHaveLength(3);
  });

  it("sends that recipient's messages in the order written once there is room, while others' go past them", async () => {
    const relay = await scope.start({ mailbox: QUOTA });
    const bobIdentity = generateIdentity();
    await scope.close(await connectClient(relay.url, { identity: bobIdentity, name: 'Bob' }));
    const carol = await scope.join({ name: 'Carol' });
    const dir = tempDir();
    scope.track(dir.remove);
    const history = scope.track(openHistory(join(dir.path, 'history.db')));
    const see = (who: Identity, name: string) => history.seePeer({ id: who.userId, name, idKey: who.idKey, kaKey: who.kaKey, lastSeen: 0 });
    see(bobIdentity, 'Bob');
    see(carol.identity, 'Carol');
    const write = (to: string, body: string) => history.addOutgoing({ id: newMessageId(), peer: to, text: body }, () => body);
    const forBob = Array.from({ length: 55 }, (_, i) => write(bobIdentity.userId, `for Bob ${i}`).id);
    const forCarol = write(carol.id, 'for Carol').id;

    // Alice's side as the messenger wires it, with a short pause after a refusal.
    const outbox: Outbox = new Outbox({ history, send: (batch) => sendBatch(alice, batch), updated: () => {}, online: () => alice.status.state === 'online', retryDelayMs: 100 });
    const alice = connect({
      identity: generateIdentity(), name: () => 'Alice', address: relay.url,
      handlers: {
        status: (s) => {
          if (s.state === 'online') outbox.kick(true);
        },
        deliver: async () => ({ ok: true }), presence: () => {}, directoryChanged: () => {}, typing: () => {} },
    });
    scope.track(() => outbox.stop());
    scope.track(alice);

    await eventually(() => carol.messages().some((m) => m.id === forCarol), "Carol's message while Bob's mailbox is full", 10_000);
    const bob = await scope.join({ identity: bobIdentity, name: 'Bob' });
    await eventually(() => new Set(bob.messages().map((m) => m.id)).size === forBob.length, "all of Bob's messages", 15_000);
    expect([...new Set(bob.messages().map((m) => m.id))]).toEqual(forBob);
    // The last ones are answered once Bob has acknowledged them, a round trip after he has them.
    await eventually(() => history.outbox(100).length === 0, "Alice's outbox to empty");
  });
});
