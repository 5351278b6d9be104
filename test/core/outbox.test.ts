// A recipient whose mailbox at the relay is full (E_QUEUE_FULL) waits alone: messages to
// everyone else leave at once, and that recipient's still arrive in the order they were written.
// A refusal that means "not now" for the whole connection (the relay's storage failing, its
// rate limit) keeps every message queued, and each arrives once, in order, when it passes.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { connect } from '../../main/core/connection.ts';
import { openHistory } from '../../main/core/history/index.ts';
import { Outbox } from '../../main/core/outbox.ts';
import { sendBatch } from '../../main/core/send-batch.ts';
import { generateIdentity, type Identity } from '../../relay/identity.ts';
import { StorageError, type RelayStore } from '../../relay/mailbox/store.ts';
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

describe('a relay that answers "not now"', () => {
  /** Alice writes `texts` to Bob; what Bob got, and every state Alice's messages went through. */
  async function write(alice: TestCore, bob: TestCore, texts: string[]) {
    const ids: string[] = [];
    for (const text of texts) ids.push(must(await alice.messenger.handlers['message:send']({ peer: bob.id, text })).id);
    return ids;
  }
  const statesOf = (core: TestCore, ids: string[]) => new Set(core.updated.filter((m) => ids.includes(m.id)).map((m) => m.state));

  it('with its storage failing (E_STORAGE): the messages stay queued, then each arrives once, in order', async () => {
    let failing = true;
    let refused = 0;
    const relay = await scope.start({
      wrapStore: (store): RelayStore => ({
        ...store,
        accept: (...args) => {
          if (!failing) return store.accept(...args);
          refused += 1;
          return Promise.reject(new StorageError('E_STORAGE', 'the disk is failing'));
        },
      }),
    });
    const [alice, bob] = [await joined(relay.port, 'Alice'), await joined(relay.port, 'Bob')];
    await knows(alice, bob.id);
    const ids = await write(alice, bob, ['one', 'two', 'three']);
    // Refused, and refused again when tried later (the relay answers a batch's later messages as its first).
    await eventually(() => refused >= 2, 'the relay refused them twice', 10_000);
    expect((await conversation(alice, bob.id)).map((m) => m.state)).toEqual(['queued', 'queued', 'queued']);
    failing = false;
    await eventually(() => bob.added.filter((m) => ids.includes(m.id)).length === 3, 'all three to arrive', 10_000);
    await eventually(async () => (await conversation(alice, bob.id)).every((m) => m.state === 'delivered'), 'all delivered');
    expect(bob.added.map((m) => m.text)).toEqual(['one', 'two', 'three']);
    expect(statesOf(alice, ids).has('failed')).toBe(false);
  });

  it('over a rate limit smaller than a full batch (E_RATE_LIMITED): the messages stay queued, then each arrives once, in order', async () => {
    // A budget of 8 requests (a request spends one per message it carries, all or none).
    const relay = await scope.start({ rate: { capacity: 8, perSecond: 2, abuseMs: 60_000 } });
    const [alice, bob] = [await joined(relay.port, 'Alice'), await joined(relay.port, 'Bob')];
    await knows(alice, bob.id);
    // The first leaves alone; the rest gather behind it into a batch larger than the budget.
    const texts = Array.from({ length: 12 }, (_, i) => `message ${i}`);
    const ids = await write(alice, bob, texts);
    await eventually(() => bob.added.filter((m) => ids.includes(m.id)).length === texts.length, 'every message to arrive', 20_000);
    expect(bob.added.map((m) => m.text)).toEqual(texts);
    expect(statesOf(alice, ids).has('failed')).toBe(false);
  });
});
