// What the window is told about people: while a backlog is stored, and while the directory
// is synced from a relay that many have joined.
import { describe, expect, it } from 'vitest';
import { eventually, newMessageId, useRelay, type TestClient } from '../support/relay.ts';
import { must, online, startCore, type TestCore } from '../support/messenger.ts';
import { seal } from '../../main/core/crypto.ts';
import { generateIdentity } from '../../relay/identity.ts';
import type { RelayStore } from '../../relay/mailbox/store.ts';

const scope = useRelay();

async function core(name: string): Promise<TestCore> {
  return scope.track(await startCore({ name }));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('people', () => {
  it('tells the window of a backlog’s senders a few times while it is stored, not once per stored chunk, and ends right', async () => {
    // Senders here send faster than people type.
    const relay = await scope.start({ rate: { capacity: 1_000, perSecond: 1_000, abuseMs: 10_000 } });
    const bob = await core('Bob');
    must(await bob.messenger.handlers['relay:join']({ address: relay.url }));
    await online(bob);
    must(await bob.messenger.handlers['relay:leave'](null));

    // Three people write 1,200 messages while Bob is away, interleaved ten at a time, so that
    // every chunk the inbox stores (64 messages) holds all three.
    const senders = await Promise.all(['Ann', 'Cat', 'Dan'].map((name) => scope.join({ name })));
    const perSender = 400;
    const text = (s: TestClient, i: number) => `${s.id.slice(0, 6)} #${i}`;
    for (let i = 0; i < perSender; i += 10) {
      for (const s of senders) {
        const messages = Array.from({ length: 10 }, (_, k) => {
          const id = newMessageId();
          const sentAt = Date.now();
          return { id, to: bob.id, sentAt, body: seal(s.identity, bob.messenger.identity.kaKey, { from: s.id, to: bob.id, id, sentAt }, text(s, i + k)) };
        });
        expect(await s.request('message:send-many', { messages })).toMatchObject({ ok: true });
      }
    }

    const told = bob.persons.length;
    must(await bob.messenger.handlers['relay:join']({ address: relay.url }));
    // The last word the window has of each sender is the final one.
    const latest = (s: TestClient) => bob.persons.findLast((p) => p.id === s.id);
    await eventually(() => senders.every((s) => latest(s)?.unread === perSender), 'every unread count shown', 20_000);
    for (const s of senders) expect(latest(s)).toMatchObject({ unread: perSender, last: { text: text(s, perSender - 1), direction: 'in', flagged: false } });
    const listed = must(await bob.messenger.handlers['people:list'](null));
    for (const s of senders) expect(listed.find((p) => p.id === s.id)).toMatchObject({ unread: perSender, last: { text: text(s, perSender - 1) } });

    // Every stored chunk (64 messages, 19 in all) held each sender, yet each was announced far
    // fewer times: once by the directory sync, then at most every 250 ms while the backlog was
    // stored (about a second here; a row per chunk and sender made it 20 each).
    const chunks = Math.ceil((senders.length * perSender) / 64);
    for (const s of senders) expect(bob.persons.slice(told).filter((p) => p.id === s.id).length).toBeLessThanOrEqual(chunks / 2);
  });

  it('holds a directory hint that comes during a full sync, and reads nothing twice', async () => {
    // The relay's store, seen from outside: where each of the app's reads of the directory's
    // changes starts, in order, and the second page of the full sync held until a new user's hint has reached
    // the syncing core.
    const since: number[] = [];
    let secondPage: (() => void) | undefined;
    const held = new Promise<void>((resolve) => (secondPage = resolve));
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    let inner: RelayStore | undefined;
    const relay = await scope.start({
      wrapStore: (store) => {
        inner = store;
        return {
          ...store,
          changedUsers: async (after, limit) => {
            // The app reads pages of 500; the relay itself reads single rows (its highest rev, at start).
            if (limit !== 500) return store.changedUsers(after, limit);
            since.push(after);
            const hold = after > 0 ? secondPage : undefined;
            if (hold) {
              secondPage = undefined;
              hold();
              await released;
            }
            return store.changedUsers(after, limit);
          },
        };
      },
    });
    // Three pages of 500.
    const known = 1_100;
    for (let i = 1; i <= known; i++) {
      const who = generateIdentity();
      await inner!.saveUser({ id: who.userId, name: `User ${i}`, idKey: who.idKey, kaKey: who.kaKey, kaSig: who.kaSig, lastSeen: Date.now(), rev: i });
    }

    const alice = await core('Alice');
    must(await alice.messenger.handlers['relay:join']({ address: relay.url }));
    await held;
    // Carol joins while Alice pages: her hint reaches Alice in the middle of the sync.
    const carol = await scope.join({ name: 'Carol' });
    await eventually(() => carol.hints[0], 'the hint of Carol');
    // Time for Alice to act on the hint she got at the same moment.
    await sleep(300);
    release();

    const list = async () => must(await alice.messenger.handlers['people:list'](null));
    await eventually(async () => (await list()).length === known + 1 && (await list()).some((p) => p.id === carol.id), 'alice knows everyone and carol', 10_000);
    expect(new Set((await list()).map((p) => p.id)).size).toBe(known + 1);
    // One read at a time, each after the one before: the sync's pages, then whatever the held
    // hint still needed, from where the sync ended; no read started over.
    expect(since.slice(0, 3)).toEqual([0, 500, 1_000]);
    for (let i = 1; i < since.length; i++) expect(since[i]).toBeGreaterThan(since[i - 1]!);
  });
  it('shows everyone offline in the window as soon as the connection to the relay is lost, and again after leaving', async () => {
    const relay = await scope.start();
    const [alice, bob] = [await core('Alice'), await core('Bob')];
    for (const c of [alice, bob]) must(await c.messenger.handlers['relay:join']({ address: relay.url }));
    const bobInWindow = () => alice.persons.findLast((p) => p.id === bob.id);
    await eventually(() => bobInWindow()?.online === true, 'bob online in alice’s window', 10_000);

    // The relay goes away: Alice cannot know who is online any more.
    await relay.stop();
    await eventually(() => alice.statuses.at(-1)?.connection.state === 'reconnecting', 'alice reconnecting');
    await eventually(() => bobInWindow()?.online === false, 'bob offline in alice’s window');

    await relay.restart();
    await eventually(() => bobInWindow()?.online === true, 'bob online again', 10_000);
    // Bob stays online a while after he connected: when Alice leaves, she saw him until then.
    await sleep(300);
    const leaving = Date.now();
    must(await alice.messenger.handlers['relay:leave'](null));
    await eventually(() => bobInWindow()?.online === false, 'bob offline after alice left');
    expect(bobInWindow()?.lastSeen).toBeGreaterThanOrEqual(leaving);
  });

  it('shows someone online on the relay moved to, even when the relay left had a clock running ahead', async () => {
    // Presence revisions are each relay's clock: the first relay's would outrank the second's.
    const ahead = await scope.start({ now: () => Date.now() + 10 * 60_000 });
    const right = await scope.start();
    const [alice, bob] = [await core('Alice'), await core('Bob')];
    const bobListed = async () => must(await alice.messenger.handlers['people:list'](null)).find((p) => p.id === bob.id);
    for (const relay of [ahead, right]) {
      for (const c of [alice, bob]) must(await c.messenger.handlers['relay:join']({ address: relay.url }));
      await Promise.all([online(alice), online(bob)]);
      await eventually(async () => (await bobListed())?.online === true, `bob online for alice on ${relay.url}`, 10_000);
      await eventually(() => alice.persons.findLast((p) => p.id === bob.id)?.online === true, `bob online in alice’s window on ${relay.url}`);
    }
  });

  it('marks both people sharing a name once one renames into it, and neither once the other renames out of it', async () => {
    const relay = await scope.start();
    const [ada, grace, linus] = [await core('Ada'), await core('Grace'), await core('Linus')];
    for (const c of [ada, grace, linus]) must(await c.messenger.handlers['relay:join']({ address: relay.url }));
    const row = (id: string) => grace.persons.findLast((p) => p.id === id);
    await eventually(() => row(ada.id)?.online && row(linus.id)?.online, 'both online in grace’s window', 10_000);
    expect([row(ada.id)?.nameClash, row(linus.id)?.nameClash]).toEqual([false, false]);

    must(await linus.messenger.handlers['profile:setup']({ name: 'Ada' }));
    await eventually(() => row(linus.id)?.name === 'Ada' && row(linus.id)?.nameClash && row(ada.id)?.nameClash, 'both marked', 10_000);

    must(await ada.messenger.handlers['profile:setup']({ name: 'Ada Lovelace' }));
    await eventually(() => row(ada.id)?.name === 'Ada Lovelace' && row(ada.id)?.nameClash === false && row(linus.id)?.nameClash === false, 'neither marked', 10_000);
    // The window's rows say what the core says.
    const listed = must(await grace.messenger.handlers['people:list'](null));
    expect(listed.filter((p) => p.id !== grace.id).map((p) => [p.name, p.nameClash]).sort()).toEqual([['Ada Lovelace', false], ['Ada', false]]);
  });

  it('carries a name changed while the relay was away to the relay when it reconnects, so the others see it', async () => {
    const relay = await scope.start();
    const [alice, bob] = [await core('Alice'), await core('Bob')];
    for (const c of [alice, bob]) must(await c.messenger.handlers['relay:join']({ address: relay.url }));
    const aliceAtBob = async () => must(await bob.messenger.handlers['people:list'](null)).find((p) => p.id === alice.id);
    await eventually(async () => (await aliceAtBob())?.name === 'Alice', 'bob knows alice', 10_000);

    await relay.stop();
    await eventually(() => alice.statuses.at(-1)?.connection.state === 'reconnecting', 'alice reconnecting');
    // No relay to tell now: the next handshake carries the new name (PROTOCOL.md 5.1).
    expect(must(await alice.messenger.handlers['profile:setup']({ name: 'Alicia' })).name).toBe('Alicia');
    await relay.restart();
    await eventually(async () => (await aliceAtBob())?.name === 'Alicia', 'bob sees alicia', 10_000);
  });
});
