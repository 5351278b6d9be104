import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { connectClient, eventually, newMessageId, startRelay, type TestClient, type TestRelay } from '../support/relay.ts';
import { generateIdentity } from '../../relay/identity.ts';
import { LIMITS, REQUEST_NAMES } from '../../relay/protocol.ts';

let relay: TestRelay;
let alice: TestClient;
let bob: TestClient;

beforeAll(async () => {
  relay = await startRelay({ rate: { capacity: 10_000, perSecond: 10_000, abuseMs: 10_000 } });
  alice = await connectClient(relay.url, { name: 'Alice' });
  bob = await connectClient(relay.url, { name: 'Bob' });
});
afterAll(async () => {
  alice.close();
  bob.close();
  await relay.stop();
});

const mailboxRows = () => {
  const db = new Database(relay.dbPath, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM mailbox').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

const deep = (depth: number): unknown => (depth === 0 ? 'x' : { a: deep(depth - 1) });
const valid = () => ({ id: newMessageId(), to: bob.id, body: 'hi', sentAt: Date.now() });

/** Payloads that are wrong for every request. */
const garbage: [string, unknown][] = [
  ['null', null],
  ['a number', 42],
  ['a string', 'message'],
  ['an array', [1, 2, 3]],
  ['an empty object', {}],
  ['50-deep nesting', deep(50)],
  ['a __proto__ key', JSON.parse('{"__proto__": {"polluted": true}}')],
  ['a constructor key', { constructor: { prototype: { polluted: true } } }],
];

async function expectAliveAndClean(): Promise<void> {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  const fresh = await connectClient(relay.url);
  const id = newMessageId();
  expect(await fresh.send(bob.id, 'still serving', id)).toMatchObject({ ok: true });
  await eventually(() => bob.messages().some((m) => m.id === id), 'delivery after bad input');
  fresh.close();
}

describe('bad input at the relay', () => {
  it.each(REQUEST_NAMES)('%s answers garbage with E_SCHEMA and stores nothing', async (event) => {
    const before = mailboxRows();
    const atBob = bob.messages().length;
    for (const [what, payload] of garbage) {
      if (event === 'directory:page' && what === 'an empty object') continue; // every field of a page request is optional
      expect(await alice.raw(event, payload)).toMatchObject({ ok: false, error: { code: 'E_SCHEMA' } });
    }
    expect(await alice.raw(event, valid(), 'second payload')).toMatchObject({ ok: false, error: { code: 'E_SCHEMA' } });
    await new Promise((r) => setTimeout(r, 50));
    // Bob is online: what the relay took would reach him without touching its disk.
    expect(bob.messages()).toHaveLength(atBob);
    expect(mailboxRows()).toBe(before);
    await expectAliveAndClean();
  });

  it('refuses wrong types, missing and extra keys in a send, naming the field', async () => {
    const cases: [object, RegExp][] = [
      [{ ...valid(), id: 12345678 }, /^id:/],
      [{ ...valid(), to: 'bob' }, /^to:/],
      [{ ...valid(), body: { text: 'hi' } }, /^body:/],
      [{ ...valid(), sentAt: 'yesterday' }, /^sentAt:/],
      [(({ body: _b, ...rest }) => rest)(valid()), /^body:/],
      [{ ...valid(), from: alice.id, admin: true }, /unrecognized|Unrecognized/],
    ];
    for (const [payload, message] of cases) {
      const result = await alice.raw('message:send', payload);
      expect(result).toMatchObject({ ok: false, error: { code: 'E_SCHEMA', message: expect.stringMatching(message) } });
    }
  });

  it('refuses a malformed message:send-many as a whole, naming the message and field, and stores none of it', async () => {
    const before = mailboxRows();
    const atBob = bob.messages().length;
    const cases: [unknown, RegExp][] = [
      [[valid(), valid()], /^payload:/],
      [{ messages: [] }, /^messages:/],
      [{ messages: valid() }, /^messages:/],
      [{ messages: Array.from({ length: LIMITS.sendBatch + 1 }, valid) }, /^messages:/],
      [{ messages: [valid(), { ...valid(), to: 'bob' }] }, /^messages\.1\.to:/],
      [{ messages: [valid(), { ...valid(), from: bob.id }] }, /unrecognized|Unrecognized/],
      [{ messages: [valid()], from: bob.id }, /unrecognized|Unrecognized/],
      [{ messages: [valid(), null] }, /^messages\.1:/],
    ];
    for (const [payload, message] of cases) {
      expect(await alice.raw('message:send-many', payload)).toMatchObject({ ok: false, error: { code: 'E_SCHEMA', message: expect.stringMatching(message) } });
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(bob.messages()).toHaveLength(atBob);
    expect(mailboxRows()).toBe(before);
    await expectAliveAndClean();
  });

  it('does not let a sender pose as someone else', async () => {
    const id = newMessageId();
    const forged = await alice.raw('message:send', { ...valid(), id, from: bob.id, name: 'Bob' });
    expect(forged).toMatchObject({ ok: false, error: { code: 'E_SCHEMA' } });
    expect(await alice.send(bob.id, 'really alice', id)).toMatchObject({ ok: true });
    const got = await eventually(() => bob.messages().find((m) => m.id === id), 'delivery');
    expect(got.from).toBe(alice.id);
  });

  it('refuses an oversized body with E_TOO_LARGE, and closes a socket that sends an oversized frame', async () => {
    const big = { ...valid(), body: 'x'.repeat(LIMITS.bodyBytes + 1) };
    expect(await alice.raw('message:send', big)).toMatchObject({ ok: false, error: { code: 'E_TOO_LARGE' } });
    const wide = { ...valid(), body: 'é'.repeat(LIMITS.bodyBytes / 2 + 1) }; // fits the frame, not the byte limit
    expect(await alice.raw('message:send', wide)).toMatchObject({ ok: false, error: { code: 'E_TOO_LARGE' } });

    const victim = await connectClient(relay.url);
    const closed = new Promise<string>((resolve) => victim.socket.once('disconnect', (reason) => resolve(reason)));
    victim.socket.emit('message:send', { ...valid(), body: 'x'.repeat(LIMITS.frameBytes + 1) }, () => undefined);
    expect(await closed).toMatch(/transport close|transport error/);
    await expectAliveAndClean();
  });

  it('refuses a send to an id never seen, and random ids do not grow storage', async () => {
    const before = mailboxRows();
    for (let i = 0; i < 20; i++) {
      const stranger = generateIdentity().userId;
      expect(await alice.send(stranger, 'anyone there?')).toMatchObject({ ok: false, error: { code: 'E_UNKNOWN_RECIPIENT' } });
    }
    expect(await alice.request('message:read', { peer: generateIdentity().userId, ids: ['abcdefgh'] })).toMatchObject({ ok: false, error: { code: 'E_UNKNOWN_RECIPIENT' } });
    await new Promise((r) => setTimeout(r, 50));
    expect(mailboxRows()).toBe(before);
  });

  it('answers unknown events with E_UNKNOWN_EVENT and tolerates requests without an ack', async () => {
    expect(await alice.raw('admin:shutdown', {})).toMatchObject({ ok: false, error: { code: 'E_UNKNOWN_EVENT' } });
    for (let i = 0; i < 200; i++) alice.socket.emit(`random:${i}` as 'typing:set', { to: bob.id, typing: true });
    // Requests whose ack is missing or not a function are processed or refused, never fatal.
    const id = newMessageId();
    alice.socket.emit('message:send', { id, to: bob.id, body: 'no ack', sentAt: Date.now() } as never, 'not a function' as never);
    (alice.socket.emit as (ev: string, p: unknown) => void)('message:send', { id: newMessageId(), to: bob.id, body: 'no ack at all', sentAt: Date.now() });
    await eventually(() => bob.messages().some((m) => m.body === 'no ack at all'), 'ack-less send delivered');
    expect(alice.socket.connected).toBe(true);
    await expectAliveAndClean();
  });

  it('refuses connects to other namespaces', async () => {
    const { io } = await import('socket.io-client');
    const hello = await fetch(`${relay.url}/parley/hello`).then((r) => r.json() as Promise<{ challenge: string }>);
    expect(hello.challenge).toBeTruthy();
    const socket = io(`${relay.url}/admin`, { transports: ['websocket'], reconnection: false, forceNew: true });
    const error = await new Promise<Error>((resolve) => socket.once('connect_error', resolve));
    socket.disconnect();
    expect(error.message).toMatch(/Invalid namespace/);
  });
});
