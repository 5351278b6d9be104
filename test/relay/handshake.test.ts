import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { io } from 'socket.io-client';
import { Server as EngineServer } from 'engine.io';
import { connectClient, useRelay } from '../support/relay.ts';
import { OPCODE, openRawWebSocket, upgradeAnswer, type RawWebSocket } from '../support/raw-ws.ts';
import { generateIdentity, signWith, authStatement, kaStatement, userIdOf } from '../../relay/identity.ts';
import { buildAuth, fetchHello } from '../../relay/handshake.ts';
import { LIMITS, type Auth } from '../../relay/protocol.ts';
import { createLogger } from '../../relay/log.ts';
import { createChallenges } from '../../relay/auth.ts';
import { memoryAddressLimits, memoryChallengeLedger, type AddressLimits } from '../../relay/state.ts';
import { createHttpHandlers } from '../../relay/http.ts';
import type { RelayStore } from '../../relay/mailbox/store.ts';

const scope = useRelay();

/**
 * Connects with a hand-made auth object and resolves with the connect_error code (or
 * 'connected', or 'closed: <reason>' when the transport closes before any answer).
 */
async function tryAuth(url: string, auth: object): Promise<string> {
  const socket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true, auth });
  try {
    return await new Promise<string>((resolve) => {
      socket.once('connect', () => resolve('connected'));
      socket.once('connect_error', (e) => resolve(e.message));
      socket.once('disconnect', (reason) => resolve(`closed: ${reason}`));
    });
  } finally {
    socket.disconnect();
  }
}

/** A raw WebSocket upgrade; resolves with the HTTP status the relay answered. */
async function upgradeStatus(port: number, headers: Record<string, string>): Promise<number> {
  return (await upgradeAnswer(port, headers)).status;
}


describe('handshake', () => {
  it('admits a user who proves their key, under the id derived from it', async () => {
    const relay = await scope.start();
    const identity = generateIdentity();
    const client = await connectClient(relay.url, { identity, name: 'Alice' });
    const me = await client.request('directory:get', { ids: [identity.userId] });
    expect(me).toMatchObject({ ok: true, value: { users: [{ id: userIdOf(identity.idKey), name: 'Alice', online: true, idKey: identity.idKey }] } });
    client.close();
  });

  it('tells a client what it needs before it joins', async () => {
    const relay = await scope.start({ accessCode: 'open sesame', name: 'Office' });
    const hello = await fetchHello(new URL(relay.url));
    expect(hello).toMatchObject({ protocol: 1, relayId: relay.relay.relayId, name: 'Office', accessCode: true });
  });

  it('refuses a signature made by another key', async () => {
    const relay = await scope.start();
    const alice = generateIdentity();
    const mallory = generateIdentity();
    const hello = await fetchHello(new URL(relay.url));
    const auth = buildAuth(alice, hello, { name: 'Alice' });
    const forged: Auth = { ...auth, sig: signWith(mallory, authStatement(hello.relayId, hello.challenge, alice.idKey, alice.kaKey)) };
    expect(await tryAuth(relay.url, forged)).toBe('E_AUTH');
  });

  it("refuses a key-agreement key that the identity key did not sign", async () => {
    const relay = await scope.start();
    const alice = generateIdentity();
    const mallory = generateIdentity();
    const hello = await fetchHello(new URL(relay.url));
    const auth = buildAuth(alice, hello, { name: 'Alice' });
    const swapped = { ...auth, kaKey: mallory.kaKey, sig: signWith(alice, authStatement(hello.relayId, hello.challenge, alice.idKey, mallory.kaKey)) };
    expect(await tryAuth(relay.url, swapped)).toBe('E_AUTH');
  });

  it("refuses a returning user's key-agreement key or signature that the identity key did not sign", async () => {
    const relay = await scope.start();
    const alice = generateIdentity();
    const mallory = generateIdentity();
    (await connectClient(relay.url, { identity: alice, name: 'Alice' })).close();
    // Alice is on record now; proofs of her identity key with keys she never signed:
    const fresh = async () => buildAuth(alice, await fetchHello(new URL(relay.url)), { name: 'Alice' });
    const hello = await fetchHello(new URL(relay.url));
    const swapped = { ...buildAuth(alice, hello, { name: 'Alice' }), kaKey: mallory.kaKey, sig: signWith(alice, authStatement(hello.relayId, hello.challenge, alice.idKey, mallory.kaKey)) };
    expect(await tryAuth(relay.url, swapped)).toBe('E_AUTH');
    const resigned = { ...(await fresh()), kaSig: signWith(mallory, kaStatement(alice.kaKey)) };
    expect(await tryAuth(relay.url, resigned)).toBe('E_AUTH');
    // What the others see of her is still what she signed, and she still gets in with it.
    const back = await connectClient(relay.url, { identity: alice, name: 'Alice' });
    expect(await back.request('directory:get', { ids: [alice.userId] })).toMatchObject({ ok: true, value: { users: [{ kaKey: alice.kaKey, kaSig: alice.kaSig }] } });
    back.close();
  });

  it('refuses a replayed proof on a new socket', async () => {
    const relay = await scope.start();
    const alice = generateIdentity();
    const auth = buildAuth(alice, await fetchHello(new URL(relay.url)), { name: 'Alice' });
    expect(await tryAuth(relay.url, auth)).toBe('connected');
    expect(await tryAuth(relay.url, auth)).toBe('E_AUTH');
  });

  it('refuses a challenge spelled another way (the unused bits of its last character set), so it is redeemed once', async () => {
    const relay = await scope.start();
    const alice = generateIdentity();
    const hello = await fetchHello(new URL(relay.url));
    // 40 bytes in 54 characters: the last character carries 4 unused bits, 16 spellings of the same bytes.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const respelled = (bits: number) => hello.challenge.slice(0, -1) + alphabet[alphabet.indexOf(hello.challenge.at(-1)!) ^ bits];
    const proofFor = (challenge: string) => buildAuth(alice, { ...hello, challenge }, { name: 'Alice' });
    expect(Buffer.from(respelled(1), 'base64url')).toEqual(Buffer.from(hello.challenge, 'base64url'));
    // Each spelling with its own valid signature: only the canonical one is admitted, and once.
    expect(await tryAuth(relay.url, proofFor(respelled(1)))).toBe('E_AUTH');
    expect(await tryAuth(relay.url, proofFor(hello.challenge))).toBe('connected');
    for (const bits of [1, 2, 4, 8, 15]) expect(await tryAuth(relay.url, proofFor(respelled(bits)))).toBe('E_AUTH');
  });

  it('refuses a stale challenge', async () => {
    let clock = Date.now();
    const relay = await scope.start({ now: () => clock });
    const auth = buildAuth(generateIdentity(), await fetchHello(new URL(relay.url)), { name: 'Alice' });
    clock += 31_000;
    expect(await tryAuth(relay.url, auth)).toBe('E_AUTH');
  });

  it('admits a challenge issued up to 30 s ahead of its clock (another node of a cluster handed out the hello)', async () => {
    let clock = Date.now() + 3_000;
    const relay = await scope.start({ now: () => clock });
    const fresh = async () => buildAuth(generateIdentity(), await fetchHello(new URL(relay.url)), { name: 'Alice' });
    // The hello from a node 3 s ahead, the socket on one whose clock is behind it: admitted.
    let auth = await fresh();
    clock -= 3_000;
    expect(await tryAuth(relay.url, auth)).toBe('connected');
    expect(await tryAuth(relay.url, auth)).toBe('E_AUTH');
    auth = await fresh();
    clock -= 30_000;
    expect(await tryAuth(relay.url, auth)).toBe('connected');
    // Further ahead than that: refused as stale.
    auth = await fresh();
    clock -= 31_000;
    expect(await tryAuth(relay.url, auth)).toBe('E_AUTH');
  });

  it('redeems a challenge once across nodes whose clocks differ by 30 s, for as long as either would take it', async () => {
    // Two nodes sharing one ledger of used challenges (a cluster's, in Redis, on Redis's clock).
    const start = Date.now();
    let real = start;
    const ledger = memoryChallengeLedger(() => real);
    const secret = randomBytes(32);
    const ahead = createChallenges(secret, () => real + 30_000, LIMITS.challengeTtlMs, ledger);
    const behind = createChallenges(secret, () => real, LIMITS.challengeTtlMs, ledger);
    // Taken by the node ahead, then tried on the one behind until it is stale there too (60 s on).
    const first = ahead.issue();
    expect(await ahead.redeem(first)).toBe('ok');
    for (const at of [0, 30_000, 59_999, 60_000]) {
      real = start + at;
      expect(await behind.redeem(first)).toBe('replayed');
    }
    real = start + 60_001;
    expect(await behind.redeem(first)).toBe('stale');
    // Taken by the node behind (30 s ahead of its clock), then tried on the one ahead until it is stale there.
    const second = ahead.issue();
    expect(await behind.redeem(second)).toBe('ok');
    for (const at of [0, 30_000]) {
      real = start + 60_001 + at;
      expect(await ahead.redeem(second)).toBe('replayed');
    }
    expect(await ahead.redeem(ahead.issue())).toBe('ok');
  });

  it('refuses a proof made for another relay', async () => {
    const relay = await scope.start();
    const other = await scope.start();
    const auth = buildAuth(generateIdentity(), await fetchHello(new URL(other.url)), { name: 'Alice' });
    expect(await tryAuth(relay.url, auth)).toBe('E_AUTH');
  });

  it('refuses malformed auth and an unsupported protocol version with typed errors', async () => {
    const relay = await scope.start();
    expect(await tryAuth(relay.url, {})).toBe('E_AUTH');
    expect(await tryAuth(relay.url, { token: 'x'.repeat(1000) })).toBe('E_AUTH');
    const auth = buildAuth(generateIdentity(), await fetchHello(new URL(relay.url)), { name: 'Alice' });
    expect(await tryAuth(relay.url, { ...auth, v: 2 })).toBe('E_VERSION');
    expect(await tryAuth(relay.url, { ...auth, name: 'Eve\u202Egnp.exe' })).toBe('E_SCHEMA');
    expect(await tryAuth(relay.url, { ...auth, name: 'x'.repeat(65) })).toBe('E_SCHEMA');
  });

  it('keeps a refusal that quotes the auth object within the 500-character error message limit', async () => {
    const relay = await scope.start();
    const auth = buildAuth(generateIdentity(), await fetchHello(new URL(relay.url)), { name: 'Alice' });
    const refusalData = (extra: object) => {
      const socket = io(relay.url, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { ...auth, ...extra } });
      return new Promise<{ code: string; message: string }>((resolve) => socket.once('connect_error', (e) => resolve((e as Error & { data: { code: string; message: string } }).data))).finally(() => socket.disconnect());
    };
    // Unknown keys are named in the message: long ones, and ones of emoji cut at either half of a pair.
    for (const key of ['k'.repeat(3000), '😀'.repeat(400), `x${'😀'.repeat(400)}`]) {
      const { code, message } = await refusalData({ [key]: 1 });
      expect(code).toBe('E_AUTH');
      expect(message).toMatch(/^handshake auth is malformed.*…$/su);
      expect(message.length).toBeLessThanOrEqual(LIMITS.errorMessageChars);
      expect(message).not.toMatch(/\p{Cs}/u); // no half of a surrogate pair left at the cut
    }
  });

  it('refuses display names with control or bidi characters (A4), and still admits a clean one', async () => {
    const relay = await scope.start();
    const auth = buildAuth(generateIdentity(), await fetchHello(new URL(relay.url)), { name: 'Alice' });
    for (const name of ['Eve\u0000', 'Eve\u001b[31m', 'E\u200Fve', 'Eve\u2067x', '']) expect(await tryAuth(relay.url, { ...auth, name }), JSON.stringify(name)).toBe('E_SCHEMA');
    expect(await tryAuth(relay.url, auth)).toBe('connected');
  });

  it('asks for the access code and refuses a wrong one', async () => {
    const relay = await scope.start({ accessCode: 'correct horse' });
    await expect(connectClient(relay.url)).rejects.toMatchObject({ message: 'E_ACCESS_CODE', data: { code: 'E_ACCESS_CODE' } });
    await expect(connectClient(relay.url, { accessCode: 'wrong horse' })).rejects.toMatchObject({ message: 'E_ACCESS_CODE' });
    const client = await connectClient(relay.url, { accessCode: 'correct horse' });
    expect(client.socket.connected).toBe(true);
    client.close();
  });

  it('slows down an address after repeated failures', async () => {
    const relay = await scope.start({ maxAuthFailures: 3 });
    for (let i = 0; i < 3; i++) expect(await tryAuth(relay.url, {})).toBe('E_AUTH');
    expect(await upgradeStatus(relay.port, {})).toBe(429);
    await expect(fetchHello(new URL(relay.url))).rejects.toThrow(/429/);
  });

  it('keeps a block for its whole minute, even when a late failure (from a connection opened before it) starts a new count', async () => {
    let t = 0;
    const limits = memoryAddressLimits({ maxConnectionsPerAddress: 20, maxFailures: 3, failureWindowMs: 60_000, blockMs: 60_000, now: () => t });
    for (; t < 3_000; t += 1_000) limits.failed('198.51.100.4');
    expect(await limits.isThrottled('198.51.100.4')).toBe(true); // blocked until 62 s
    t = 61_000; // past the window of the first failure, within the block
    limits.failed('198.51.100.4');
    expect(await limits.isThrottled('198.51.100.4')).toBe(true);
    expect(await limits.admit('198.51.100.4')).toBe('E_THROTTLED');
    t = 62_001;
    expect(await limits.isThrottled('198.51.100.4')).toBe(false);
  });

  it('refuses a browser handshake from a foreign origin before any Socket.IO packet', async () => {
    const relay = await scope.start({ allowedOrigins: ['http://localhost:5173'] });
    expect(await upgradeStatus(relay.port, { origin: 'http://evil.example' })).toBe(403);
    expect(await upgradeStatus(relay.port, { origin: 'http://localhost:5173' })).toBe(101);
    expect(await upgradeStatus(relay.port, {})).toBe(101);
  });

  it('survives a client that resets the connection while being refused', async () => {
    const relay = await scope.start({ allowedOrigins: [] });
    const { connect } = await import('node:net');
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve) => {
        const socket = connect(relay.port, '127.0.0.1', () => {
          socket.write('GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nOrigin: http://evil.example\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
          socket.resetAndDestroy();
          resolve();
        });
        socket.on('error', () => resolve());
      });
    }
    await new Promise((r) => setTimeout(r, 100));
    expect((await fetchHello(new URL(relay.url))).relayId).toBe(relay.relay.relayId);
  });

  it('closes a socket that never completes the handshake at the 5 s deadline (A8), and keeps admitted ones', async () => {
    let offset = 0;
    const relay = await scope.start({ now: () => Date.now() + offset }); // the default deadline
    const alice = generateIdentity();
    const mallory = generateIdentity();
    const staleHello = await fetchHello(new URL(relay.url));
    offset += 31_000;
    const hello = await fetchHello(new URL(relay.url));
    const auth = buildAuth(alice, hello, { name: 'Alice' });
    /** Opens a raw WebSocket, sends CONNECT with `connect` (none when undefined) and waits for the answer. */
    const open = async (connect: object | undefined, answer: string) => {
      const ws = await openRawWebSocket(relay.port);
      const opened = Date.now();
      if (connect) {
        ws.sendText(`40${JSON.stringify(connect)}`);
        await ws.nextText((t) => t.startsWith(answer), `CONNECT answered ${answer}`);
      }
      return { ws, opened };
    };
    const admitted = await open(auth, '40{"sid"');
    const refused = await Promise.all([
      open(undefined, ''), // never sends CONNECT
      open(auth, '44{"message":"E_AUTH"'), // a proof replayed on a new socket
      open(buildAuth(alice, staleHello, { name: 'Alice' }), '44{"message":"E_AUTH"'), // a challenge older than 30 s
      open({ ...buildAuth(alice, await fetchHello(new URL(relay.url)), { name: 'Alice' }), idKey: mallory.idKey }, '44{"message":"E_AUTH"'), // a proof for another key
    ]);
    const closedAfter = async ({ ws, opened }: { ws: RawWebSocket; opened: number }) => ((await ws.closedWithin(6_500)) ? Date.now() - opened : 'still open');
    const after = await Promise.all(refused.map(closedAfter));
    for (const ms of after) {
      expect(ms).toBeTypeOf('number');
      expect(ms).toBeGreaterThan(4_000); // the deadline, not an early cut: a slow client gets its 5 s
    }
    // The admitted socket outlived the deadline and still gets answers.
    const from = admitted.ws.texts.length;
    admitted.ws.sendText(`421["directory:get",{"ids":["${alice.userId}"]}]`);
    const answer = await admitted.ws.nextText((t) => t.startsWith('431['), 'an answer after the deadline', 5000, from);
    expect(JSON.parse(answer.slice(3))).toMatchObject([{ ok: true, value: { users: [{ id: alice.userId, online: true }] } }]);
    admitted.ws.destroy();
  });

  it('lets an admission still being checked at the deadline finish: admitted late, or refused and closed then', async () => {
    // The relay is slow to store users (as under heavy load): each check takes 6.5 s, past the 5 s deadline.
    let failSaves = false;
    const relay = await scope.start({
      wrapStore: (store): RelayStore => ({
        ...store,
        saveUser: async (user) => {
          await new Promise((r) => setTimeout(r, 6_500));
          if (failSaves) throw new Error('storage unreachable');
          return store.saveUser(user);
        },
      }),
    });
    const alice = generateIdentity();
    const ws = await openRawWebSocket(relay.port);
    ws.sendText(`40${JSON.stringify(buildAuth(alice, await fetchHello(new URL(relay.url)), { name: 'Alice' }))}`);
    await ws.nextText((t) => t.startsWith('40{"sid"'), 'admission after the deadline', 10_000);
    ws.sendText(`421["directory:get",{"ids":["${alice.userId}"]}]`);
    const answer = await ws.nextText((t) => t.startsWith('431['), 'an answer once admitted', 5_000);
    expect(JSON.parse(answer.slice(3))).toMatchObject([{ ok: true, value: { users: [{ id: alice.userId, online: true }] } }]);
    ws.destroy();

    // Refused after the deadline: the answer arrives, and the connection is closed with it.
    failSaves = true;
    const bob = generateIdentity();
    const late = await openRawWebSocket(relay.port);
    late.sendText(`40${JSON.stringify(buildAuth(bob, await fetchHello(new URL(relay.url)), { name: 'Bob' }))}`);
    await late.nextText((t) => t.startsWith('44{"message":"E_UNAVAILABLE"'), 'a refusal after the deadline', 10_000);
    expect(await late.closedWithin(1_000)).toBe(true);
  }, 30_000);

  it('counts a binary packet before the handshake as a failed one', async () => {
    const relay = await scope.start({ maxAuthFailures: 3 });
    for (let i = 0; i < 3; i++) {
      const ws = await openRawWebSocket(relay.port);
      ws.send({ opcode: OPCODE.binary, payload: Buffer.from('x') });
      expect(await ws.closedWithin(2000)).toBe(true);
    }
    expect(await upgradeStatus(relay.port, {})).toBe(429);
  });

  it.each([
    ['broken JSON in the CONNECT packet', '40{"v":1,'],
    ['a CONNECT whose data is not an object', '40null'],
    ['an event before CONNECT', '42["directory:get",{"ids":[]}]'],
    ['an unknown Engine.IO packet type', '9'],
  ])('counts %s as a failed handshake', async (_, frame) => {
    const lines: string[] = [];
    const relay = await scope.start({ maxAuthFailures: 3, log: createLogger({ level: 'info', write: (line) => lines.push(line) }) });
    for (let i = 0; i < 3; i++) {
      const ws = await openRawWebSocket(relay.port);
      ws.sendText(frame);
      expect(await ws.closedWithin(2000)).toBe(true);
    }
    expect(lines.filter((l) => /handshake refused .*code=E_SCHEMA/.test(l))).toHaveLength(3);
    expect(await upgradeAnswer(relay.port)).toEqual({ status: 429, code: 'E_THROTTLED' });
  });

  it('caps connections per address', async () => {
    const relay = await scope.start({ maxConnectionsPerAddress: 3 });
    const clients = await Promise.all([0, 1, 2].map(() => connectClient(relay.url)));
    expect(await upgradeStatus(relay.port, {})).toBe(429);
    clients[0]?.close();
    const again = await connectClient(relay.url).catch(async () => {
      await new Promise((r) => setTimeout(r, 200));
      return connectClient(relay.url);
    });
    expect(again.socket.connected).toBe(true);
    for (const c of [...clients, again]) c.close();
  });
});

describe('connection limits that cannot be checked', () => {
  it('refuse the upgrade (503), so the per-address count stays right for the connections after', async () => {
    // The relay's HTTP surface over the in-memory limits, whose admit() fails while `down` is
    // set, as limits kept elsewhere may. (createRelay takes a whole cluster, not just its
    // limits, so the handlers are served here, with a real Engine.IO behind them.)
    const lines: string[] = [];
    const memory = memoryAddressLimits({ maxConnectionsPerAddress: 2, maxFailures: 10, failureWindowMs: 60_000, blockMs: 60_000 });
    let down = false;
    const limits: AddressLimits = { ...memory, admit: (address) => (down ? Promise.reject(new Error('limits unreachable')) : memory.admit(address)) };
    const engine = new EngineServer({ transports: ['websocket'] });
    const handlers = createHttpHandlers({
      limits, engine, maxTcpPerAddress: 50, allowedOrigins: [], trustedProxies: new Set(),
      log: createLogger({ level: 'info', write: (line) => lines.push(line) }),
      closing: () => false,
      ownsServer: () => true,
      hello: () => {
        throw new Error('not asked in this test');
      },
    });
    const server = createServer();
    server.on('connection', handlers.onConnection);
    server.on('request', handlers.onRequest);
    server.on('upgrade', handlers.onUpgrade);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    scope.track(() => new Promise((resolve) => {
      engine.close();
      server.closeAllConnections();
      server.close(resolve);
    }));
    const { port } = server.address() as AddressInfo;

    scope.track(await openRawWebSocket(port).then((ws) => () => ws.destroy()));
    down = true;
    for (let i = 0; i < 3; i++) expect(await upgradeAnswer(port)).toEqual({ status: 503, code: 'E_UNAVAILABLE' });
    expect(lines.filter((l) => /ERROR could not check the connection limits; connection refused address=127.0.0.1/.test(l))).toHaveLength(3);
    down = false;
    await new Promise((r) => setTimeout(r, 100)); // (what those three closed has been seen)
    scope.track(await openRawWebSocket(port).then((ws) => () => ws.destroy()));
    // Two open, two allowed: the next is over the cap.
    expect(await upgradeAnswer(port)).toEqual({ status: 429, code: 'E_TOO_MANY_CONNECTIONS' });
  });
});

describe('A11 invalid auth', () => {
  it('refuses a 1 MB auth object at the transport, one just under the frame limit with E_AUTH, and admits neither', async () => {
    const lines: string[] = [];
    const relay = await scope.start({ log: createLogger({ level: 'info', write: (line) => lines.push(line) }) });
    const alice = generateIdentity();
    const padded = async (bytes: number) => ({ ...buildAuth(alice, await fetchHello(new URL(relay.url)), { name: 'Alice' }), pad: 'x'.repeat(bytes) });
    // Over the 64 KiB frame limit: the relay closes the connection before reading the CONNECT
    // packet, so there is no typed answer to give; the client sees the transport close.
    expect(await tryAuth(relay.url, await padded(1024 * 1024))).toBe('closed: transport close');
    const ws = await openRawWebSocket(relay.port);
    ws.sendText(`40${JSON.stringify(await padded(1024 * 1024))}`);
    expect(await ws.closedWithin(2_000)).toBe(true);
    // Just under it, the valid proof with an extra key is malformed auth: the typed E_AUTH.
    const underLimit = await padded(LIMITS.frameBytes - 2_000);
    expect(JSON.stringify(underLimit).length + 2).toBeLessThan(LIMITS.frameBytes);
    expect(await tryAuth(relay.url, underLimit)).toBe('E_AUTH');
    // No socket was admitted (the relay logs every one it admits), nobody joined as alice,
    // and the relay still admits others.
    expect(lines.filter((l) => / connected /.test(l))).toEqual([]);
    expect(lines.filter((l) => /handshake refused .*code=E_AUTH/.test(l))).toHaveLength(1);
    const bob = await connectClient(relay.url);
    expect(await bob.request('directory:get', { ids: [alice.userId] })).toEqual({ ok: true, value: { users: [] } });
    expect(lines.filter((l) => / connected /.test(l))).toHaveLength(1);
    bob.close();
  });

  it('counts a handshake over the frame limit as a failure: 10 of them and the address is refused', async () => {
    const lines: string[] = [];
    const relay = await scope.start({ log: createLogger({ level: 'info', write: (line) => lines.push(line) }) });
    const alice = generateIdentity();
    for (let i = 0; i < 10; i++) {
      expect(await upgradeAnswer(relay.port)).toEqual({ status: 101 });
      const ws = await openRawWebSocket(relay.port);
      ws.sendText(`40${JSON.stringify({ ...buildAuth(alice, await fetchHello(new URL(relay.url)), { name: 'Alice' }), pad: 'x'.repeat(1024 * 1024) })}`);
      expect(await ws.closedWithin(2_000)).toBe(true);
    }
    expect(lines.filter((l) => /handshake refused .*code=E_TOO_LARGE/.test(l))).toHaveLength(10);
    expect(await upgradeAnswer(relay.port)).toEqual({ status: 429, code: 'E_THROTTLED' });
    // A client that only closes or drops its connection before joining is not counted.
    const other = await scope.start();
    for (let i = 0; i < 12; i++) {
      const ws = await openRawWebSocket(other.port);
      if (i % 2 === 0) ws.send({ opcode: OPCODE.close, payload: Buffer.from([0x03, 0xe8]) });
      else ws.destroy();
      expect(await ws.closedWithin(2_000)).toBe(true);
    }
    expect(await upgradeAnswer(other.port)).toEqual({ status: 101 });
  });

  it('refuses an address for 60 s once it failed 10 handshakes within a minute, under 100 tries a minute', async () => {
    // The relay's defaults (10 failures in a 60 s window, then 60 s refused: relay/server.ts),
    // on a clock the test moves: one try every 600 ms of it is 100 tries a minute.
    let clock = Date.now();
    const lines: string[] = [];
    const relay = await scope.start({ now: () => clock, log: createLogger({ level: 'info', write: (line) => lines.push(line) }) });
    const url = relay.url;
    const port = relay.port;
    const mallory = generateIdentity();
    const alice = generateIdentity();
    const wrongKey = async () => {
      const hello = await fetchHello(new URL(url));
      const auth = buildAuth(alice, hello, { name: 'Alice' });
      return { ...auth, sig: signWith(mallory, authStatement(hello.relayId, hello.challenge, alice.idKey, alice.kaKey)) };
    };
    const outcomes: string[] = [];
    let blockedAt = 0;
    for (let i = 0; i < 100; i++) {
      // Empty, junk or forged: every kind of failed proof counts.
      const auth = i % 3 === 0 ? {} : i % 3 === 1 ? { token: 'x'.repeat(100) } : await wrongKey().catch(() => ({}));
      outcomes.push(await tryAuth(url, auth));
      if (i === 9) blockedAt = clock;
      clock += 600;
    }
    // The first 10 get their typed answer; from then on the address is refused before any
    // Socket.IO packet (the client sees only that the WebSocket was refused).
    expect(outcomes.slice(0, 10)).toEqual(Array(10).fill('E_AUTH'));
    expect(new Set(outcomes.slice(10))).toEqual(new Set(['websocket error']));
    expect(await upgradeAnswer(port)).toEqual({ status: 429, code: 'E_THROTTLED' });
    await expect(fetchHello(new URL(url))).rejects.toThrow(/429/);

    // The refusal lasts 60 s from the 10th failure, for a valid proof too; refused tries do
    // not extend it.
    clock = blockedAt + 60_000 - 1;
    expect(await upgradeAnswer(port)).toEqual({ status: 429, code: 'E_THROTTLED' });
    clock = blockedAt + 60_000;
    const ok = await connectClient(url, { identity: alice });
    expect(ok.socket.connected).toBe(true);
    ok.close();
    // Of all 102 handshakes, only that one was admitted.
    expect(lines.filter((l) => / connected /.test(l))).toHaveLength(1);
  });

  it('counts failures per minute: 9, then a 10th more than a minute after the first, is not a block', async () => {
    let clock = Date.now();
    const relay = await scope.start({ now: () => clock });
    const first = clock;
    for (let i = 0; i < 9; i++) {
      expect(await tryAuth(relay.url, {})).toBe('E_AUTH');
      clock += 1_000;
    }
    clock = first + 60_001;
    expect(await tryAuth(relay.url, {})).toBe('E_AUTH');
    expect(await upgradeAnswer(relay.port)).toEqual({ status: 101 });
    // 10 within the minute are.
    for (let i = 0; i < 9; i++) expect(await tryAuth(relay.url, {})).toBe('E_AUTH');
    expect(await upgradeAnswer(relay.port)).toEqual({ status: 429, code: 'E_THROTTLED' });
  });
});
