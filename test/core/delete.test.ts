// Deleting a message removes it from this computer only: one still in the outbox is never
// sent, one the relay has reaches the other person anyway, and the people list follows.
import { describe, expect, it } from 'vitest';
import type { RelayStore } from '../../relay/mailbox/store.ts';
import { eventually, useRelay } from '../support/relay.ts';
import { conversation, knows, must, online, startCore, type TestCore } from '../support/messenger.ts';

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

const texts = async (core: TestCore, peer: string) => (await conversation(core, peer)).map((m) => m.text);
const row = (core: TestCore, peer: string) => core.persons.findLast((p) => p.id === peer);

describe('deleting a message', () => {
  it('withdraws one still in the outbox, leaves the other person their copy of one sent, and takes one received out with its unread count', async () => {
    const { relay, alice, bob } = await pair();
    must(await bob.messenger.handlers['relay:leave'](null));
    const keep = must(await bob.messenger.handlers['message:send']({ peer: alice.id, text: 'See you at ten' }));
    const regret = must(await bob.messenger.handlers['message:send']({ peer: alice.id, text: 'Actually, never mind the report' }));
    expect(must(await bob.messenger.handlers['message:delete']({ n: regret.n }))).toEqual({ withdrawn: true });
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
    expect(must(await bob.messenger.handlers['message:delete']({ n: received!.n }))).toEqual({ withdrawn: false });
    await eventually(() => row(bob, alice.id)?.unread === 0, 'the unread count goes with it');
    expect(await texts(bob, alice.id)).toEqual(['See you at ten']);
    // Deleting what was sent: the recipient keeps it.
    const sentByAlice = (await conversation(alice, bob.id)).find((m) => m.id === hello.id);
    expect(must(await alice.messenger.handlers['message:delete']({ n: sentByAlice!.n }))).toEqual({ withdrawn: false });
    expect(await texts(alice, bob.id)).toEqual(['See you at ten']);
    expect(await texts(bob, alice.id)).toEqual(['See you at ten']);
    expect(sentByAlice?.state).not.toBe('read');

    expect(await bob.messenger.handlers['message:delete']({ n: received!.n })).toMatchObject({ ok: false, error: { code: 'E_NOT_FOUND' } });
  });

  it('says a message on its way to the relay was not withdrawn: it arrives, and its answer, coming after, changes nothing here', async () => {
    let hold: (() => void) | undefined;
    const held = new Promise<void>((resolve) => (hold = resolve));
    let waiting = 0;
    const { relay, alice, bob } = await pair({
      wrapStore: (store): RelayStore => ({
        ...store,
        accept: async (...args) => {
          waiting += 1;
          await held;
          return store.accept(...args);
        },
      }),
    });
    must(await bob.messenger.handlers['relay:leave'](null));
    const sent = must(await alice.messenger.handlers['message:send']({ peer: bob.id, text: 'On its way' }));
    await eventually(() => waiting === 1, 'the relay has the request and has not answered');
    expect(must(await alice.messenger.handlers['message:delete']({ n: sent.n }))).toEqual({ withdrawn: false });
    hold?.();
    const after = must(await alice.messenger.handlers['message:send']({ peer: bob.id, text: 'And this one' }));
    await eventually(async () => (await conversation(alice, bob.id)).some((m) => m.id === after.id && m.state === 'sent'), 'the next message accepted');
    expect(await texts(alice, bob.id)).toEqual(['And this one']);
    expect(alice.updated.some((m) => m.id === sent.id)).toBe(false);
    must(await bob.messenger.handlers['relay:join']({ address: `127.0.0.1:${relay.port}` }));
    await eventually(async () => (await texts(bob, alice.id)).length === 2, 'Bob receives both');
    expect(await texts(bob, alice.id)).toEqual(['On its way', 'And this one']);
  });
});
