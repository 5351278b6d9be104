// Deleting a message removes it from this computer only: one still in the outbox is never
// sent, one the relay has reaches the other person anyway, and the people list follows.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { RelayStore } from '../../relay/mailbox/store.ts';
import { eventually, useRelay } from '../support/relay.ts';
import { conversation, knows, must, online, startCore, type TestCore } from '../support/messenger.ts';
import { readDb } from '../support/db.ts';

const scope = useRelay();

async function joined(port: number, name: string): Promise<TestCore> {
  const core = scope.track(await startCore({ name }));
  must(await core.messenger.handlers['relay:join']({ address: `127.0.0.1:${port}` }));
  await online(core);
  return core;
}

async function pair(options: Parameters<typeof scope.start>[0] = {}) {
  const relay = await scope.start(options);
  const [alice, bob] = [await joined(relay.port, 'Alice'), await joined(relay.port, 'Bob')];
  await knows(alice, bob.id);
  await knows(bob, alice.id);
  return { relay, alice, bob };
}

/** Alice and Bob on a relay that takes requests to store a message but holds them until `release()`. */
async function pairWithHeldAccepts() {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const counts = { waiting: 0, stored: 0 };
  const people = await pair({
    wrapStore: (store): RelayStore => ({
      ...store,
      accept: async (...args) => {
        counts.waiting += 1;
        await held;
        const outcome = await store.accept(...args);
        counts.stored += 1;
        return outcome;
      },
    }),
  });
  return { ...people, release, counts };
}

const texts = async (core: TestCore, peer: string) => (await conversation(core, peer)).map((m) => m.text);
const row = (core: TestCore, peer: string) => core.persons.findLast((p) => p.id === peer);

describe('deleting a message', () => {
  it('withdraws one still in the outbox, leaves the other person their copy of one sent, and takes one received out with its unread count', async () => {
    const { relay, alice, bob } = await pair();
    must(await bob.messenger.handlers['relay:leave'](null));
    const keep = must(await bob.messenger.handlers['message:send']({ peer: alice.id, text: 'See you at ten' }));
    const regret = must(await bob.messenger.handlers['message:send']({ peer: alice.id, text: 'Actually, never mind the report' }));
    expect(must(await bob.messenger.handlers['message:delete']({ n: regret.n }))).toEqual({ state: 'queued', withdrawn: true });
    expect(bob.removed).toContainEqual({ peer: alice.id, n: regret.n });
    await eventually(() => row(bob, alice.id)?.last?.text === 'See you at ten', 'the people list shows the message before it');
    expect(await texts(bob, alice.id)).toEqual(['See you at ten']);

    // Alice writes while Bob is away; Bob comes back: the outbox sends what is left.
    const hello = must(await alice.messenger.handlers['message:send']({ peer: bob.id, text: 'Did you get my notes?' }));
    must(await bob.messenger.handlers['relay:join']({ address: `127.0.0.1:${relay.port}` }));
    await eventually(async () => (await conversation(bob, alice.id)).some((m) => m.id === keep.id && m.state === 'delivered'), 'the kept message delivered');
    await eventually(() => bob.added.find((m) => m.id === hello.id), 'Bob receives Alice’s message');
    // Both went in one request, had both been queued: the withdrawn one never left.
    expect(await texts(alice, bob.id)).toEqual(['Did you get my notes?', 'See you at ten']);
    expect(alice.added.some((m) => m.id === regret.id)).toBe(false);

    // Deleting what came in: gone here, unread with it; the sender still has it, without a read receipt.
    const received = bob.added.find((m) => m.id === hello.id);
    expect(row(bob, alice.id)?.unread).toBe(1);
    expect(must(await bob.messenger.handlers['message:delete']({ n: received!.n }))).toEqual({ state: 'received', withdrawn: false });
    await eventually(() => row(bob, alice.id)?.unread === 0, 'the unread count goes with it');
    expect(await texts(bob, alice.id)).toEqual(['See you at ten']);
    // Deleting what was sent: the recipient keeps it.
    const sentByAlice = (await conversation(alice, bob.id)).find((m) => m.id === hello.id);
    expect(must(await alice.messenger.handlers['message:delete']({ n: sentByAlice!.n }))).toMatchObject({ withdrawn: false });
    expect(await texts(alice, bob.id)).toEqual(['See you at ten']);
    expect(await texts(bob, alice.id)).toEqual(['See you at ten']);
    expect(sentByAlice?.state).not.toBe('read');

    expect(await bob.messenger.handlers['message:delete']({ n: received!.n })).toMatchObject({ ok: false, error: { code: 'E_NOT_FOUND' } });
  });

  it('says a message on its way to the relay was not withdrawn: it arrives, and its answer, coming after, changes nothing here', async () => {
    const { relay, alice, bob, release, counts } = await pairWithHeldAccepts();
    must(await bob.messenger.handlers['relay:leave'](null));
    const sent = must(await alice.messenger.handlers['message:send']({ peer: bob.id, text: 'On its way' }));
    await eventually(() => counts.waiting === 1, 'the relay has the request and has not answered');
    expect(must(await alice.messenger.handlers['message:delete']({ n: sent.n }))).toEqual({ state: 'queued', withdrawn: false });
    release();
    const after = must(await alice.messenger.handlers['message:send']({ peer: bob.id, text: 'And this one' }));
    await eventually(async () => (await conversation(alice, bob.id)).some((m) => m.id === after.id && m.state === 'sent'), 'the next message accepted');
    expect(await texts(alice, bob.id)).toEqual(['And this one']);
    expect(alice.updated.some((m) => m.id === sent.id)).toBe(false);
    must(await bob.messenger.handlers['relay:join']({ address: `127.0.0.1:${relay.port}` }));
    await eventually(async () => (await texts(bob, alice.id)).length === 2, 'Bob receives both');
    expect(await texts(bob, alice.id)).toEqual(['On its way', 'And this one']);
  });

  it('clears a whole conversation, thousands of messages a part at a time: what waited in the outbox is not sent, the other person keeps theirs', async () => {
    const { relay, alice, bob } = await pair();
    must(await alice.messenger.handlers['message:send']({ peer: bob.id, text: 'Hello Bob' }));
    await eventually(async () => (await texts(bob, alice.id)).length === 1, 'Bob receives it');
    must(await bob.messenger.handlers['relay:leave'](null));
    for (let i = 0; i < 4_500; i++) must(await bob.messenger.handlers['message:send']({ peer: alice.id, text: `draft ${i}` }));
    expect(must(await bob.messenger.handlers['conversation:clear']({ peer: alice.id }))).toEqual({ removed: 4_501 });
    expect(bob.cleared).toEqual([{ peer: alice.id, upTo: expect.any(Number) }]);
    expect(await conversation(bob, alice.id)).toEqual([]);
    await eventually(() => row(bob, alice.id)?.last === null && row(bob, alice.id)?.unread === 0, 'the people list shows no message');
    expect(await bob.messenger.handlers['conversation:clear']({ peer: 'n'.repeat(32) })).toMatchObject({ ok: false, error: { code: 'E_UNKNOWN_PEER' } });

    const after = must(await bob.messenger.handlers['message:send']({ peer: alice.id, text: 'Starting afresh' }));
    must(await bob.messenger.handlers['relay:join']({ address: `127.0.0.1:${relay.port}` }));
    await eventually(() => alice.added.find((m) => m.id === after.id), 'Alice receives the message written after');
    // The outbox sends in order: had the cleared ones gone, they would have come first.
    expect(await texts(alice, bob.id)).toEqual(['Hello Bob', 'Starting afresh']);
  });

  it('does not call a queued message withdrawn once a request carried it unanswered: the relay may have it, and it arrives', async () => {
    const { relay, alice, bob, release, counts } = await pairWithHeldAccepts();
    must(await bob.messenger.handlers['relay:leave'](null));
    const sent = must(await alice.messenger.handlers['message:send']({ peer: bob.id, text: 'Regretted' }));
    await eventually(() => counts.waiting === 1, 'the relay has the request');
    // Alice's connection goes before the answer: the request fails as unanswered, the message stays queued.
    must(await alice.messenger.handlers['relay:leave'](null));
    const attempted = () => readDb(join(alice.dataDir, 'history.db'), (db) => db.prepare('SELECT attempted FROM messages WHERE n = ?').pluck().get(sent.n));
    await eventually(() => attempted() === 1, 'the unanswered request noted');
    expect((await conversation(alice, bob.id))[0]?.state).toBe('queued');
    release();
    await eventually(() => counts.stored === 1, 'the relay stored it');
    expect(must(await alice.messenger.handlers['message:delete']({ n: sent.n }))).toEqual({ state: 'queued', withdrawn: false });
    must(await bob.messenger.handlers['relay:join']({ address: `127.0.0.1:${relay.port}` }));
    await eventually(async () => (await texts(bob, alice.id)).includes('Regretted'), 'Bob receives it');
  });
});

