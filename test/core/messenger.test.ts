import { afterEach, describe, expect, it, vi } from 'vitest';
import Database from 'better-sqlite3';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { eventually } from '../support/relay.ts';
import { conversation, knows, must, online, startCore, type TestCore } from '../support/messenger.ts';
import { readDb } from '../support/db.ts';

const cores: TestCore[] = [];
afterEach(async () => {
  for (const c of cores.splice(0).reverse()) await c.close();
});

async function core(options: Parameters<typeof startCore>[0]): Promise<TestCore> {
  const c = await startCore(options);
  cores.push(c);
  return c;
}

/** Alice hosts (embedded relay, open or with a code); Bob joins her. Their clocks may be set apart. */
async function hostAndJoin(open = false, clocks: { alice?: () => number; bob?: () => number } = {}) {
  const alice = await core({ name: 'Alice', host: true, ...(clocks.alice ? { now: clocks.alice } : {}) });
  const hosting = must(await alice.messenger.handlers['host:start']({ port: 0, open }));
  const bob = await core({ name: 'Bob', ...(clocks.bob ? { now: clocks.bob } : {}) });
  must(await bob.messenger.handlers['relay:join']({ address: `127.0.0.1:${hosting.port}`, ...(hosting.accessCode ? { accessCode: hosting.accessCode } : {}) }));
  await Promise.all([online(alice), online(bob)]);
  await knows(alice, bob.id);
  await knows(bob, alice.id);
  return { alice, bob, hosting };
}

/** Grace hosts a relay of her own, open, and `person` joins it. */
async function joinColleague(person: TestCore) {
  const grace = await core({ name: 'Grace', host: true });
  const theirs = must(await grace.messenger.handlers['host:start']({ port: 0, open: true }));
  must(await person.messenger.handlers['relay:join']({ address: `127.0.0.1:${theirs.port}` }));
  await online(person);
  await knows(person, grace.id);
  return { grace, theirs };
}

describe('two people through a hosted relay', () => {
  it('hosts with an access code, and the code is needed to join', async () => {
    const { hosting } = await hostAndJoin();
    expect(hosting.accessCode).toMatch(/^[a-z2-9]{5}-[a-z2-9]{5}$/);
    const eve = await core({ name: 'Eve' });
    must(await eve.messenger.handlers['relay:join']({ address: `127.0.0.1:${hosting.port}`, accessCode: 'wrong-code' }));
    const refused = await eventually(() => {
      const s = eve.statuses.at(-1)?.connection;
      return s?.state === 'refused' ? s : undefined;
    }, 'refused');
    expect(refused).toMatchObject({ code: 'E_ACCESS_CODE', reason: 'The access code is wrong or missing.' });
  });

  it('keeps the access code when hosting stops and starts again, so a colleague who joined reconnects; only a new code replaces it', async () => {
    const { alice, bob, hosting } = await hostAndJoin();
    must(await alice.messenger.handlers['host:stop'](null));
    await eventually(() => bob.statuses.at(-1)?.connection.state !== 'online', 'bob offline');
    const since = bob.statuses.length;
    const again = must(await alice.messenger.handlers['host:start']({ port: hosting.port, open: false }));
    expect(again.accessCode).toBe(hosting.accessCode);
    await eventually(() => bob.statuses.slice(since).find((s) => ['online', 'refused'].includes(s.connection.state)), 'bob back', 15_000);
    expect(bob.statuses.slice(since).map((s) => s.connection.state)).not.toContain('refused');
    await online(bob);
    const renewed = must(await alice.messenger.handlers['host:newCode'](null));
    expect(renewed.accessCode).not.toBe(hosting.accessCode);
    must(await alice.messenger.handlers['host:stop'](null));
    expect(must(await alice.messenger.handlers['host:start']({ port: 0, open: false })).accessCode).toBe(renewed.accessCode);
  });

  it("says so when the hosted relay's own database is damaged, naming it (not the history), and leaves it as it was", async () => {
    const alice = await core({ name: 'Alice', host: true });
    const relayDb = join(alice.dataDir, 'relay', 'relay.db');
    mkdirSync(dirname(relayDb), { recursive: true });
    const damaged = Buffer.alloc(8192, 'not a database ');
    writeFileSync(relayDb, damaged);
    const answer = await alice.messenger.handlers['host:start']({ port: 0, open: true });
    expect(answer).toMatchObject({ ok: false, error: { code: 'E_DAMAGED', message: expect.stringContaining(`The hosted relay's data (${relayDb}) is damaged`) } });
    expect(answer.ok || answer.error.message).toMatch(/Your own history is not affected\.$/);
    expect(readFileSync(relayDb).equals(damaged)).toBe(true);
    // The history still works.
    expect(must(await alice.messenger.handlers['people:list'](null))).toEqual([]);
  });

  it('hosts a relay whose commits are synced to disk, as the history is', async () => {
    // The pragma is per connection: the hosted relay's own is found by watching what calls pragma().
    const pragma = vi.spyOn(Database.prototype, 'pragma');
    const { alice } = await hostAndJoin(true);
    const dbPath = join(alice.dataDir, 'relay', 'relay.db');
    const connections = new Set(pragma.mock.contexts.filter((db): db is Database.Database => db instanceof Database && db.name === dbPath));
    pragma.mockRestore();
    expect(connections.size).toBe(1);
    expect([...connections][0]?.pragma('synchronous', { simple: true })).toBe(2);
  });

  it('sends, delivers and reads, moving through every state', async () => {
    const { alice, bob } = await hostAndJoin();
    const sent = must(await alice.messenger.handlers['message:send']({ peer: bob.id, text: 'Hi Bob <b>bold</b>' }));
    expect(sent.state).toBe('queued');
    const got = await eventually(() => bob.added.find((m) => m.id === sent.id), 'bob receives');
    expect(got).toMatchObject({ direction: 'in', text: 'Hi Bob <b>bold</b>', peer: alice.id, flagged: false, state: 'received' });
    await eventually(() => alice.updated.find((m) => m.id === sent.id && m.state === 'delivered'), 'delivered');
    expect(alice.updated.filter((m) => m.id === sent.id).map((m) => m.state)).toEqual(['sent', 'delivered']);

    const bobPeople = must(await bob.messenger.handlers['people:list'](null));
    expect(bobPeople.find((p) => p.id === alice.id)).toMatchObject({ name: 'Alice', unread: 1, online: true, last: { text: 'Hi Bob <b>bold</b>', direction: 'in' } });
    must(await bob.messenger.handlers['conversation:markRead']({ peer: alice.id, upTo: got.n }));
    await eventually(() => alice.updated.find((m) => m.id === sent.id && m.state === 'read'), 'read');
    expect(must(await bob.messenger.handlers['people:list'](null)).find((p) => p.id === alice.id)?.unread).toBe(0);
  });

  it('keeps a conversation in the order it was written when the clocks disagree and one jumps back (B10)', async () => {
    const HOUR = 3600_000;
    let aliceSkew = -24 * HOUR;
    const { alice, bob } = await hostAndJoin(true, { alice: () => Date.now() + aliceSkew, bob: () => Date.now() + 2 * HOUR });
    const say = async (from: TestCore, to: TestCore, text: string) => {
      const sent = must(await from.messenger.handlers['message:send']({ peer: to.id, text }));
      await eventually(() => to.added.find((m) => m.id === sent.id), `${text} to arrive`);
    };
    await say(alice, bob, 'a1');
    await say(bob, alice, 'b1');
    await say(alice, bob, 'a2');
    aliceSkew -= HOUR; // Alice's clock jumps back an hour.
    await say(alice, bob, 'a3');
    await say(bob, alice, 'b2');
    for (const [me, them] of [[alice, bob], [bob, alice]] as const) {
      const shown = await conversation(me, them.id);
      expect(shown.map((m) => m.text)).toEqual(['a1', 'b1', 'a2', 'a3', 'b2']);
    }
    // The skew shows in "sent at" (Alice's a day and more behind Bob's), never in the order.
    const atBob = await conversation(bob, alice.id);
    const sentAt = (text: string) => atBob.find((m) => m.text === text)?.sentAt ?? NaN;
    expect(sentAt('b1') - sentAt('a1')).toBeGreaterThan(25 * HOUR);
    expect(sentAt('a3')).toBeLessThan(sentAt('a2'));
  });

  it('shows someone who joined later as online, and offline once they leave', async () => {
    // Alice was there first: Bob reaches her through the relay's directory hint, then her watch.
    const { alice, bob } = await hostAndJoin();
    const bobAt = async () => must(await alice.messenger.handlers['people:list'](null)).find((p) => p.id === bob.id);
    await eventually(async () => (await bobAt())?.online === true, 'bob online at alice');
    must(await bob.messenger.handlers['relay:leave'](null));
    await eventually(async () => (await bobAt())?.online === false, 'bob offline at alice');
    // The window hears of it too, a moment later (changes are announced together).
    const told = await eventually(() => {
      const last = alice.persons.findLast((p) => p.id === bob.id);
      return last?.online === false ? last : undefined;
    }, 'bob offline in the window');
    expect(told).toMatchObject({ online: false, lastSeen: expect.any(Number) });
  });

  it('keeps only ciphertext at the relay', async () => {
    const { alice, bob } = await hostAndJoin();
    await bob.messenger.handlers['relay:leave'](null);
    const secret = 'the password is swordfish';
    must(await alice.messenger.handlers['message:send']({ peer: bob.id, text: secret }));
    await eventually(async () => (await conversation(alice, bob.id)).at(-1)?.state === 'sent', 'stored at relay');
    const rows = readDb(join(alice.dataDir, 'relay', 'relay.db'), (db) => db.prepare('SELECT body FROM mailbox').all() as { body: string }[]);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.body).not.toContain('swordfish');
  });

  it('delivers what was sent while the recipient was away, once, in order', async () => {
    const { alice, bob, hosting } = await hostAndJoin();
    must(await bob.messenger.handlers['relay:leave'](null));
    const texts = Array.from({ length: 40 }, (_, i) => `while you were out ${i}`);
    for (const text of texts) must(await alice.messenger.handlers['message:send']({ peer: bob.id, text }));
    await eventually(async () => (await conversation(alice, bob.id)).every((m) => m.state === 'sent'), 'all accepted by the relay');
    must(await bob.messenger.handlers['relay:join']({ address: `127.0.0.1:${hosting.port}`, accessCode: hosting.accessCode ?? '' }));
    await eventually(async () => (await conversation(bob, alice.id)).length === 40, 'backlog stored');
    expect((await conversation(bob, alice.id)).map((m) => m.text)).toEqual(texts);
    await eventually(async () => (await conversation(alice, bob.id)).every((m) => m.state === 'delivered'), 'all delivered');
  });

  it('queues while offline and sends when the connection returns, keeping the outbox across a restart', async () => {
    const { alice, bob, hosting } = await hostAndJoin();
    must(await bob.messenger.handlers['relay:leave'](null));
    const queued = must(await bob.messenger.handlers['message:send']({ peer: alice.id, text: 'written offline' }));
    expect(queued.state).toBe('queued');
    // Bob's app restarts before it is ever online again: the outbox is on disk.
    const dataDir = bob.dataDir;
    await bob.close();
    cores.splice(cores.indexOf(bob), 1);
    const bobAgain = await core({ dataDir });
    expect(bobAgain.id).toBe(bob.id);
    expect((await conversation(bobAgain, alice.id)).map((m) => [m.text, m.state])).toEqual([['written offline', 'queued']]);
    must(await bobAgain.messenger.handlers['relay:join']({ address: `127.0.0.1:${hosting.port}`, accessCode: hosting.accessCode ?? '' }));
    await eventually(() => alice.added.find((m) => m.id === queued.id), 'alice receives the queued message');
    await eventually(async () => (await conversation(bobAgain, alice.id))[0]?.state === 'delivered', 'delivered');
  });

  it('keeps an unsent draft across a restart, shows it in the people list, and lets it go when the message is sent', async () => {
    const { alice, bob, hosting } = await hostAndJoin();
    const draft = 'About Thursday:\nI think we should';
    must(await bob.messenger.handlers['draft:save']({ peer: alice.id, text: draft }));
    await eventually(() => bob.persons.find((p) => p.id === alice.id && p.draft === draft), 'the row with the draft');
    expect(await bob.messenger.handlers['draft:save']({ peer: 'n'.repeat(32), text: 'hello?' })).toMatchObject({ ok: false, error: { code: 'E_UNKNOWN_PEER' } });
    // Bob's app restarts: the draft is on disk.
    const dataDir = bob.dataDir;
    await bob.close();
    cores.splice(cores.indexOf(bob), 1);
    const bobAgain = await core({ dataDir });
    expect(must(await bobAgain.messenger.handlers['people:list'](null)).find((p) => p.id === alice.id)?.draft).toBe(draft);
    must(await bobAgain.messenger.handlers['relay:join']({ address: `127.0.0.1:${hosting.port}`, accessCode: hosting.accessCode ?? '' }));
    const sent = must(await bobAgain.messenger.handlers['message:send']({ peer: alice.id, text: `${draft} move it to Friday.` }));
    await eventually(() => bobAgain.persons.find((p) => p.id === alice.id && p.draft === null), 'the row without the draft');
    expect(must(await bobAgain.messenger.handlers['people:list'](null)).find((p) => p.id === alice.id)).toMatchObject({ draft: null, last: { text: sent.text } });
    // The other side never sees a draft: it is not sent anywhere.
    await eventually(() => alice.added.find((m) => m.id === sent.id), 'alice receives the message');
    expect(alice.persons.every((p) => p.draft === null)).toBe(true);
  });

  it('sends a long outbox in order when the connection returns, several messages per request', async () => {
    const { alice, bob, hosting } = await hostAndJoin();
    must(await bob.messenger.handlers['relay:leave'](null));
    // More than one request holds (50 messages, or about 48 KiB of sealed bodies).
    const texts = Array.from({ length: 120 }, (_, i) => (i % 10 === 7 ? `long ${i} ${'x'.repeat(15_000)}` : `queued ${i}`));
    for (const text of texts) must(await bob.messenger.handlers['message:send']({ peer: alice.id, text }));
    must(await bob.messenger.handlers['relay:join']({ address: `127.0.0.1:${hosting.port}`, accessCode: hosting.accessCode ?? '' }));
    await eventually(async () => (await conversation(alice, bob.id)).length === texts.length, 'all arrived', 15_000);
    expect((await conversation(alice, bob.id)).map((m) => m.text)).toEqual(texts);
    await eventually(async () => (await conversation(bob, alice.id)).every((m) => m.state === 'delivered'), 'all delivered', 15_000);
  });

  it('searches history and pages a long conversation', async () => {
    const { alice, bob } = await hostAndJoin();
    for (let i = 0; i < 120; i++) must(await alice.messenger.handlers['message:send']({ peer: bob.id, text: i === 7 ? 'the quarterly budget draft' : `note ${i}` }));
    await eventually(async () => (await conversation(bob, alice.id)).length === 120, 'all arrived');
    const hits = must(await bob.messenger.handlers['search:query']({ query: 'budget' }));
    expect(hits).toHaveLength(1);
    expect(hits[0]).toMatchObject({ peerName: 'Alice', message: { text: 'the quarterly budget draft' } });
    const newest = must(await bob.messenger.handlers['conversation:page']({ peer: alice.id, limit: 50 }));
    const older = must(await bob.messenger.handlers['conversation:page']({ peer: alice.id, before: newest[0]!.n, limit: 50 }));
    expect(newest.at(-1)?.text).toBe('note 119');
    expect(older.at(-1)?.n).toBeLessThan(newest[0]!.n);
    const jump = must(await bob.messenger.handlers['conversation:from']({ peer: alice.id, n: hits[0]!.message.n, limit: 3 }));
    expect(jump[0]?.text).toBe('the quarterly budget draft');
  });

  it("stops hosting without leaving a colleague's relay joined since", async () => {
    const { alice } = await hostAndJoin(true);
    const { grace, theirs } = await joinColleague(alice);

    must(await alice.messenger.handlers['host:stop'](null));
    expect(alice.statuses.at(-1)).toMatchObject({ connection: { state: 'online', relay: `127.0.0.1:${theirs.port}`, relayName: "Grace's Parley" }, hosting: null });
    const sent = must(await alice.messenger.handlers['message:send']({ peer: grace.id, text: 'My relay is off; I am on yours.' }));
    await eventually(() => grace.added.find((m) => m.id === sent.id), 'grace receives');
    expect(must(await alice.messenger.handlers['status:get'](null)).connection).toMatchObject({ state: 'online', relay: `127.0.0.1:${theirs.port}` });
  });

  it("gives a new access code that my own connection proves, without leaving a colleague's relay joined since", async () => {
    const { alice, bob, hosting } = await hostAndJoin();
    // The window tells its own relay from a colleague's by this id.
    expect(alice.statuses.at(-1)?.connection).toMatchObject({ state: 'online', relayId: hosting.relayId });
    const renewed = must(await alice.messenger.handlers['host:newCode'](null));
    expect(renewed.accessCode).not.toBe(hosting.accessCode);
    await online(alice);
    const sent = must(await alice.messenger.handlers['message:send']({ peer: bob.id, text: 'Same relay, new code.' }));
    await eventually(() => bob.added.find((m) => m.id === sent.id), 'bob receives after the new code');
    expect(alice.statuses.at(-1)?.connection).toMatchObject({ state: 'online', relay: `127.0.0.1:${hosting.port}` });

    const { grace, theirs } = await joinColleague(alice);
    must(await alice.messenger.handlers['host:newCode'](null));
    const toGrace = must(await alice.messenger.handlers['message:send']({ peer: grace.id, text: 'Still on your relay.' }));
    await eventually(() => grace.added.find((m) => m.id === toGrace.id), 'grace receives');
    expect(alice.statuses.at(-1)?.connection).toMatchObject({ state: 'online', relay: `127.0.0.1:${theirs.port}` });
  });

  it('refuses a mistyped relay address and stays on the relay in use', async () => {
    const { alice, bob, hosting } = await hostAndJoin();
    for (const address of ['ftp://192.168.1.20:47800', 'http://[::1']) {
      expect(await bob.messenger.handlers['relay:join']({ address })).toMatchObject({ ok: false, error: { code: 'E_ADDRESS' } });
    }
    expect(must(await bob.messenger.handlers['status:get'](null)).connection).toMatchObject({ state: 'online', relay: `127.0.0.1:${hosting.port}` });
    const sent = must(await bob.messenger.handlers['message:send']({ peer: alice.id, text: 'Typo, but still here.' }));
    await eventually(() => alice.added.find((m) => m.id === sent.id), 'alice receives');
  });

  it('shows the same safety number on both sides and remembers verification', async () => {
    const { alice, bob } = await hostAndJoin();
    const a = must(await alice.messenger.handlers['peer:safety']({ peer: bob.id }));
    const b = must(await bob.messenger.handlers['peer:safety']({ peer: alice.id }));
    expect(a.safetyNumber).toBe(b.safetyNumber);
    expect(a.theirFingerprint).toBe(b.myFingerprint);
    expect(must(await alice.messenger.handlers['peer:verify']({ peer: bob.id, verified: true })).verified).toBe(true);
  });
});
