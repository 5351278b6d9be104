// How long a message may be is the relay's limit on its sealed body, in bytes: the window's
// cap in characters is only a first one. A message over it is refused when it is written, and
// one stored over it (by an older version) fails, instead of closing the connection for good.
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { openHistory } from '../../main/core/history/index.ts';
import { ARGUMENTS } from '../../main/ipc.ts';
import { LIMITS } from '../../relay/protocol.ts';
import { seal } from '../../main/core/crypto.ts';
import { TEXT_LIMIT } from '../../main/ipc.ts';
import { BODY_BYTES, roomLeft, sealedBytes } from '../../renderer/src/lib/text-room.ts';
import { eventually, useRelay } from '../support/relay.ts';
import { conversation, knows, must, online, startCore, type TestCore } from '../support/messenger.ts';

const scope = useRelay();

async function joinRelay(core: TestCore, port: number): Promise<void> {
  must(await core.messenger.handlers['relay:join']({ address: `127.0.0.1:${port}` }));
  await online(core);
}

async function pair() {
  const relay = await scope.start();
  const alice = scope.track(await startCore({ name: 'Alice' }));
  const bob = scope.track(await startCore({ name: 'Bob' }));
  await Promise.all([joinRelay(alice, relay.port), joinRelay(bob, relay.port)]);
  await knows(alice, bob.id);
  return { relay, alice, bob };
}

const states = (core: TestCore) => core.statuses.map((s) => s.connection.state);

describe('a message too long for the relay', () => {
  it('is refused when written, in words, with nothing stored, and the next message goes through', async () => {
    const { alice, bob } = await pair();
    const shown = alice.statuses.length;
    // Within the window's cap in characters, over the relay's in bytes once sealed.
    for (const text of ['ж'.repeat(13_000), '😀'.repeat(8_192), '中'.repeat(16_384)]) {
      expect(ARGUMENTS['message:send'].safeParse({ peer: bob.id, text }).success).toBe(true);
      expect(await alice.messenger.handlers['message:send']({ peer: bob.id, text })).toEqual({
        ok: false,
        error: { code: 'E_TOO_LARGE', message: expect.stringMatching(/^This message is too long to send: encrypted, it takes \d+ KB, and the limit is 32 KB/) },
      });
    }
    expect(alice.added).toEqual([]);
    expect(await conversation(alice, bob.id)).toEqual([]);

    const next = must(await alice.messenger.handlers['message:send']({ peer: bob.id, text: 'In short: yes.' }));
    await eventually(() => bob.added.find((m) => m.id === next.id), 'the next message arrives');
    await eventually(async () => (await conversation(alice, bob.id)).at(-1)?.state === 'delivered', 'delivered');
    expect((await conversation(bob, alice.id)).map((m) => m.text)).toEqual(['In short: yes.']);
    expect(states(alice).slice(shown)).not.toContain('reconnecting');
  });

  it("is where the window says it is: the window's count of the sealed size is the sealed size, and what it says fits is taken", async () => {
    const { alice, bob } = await pair();
    const me = alice.messenger.identity;
    const bobKey = bob.messenger.identity.kaKey;
    for (const text of ['', 'a', 'ab', 'abc', 'hello "quoted" \\ back\nslash\t\u0001', 'ж'.repeat(12_000), '中'.repeat(9_000), '😀'.repeat(5_000), 'a'.repeat(16_384)]) {
      const sealed = seal(me, bobKey, { from: me.userId, to: bob.id, id: 'x'.repeat(22), sentAt: 1 }, text);
      expect(sealedBytes(text), JSON.stringify(text.slice(0, 12))).toBe(Buffer.byteLength(sealed));
    }
    expect(BODY_BYTES).toBe(LIMITS.bodyBytes);
    // The longest Cyrillic message that fits: the window lets it through, and main sends it;
    // one letter more the window calls one too many, and main refuses it.
    let longest = 'ж'.repeat(12_000);
    while (sealedBytes(`${longest}ж`) <= BODY_BYTES) longest += 'ж';
    expect(roomLeft(longest, TEXT_LIMIT)).toBeGreaterThanOrEqual(0);
    expect(roomLeft(`${longest}ж`, TEXT_LIMIT)).toBe(-1);
    expect(roomLeft('ж'.repeat(15_500), TEXT_LIMIT)).toBe(longest.length - 15_500);
    must(await alice.messenger.handlers['message:send']({ peer: bob.id, text: longest }));
    expect(await alice.messenger.handlers['message:send']({ peer: bob.id, text: `${longest}ж` })).toMatchObject({ ok: false, error: { code: 'E_TOO_LARGE' } });
  });

  it('sends the longest messages that fit, queued together, in order and on one connection', async () => {
    const { relay, alice, bob } = await pair();
    must(await alice.messenger.handlers['relay:leave'](null));
    // Each just under the limit once sealed (about 24,400 bytes of text): one per request.
    const texts = ['a'.repeat(16_384), 'ж'.repeat(12_000), '中'.repeat(8_000), 'ж'.repeat(12_000), 'and a short one'];
    for (const text of texts) must(await alice.messenger.handlers['message:send']({ peer: bob.id, text }));
    const shown = alice.statuses.length;
    await joinRelay(alice, relay.port);
    await eventually(async () => (await conversation(bob, alice.id)).length === texts.length, 'all arrived', 10_000);
    expect((await conversation(bob, alice.id)).map((m) => m.text)).toEqual(texts);
    await eventually(async () => (await conversation(alice, bob.id)).every((m) => m.state === 'delivered'), 'all delivered');
    expect(states(alice).slice(shown).filter((s) => s === 'online')).toHaveLength(1);
  });

  it('stored by an older version, fails as too long instead of holding back the connection and every later message', async () => {
    const { relay, alice, bob } = await pair();
    await scope.close(alice);
    // As an older version stored it: 16,384 CJK characters sealed, over the relay's frame limit.
    const old = openHistory(join(alice.dataDir, 'history.db'));
    old.addOutgoing({ id: randomBytes(16).toString('base64url'), peer: bob.id, text: '中'.repeat(16_384) }, () => 'A'.repeat(LIMITS.frameBytes + 1));
    old.close();

    const again = scope.track(await startCore({ dataDir: alice.dataDir }));
    await joinRelay(again, relay.port);
    const next = must(await again.messenger.handlers['message:send']({ peer: bob.id, text: 'Did my long note reach you?' }));
    await eventually(() => bob.added.find((m) => m.id === next.id), 'the later message arrives', 10_000);
    const [stored, later] = await conversation(again, bob.id);
    expect(stored).toMatchObject({ state: 'failed', error: 'The message is too long.' });
    expect(later).toMatchObject({ text: 'Did my long note reach you?' });
    expect((await conversation(bob, again.id)).map((m) => m.text)).toEqual(['Did my long note reach you?']);

    // Retried, it fails again at once: the answer (which the window applies after the events
    // that came before it) says so too, rather than the "queued" it briefly was.
    const shown = again.updated.length;
    const answer = must(await again.messenger.handlers['message:retry']({ n: stored!.n }));
    expect(again.updated.slice(shown).map((m) => m.state)).toEqual(['queued', 'failed']);
    expect(answer).toMatchObject({ n: stored!.n, state: 'failed', error: 'The message is too long.' });
  });
});
