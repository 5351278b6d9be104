// Read receipts: kept in the history until the relay has them, so reading offline and quitting
// loses none, and a peer the relay refuses never holds back the receipts for anyone else.
import { describe, expect, it } from 'vitest';
import { eventually, useRelay, type TestRelay } from '../support/relay.ts';
import { conversation, knows, must, online, startCore, type TestCore } from '../support/messenger.ts';

const scope = useRelay();

async function core(name: string, dataDir?: string): Promise<TestCore> {
  return scope.track(await startCore({ name, ...(dataDir ? { dataDir } : {}) }));
}

async function join(c: TestCore, relay: TestRelay): Promise<void> {
  must(await c.messenger.handlers['relay:join']({ address: relay.url }));
  await online(c);
}

/** `from` sends `text` to `to`; resolves with the message as `to` stored it. */
async function deliver(from: TestCore, to: TestCore, text: string) {
  await knows(from, to.id);
  must(await from.messenger.handlers['message:send']({ peer: to.id, text }));
  return eventually(() => to.added.find((m) => m.text === text), `${text} delivered`);
}

const stateAt = async (sender: TestCore, peer: string, text: string) => (await conversation(sender, peer)).find((m) => m.text === text)?.state;

describe('read receipts', () => {
  it('are sent after a restart for what was read offline before quitting', async () => {
    const relay = await scope.start();
    const [alice, bob] = [await core('Alice'), await core('Bob')];
    await Promise.all([join(alice, relay), join(bob, relay)]);
    const got = await deliver(bob, alice, 'read me later');
    await eventually(async () => (await stateAt(bob, alice.id, 'read me later')) === 'delivered', 'delivered');

    // Alice's laptop is offline; she reads the message and quits.
    must(await alice.messenger.handlers['relay:leave'](null));
    must(await alice.messenger.handlers['conversation:markRead']({ peer: bob.id, upTo: got.n }));
    await scope.close(alice);

    const again = await core('Alice', alice.dataDir);
    expect(must(await again.messenger.handlers['people:list'](null)).find((p) => p.id === bob.id)?.unread).toBe(0);
    await join(again, relay);
    await eventually(async () => (await stateAt(bob, alice.id, 'read me later')) === 'read', 'read at bob');
  });

  it('for a peer this relay does not know do not hold back the receipts for others', async () => {
    const [first, second] = [await scope.start(), await scope.start()];
    const [alice, bob, carol] = [await core('Alice'), await core('Bob'), await core('Carol')];
    await Promise.all([join(alice, first), join(bob, first)]);
    const fromBob = await deliver(bob, alice, 'from bob, on the first relay');

    // Alice moves to a relay where Bob has never been, and Carol writes to her there.
    await Promise.all([join(alice, second), join(carol, second)]);
    const fromCarol = await deliver(carol, alice, 'from carol, on the second relay');
    // Bob's receipt is refused here (E_UNKNOWN_RECIPIENT); Carol's must go anyway.
    must(await alice.messenger.handlers['conversation:markRead']({ peer: bob.id, upTo: fromBob.n }));
    must(await alice.messenger.handlers['conversation:markRead']({ peer: carol.id, upTo: fromCarol.n }));
    await eventually(async () => (await stateAt(carol, alice.id, 'from carol, on the second relay')) === 'read', 'read at carol');

    expect(await stateAt(bob, alice.id, 'from bob, on the first relay')).toBe('delivered');

    // Back on the first relay, Bob's receipt, kept meanwhile, arrives too.
    await join(alice, first);
    await eventually(async () => (await stateAt(bob, alice.id, 'from bob, on the first relay')) === 'read', 'read at bob');
  });
});
