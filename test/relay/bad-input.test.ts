import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { seededRandom } from '../support/random.ts';
import { readDb, relayRecords } from '../support/db.ts';
import { connectClient, eventually, newMessageId, startRelay, type TestClient, type TestRelay } from '../support/relay.ts';
import { io } from 'socket.io-client';
import { generateIdentity } from '../../relay/identity.ts';
import { buildAuth, fetchHello } from '../../relay/handshake.ts';
import { LIMITS, REQUEST_NAMES, resultSchema, SendResultSchema, type RequestName } from '../../relay/protocol.ts';
import { GROUP_MS } from '../../relay/mailbox/record-batch.ts';

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

const mailboxRows = () => readDb(relay.dbPath, (db) => (db.prepare('SELECT count(*) AS n FROM mailbox').get() as { n: number }).n);
/** Rows in every table that a request could make grow: mailbox, idempotency records, directory. */
const storedRows = () => ({ ...readDb(relay.dbPath, (db) => db.prepare('SELECT (SELECT count(*) FROM mailbox) AS mailbox, (SELECT count(*) FROM users) AS users').get() as object), sent: relayRecords(relay.dbPath).length });

/** Writes a raw HTTP request; resolves with the status code answered, or 'closed' when the connection closed without one. */
function rawHttp(port: number, request: string): Promise<string> {
  return new Promise((resolve) => {
    let answer = '';
    const socket = connect({ port, host: '127.0.0.1' }, () => socket.end(request));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      if (status?.[1]) {
        resolve(status[1]);
        socket.destroy();
      }
    });
    socket.on('error', () => undefined); // reset while writing: answered below as 'closed'
    socket.on('close', () => resolve('closed'));
  });
}

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

  it('refuses display names that are too long or carry control or bidi characters (A4), keeping the old name', async () => {
    for (const name of ['x'.repeat(65), 'Eve\u202Egnp.exe', 'Eve\u2066x', 'Ann\u0000', 'Ann\u0007', 'A\u200Fnn', 'An\u2028n', '   ', 'Ann\ud800', '\udc00Ann']) {
      expect(await alice.request('profile:update', { name }), JSON.stringify(name)).toMatchObject({ ok: false, error: { code: 'E_SCHEMA' } });
    }
    const entries = await bob.request('directory:get', { ids: [alice.id] });
    expect(entries.ok && entries.value.users.map((u) => u.name)).toEqual(['Alice']);
    await expectAliveAndClean();
  });

  it('ignores garbage typing indicators and requests whose ack is not a function, changing nothing', async () => {
    const atBob = bob.typing.length;
    const atBobMessages = bob.messages().length;
    const before = mailboxRows();
    const emit = alice.socket.emit.bind(alice.socket) as unknown as (event: string, ...args: unknown[]) => void;
    for (const [, payload] of [...garbage, ['the wrong recipient type', { to: 7, typing: true }], ['an extra key', { to: bob.id, typing: true, as: bob.id }]] as const) {
      emit('typing:set', payload);
      emit('typing:set', payload, 'not a function');
      for (const event of REQUEST_NAMES) emit(event, payload, 'not a function');
    }
    // A valid payload followed by a stray argument instead of an ack is refused (silently: there is nothing to answer).
    emit('profile:update', { name: 'Mallory' }, { not: 'a function' });
    await new Promise((r) => setTimeout(r, 100));
    expect(bob.typing.slice(atBob)).toEqual([]);
    expect(bob.messages()).toHaveLength(atBobMessages);
    expect(mailboxRows()).toBe(before);
    // Nobody's directory entry changed: no profile:update garbage got through.
    const entries = await bob.request('directory:get', { ids: [alice.id, bob.id] });
    expect(entries.ok && entries.value.users.map((u) => u.name).sort()).toEqual(['Alice', 'Bob']);
    // A good indicator still travels.
    alice.socket.emit('typing:set', { to: bob.id, typing: true });
    await eventually(() => bob.typing.slice(atBob).some((t) => t.from === alice.id && t.typing), 'a valid typing indicator');
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

  it('refuses an extra key in every request, however valid the rest (A1), and takes the same payload without it', async () => {
    const payloads = (): Record<RequestName, Record<string, unknown>> => ({
      'message:send': valid(),
      'message:send-many': { messages: [valid()] },
      'message:read': { peer: bob.id, ids: [newMessageId()] },
      'directory:page': { limit: 10 },
      'directory:get': { ids: [bob.id] },
      'directory:changes': { since: 0 },
      'presence:watch': { ids: [bob.id] },
      'profile:update': { name: 'Alice' },
    });
    const atBob = bob.messages().length;
    const extra = payloads();
    for (const event of REQUEST_NAMES) {
      expect(await alice.raw(event, { ...extra[event], as: bob.id }), event).toMatchObject({ ok: false, error: { code: 'E_SCHEMA', message: expect.stringMatching(/unrecognized/i) } });
    }
    // Inside a batch too: the whole request is refused.
    expect(await alice.raw('message:send-many', { messages: [valid(), { ...valid(), from: bob.id }] })).toMatchObject({ ok: false, error: { code: 'E_SCHEMA' } });
    await new Promise((r) => setTimeout(r, 50));
    expect(bob.messages()).toHaveLength(atBob);
    const plain = payloads();
    for (const event of REQUEST_NAMES) expect(await alice.raw(event, plain[event]), event).toMatchObject({ ok: true });
    await eventually(() => bob.messages().length === atBob + 2, 'the two valid sends');
  });

  it('does not quote a huge field name back in full: the error stays within what clients accept', async () => {
    const key = `k${'x'.repeat(40_000)}`;
    const result = await alice.raw('message:send', { ...valid(), [key]: 1 });
    expect(result).toMatchObject({ ok: false, error: { code: 'E_SCHEMA', message: expect.stringMatching(/^payload: Unrecognized key: "kxxx.*…$/) } });
    // The client's own check of answers (relay/protocol.ts) takes it, so the app shows it.
    expect(resultSchema(SendResultSchema).safeParse(result).success).toBe(true);
    await expectAliveAndClean();
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

  it('refuses a body with a lone surrogate, which storage would hand back as U+FFFD, and delivers an emoji as sent', async () => {
    const atBob = bob.messages().length;
    // A lone high or low surrogate, one at the end, a pair in the wrong order.
    for (const body of ['\ud800', 'a\udc00b', 'smile \ud83d', '\ude00\ud83d']) {
      expect(await alice.raw('message:send', { ...valid(), body })).toMatchObject({ ok: false, error: { code: 'E_SCHEMA', message: expect.stringMatching(/^body: .*surrogate/) } });
    }
    const many = { messages: [valid(), { ...valid(), body: 'x\udfff' }] };
    expect(await alice.raw('message:send-many', many)).toMatchObject({ ok: false, error: { code: 'E_SCHEMA', message: expect.stringMatching(/^messages\.1\.body:/) } });
    const id = newMessageId();
    expect(await alice.send(bob.id, 'smile \ud83d\ude00', id)).toMatchObject({ ok: true });
    expect((await eventually(() => bob.messages().find((m) => m.id === id), 'the emoji')).body).toBe('smile 😀');
    expect(bob.messages()).toHaveLength(atBob + 1);
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

  it('refuses a handshake with 2,000 headers (CVE-2024-37890) and a 1 MB header, and keeps serving', async () => {
    // The WebSocket headers come after 2,000 others, so a server that keeps only the first
    // 2,000 never sees them: the ws crash of CVE-2024-37890 was on exactly that request.
    // (Short names: 12 KiB in all, under the 16 KiB header limit.)
    const junk = Array.from({ length: 2_000 }, (_, i) => `${i.toString(36)}:`).join('\r\n');
    const upgrade = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==';
    const path = '/socket.io/?EIO=4&transport=websocket';
    // (Node's HTTP parser answers 431 to it before ws sees it; a server that let it through
    // must answer 400, not crash.)
    expect(await rawHttp(relay.port, `GET ${path} HTTP/1.1\r\nHost: x\r\n${junk}\r\n${upgrade}\r\n\r\n`)).toMatch(/^(400|431|closed)/);
    const huge = `X-Big: ${'a'.repeat(1024 * 1024)}`;
    expect(await rawHttp(relay.port, `GET ${path} HTTP/1.1\r\nHost: x\r\n${upgrade}\r\n${huge}\r\n\r\n`)).toMatch(/^(431|closed)/);
    expect(await rawHttp(relay.port, `GET /parley/hello HTTP/1.1\r\nHost: x\r\n${huge}\r\n\r\n`)).toMatch(/^(431|closed)/);
    await expectAliveAndClean();
  });

  it('refuses a send to an id never seen, and random ids do not grow storage (A5)', async () => {
    // The records of earlier tests' sends reach the record file within GROUP_MS of the send, once
    // their messages are written or taken (write-behind's lazy flush, 50 ms): let them land first.
    const landed = GROUP_MS + 200;
    await new Promise((r) => setTimeout(r, landed));
    const before = storedRows();
    for (let i = 0; i < 20; i++) {
      const stranger = generateIdentity().userId;
      expect(await alice.send(stranger, 'anyone there?')).toMatchObject({ ok: false, error: { code: 'E_UNKNOWN_RECIPIENT' } });
      // Looking a stranger up, or watching one, stores nothing either.
      expect(await alice.request('directory:get', { ids: [stranger] })).toMatchObject({ ok: true, value: { users: [] } });
      expect(await alice.request('presence:watch', { ids: [stranger] })).toMatchObject({ ok: true });
    }
    expect(await alice.request('message:read', { peer: generateIdentity().userId, ids: ['abcdefgh'] })).toMatchObject({ ok: false, error: { code: 'E_UNKNOWN_RECIPIENT' } });
    await new Promise((r) => setTimeout(r, landed));
    expect(storedRows()).toEqual(before);
  });

  it('answers 1,000 unknown event names each with E_UNKNOWN_EVENT, ignores them without an ack, and tolerates requests without an ack', async () => {
    const names = unknownEventNames(1_000);
    expect(names).toHaveLength(1_000);
    // Each with an ack, carrying varied payloads: every single one is answered, and answered so.
    const payloads: unknown[][] = [[], [null], [{ to: bob.id, typing: true }], [valid()], ['a', 2, { three: 3 }]];
    const answers = await Promise.all(names.map((name, i) => alice.raw(name, ...(payloads[i % payloads.length] ?? [])).catch((error: unknown) => `no answer: ${String(error)}`)));
    const wrong = answers.flatMap((answer, i) => (isUnknownEvent(answer) ? [] : [`${JSON.stringify(names[i])}: ${JSON.stringify(answer)}`]));
    expect(wrong).toEqual([]);
    // Without an ack: counted against the budget and ignored.
    for (const name of names) (alice.socket.emit as (ev: string, p: unknown) => void)(name, { to: bob.id, body: 'x' });
    expect(await alice.raw('admin:shutdown', {})).toMatchObject({ ok: false, error: { code: 'E_UNKNOWN_EVENT' } });
    // Requests whose ack is missing or not a function are processed or refused, never fatal.
    const id = newMessageId();
    alice.socket.emit('message:send', { id, to: bob.id, body: 'no ack', sentAt: Date.now() } as never, 'not a function' as never);
    (alice.socket.emit as (ev: string, p: unknown) => void)('message:send', { id: newMessageId(), to: bob.id, body: 'no ack at all', sentAt: Date.now() });
    await eventually(() => bob.messages().some((m) => m.body === 'no ack at all'), 'ack-less send delivered');
    expect(alice.socket.connected).toBe(true);
    expect(await alice.request('directory:get', { ids: [alice.id] })).toMatchObject({ ok: true, value: { users: [{ id: alice.id, online: true }] } });
    await expectAliveAndClean();
  });

  it('refuses connects to /admin and /x with connect_error, even with a valid proof, and leaves no namespace behind', async () => {
    for (const namespace of ['/admin', '/x']) {
      const auth = buildAuth(generateIdentity(), await fetchHello(new URL(relay.url)), { name: 'Mallory' });
      expect(await connectOutcome(namespace, auth)).toBe('Invalid namespace');
      // Had that attempt created the namespace, this one would be let in (the relay checks
      // handshakes on "/" only) or refused for some other reason: it is refused as before.
      expect(await connectOutcome(namespace, {})).toBe('Invalid namespace');
    }
    // "/" is still the relay's one namespace: a fresh client joins and messages flow.
    await expectAliveAndClean();
  });
});

/** Connects a socket.io-client to `namespace` and resolves with 'connected' or the connect_error message. */
async function connectOutcome(namespace: string, auth: object): Promise<string> {
  const socket = io(`${relay.url}${namespace}`, { transports: ['websocket'], reconnection: false, forceNew: true, auth });
  try {
    return await new Promise<string>((resolve) => {
      socket.once('connect', () => resolve('connected'));
      socket.once('connect_error', (error) => resolve(error.message));
    });
  } finally {
    socket.disconnect();
  }
}

const isUnknownEvent = (answer: unknown) => {
  const a = answer as { ok?: unknown; error?: { code?: unknown; message?: unknown } } | null;
  return a?.ok === false && a.error?.code === 'E_UNKNOWN_EVENT' && typeof a.error.message === 'string';
};

/**
 * `count` distinct event names that are not in the protocol: near misses of real ones, names
 * that mean something to JavaScript objects or to the other direction, then random strings
 * (a fixed seed: the same run every time). Socket.IO's reserved names are left out: the
 * client library refuses to send them, and the relay's parser closes a connection that does.
 */
function unknownEventNames(count: number): string[] {
  const reserved = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);
  const known = new Set<string>([...REQUEST_NAMES, 'typing:set']);
  const names = new Set<string>();
  const add = (name: string) => {
    if (!reserved.has(name) && !known.has(name)) names.add(name);
  };
  [
    '', ' ', 'admin:shutdown', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'then', 'emit', 'on', 'onAny', 'error',
    'message:deliver', 'presence:update', 'directory:changed', 'typing:update', 'MESSAGE:SEND', 'message:send ', ' message:send', 'message:sen', 'message:send\u0000',
    'message:send-many-more', 'message:s\u0435nd', 'typing:set!', 'directory:*', '*', 'message:send\u202e', '👀:send', 'x'.repeat(1_000),
  ].forEach(add);
  const random = seededRandom(0x0a3a3a3a);
  const alphabet = [...'abcdefghijklmnopqrstuvwxyz:-_./ 0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ{}[]"\\\'é€😀\u0000\u0007\u200b\u202e\ufeff'];
  while (names.size < count) {
    const length = 1 + Math.floor(random() * 40);
    add(Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join(''));
  }
  return [...names];
}
