import { afterEach, describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { open, seal, type Header } from '../../main/core/crypto.ts';
import { fileSecretStore, fingerprint, loadOrCreateIdentity, safetyNumber } from '../../main/core/identity.ts';
import { exportIdentity, generateIdentity, toB64u, fromB64u } from '../../relay/identity.ts';
import { tempDir } from '../support/relay.ts';

const alice = generateIdentity();
const bob = generateIdentity();
const header: Header = { from: alice.userId, to: bob.userId, id: 'msg-00000001', sentAt: 1_700_000_000_000 };
const fromAlice = { idKey: alice.idKey, kaKeys: [alice.kaKey] };

const dirs: { remove: () => void }[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove();
});

describe('end-to-end encryption', () => {
  it('lets only the recipient read a message, and the body shows no plaintext', () => {
    const body = seal(alice, bob.kaKey, header, 'meet at the usual place 🌮');
    expect(body).not.toContain('usual place');
    expect(open(bob, fromAlice, header, body)).toEqual({ ok: true, text: 'meet at the usual place 🌮' });
    const eve = generateIdentity();
    expect(open(eve, fromAlice, header, body)).toEqual({ ok: false, reason: 'cannot-decrypt' });
  });

  it('flags a tampered ciphertext, a tampered header and a forged sender', () => {
    const body = seal(alice, bob.kaKey, header, 'hello');
    const sealed = JSON.parse(body) as { c: string; s: string };
    const flipped = fromB64u(sealed.c);
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    expect(open(bob, fromAlice, header, JSON.stringify({ ...sealed, c: toB64u(flipped) })).ok).toBe(false);
    expect(open(bob, fromAlice, { ...header, id: 'msg-00000002' }, body)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(open(bob, fromAlice, { ...header, sentAt: header.sentAt + 1 }, body)).toEqual({ ok: false, reason: 'bad-signature' });
    const mallory = generateIdentity();
    const forged = seal(mallory, bob.kaKey, header, 'I am alice');
    expect(open(bob, fromAlice, header, forged)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(open(bob, fromAlice, header, 'not json')).toEqual({ ok: false, reason: 'malformed' });
  });

  it('opens with a candidate key when the sender rotated their key-agreement key', () => {
    const rotated = { ...alice, ...generateIdentity(), idPrivate: alice.idPrivate, idKey: alice.idKey, userId: alice.userId };
    const body = seal(rotated, bob.kaKey, header, 'new key');
    expect(open(bob, { idKey: alice.idKey, kaKeys: [alice.kaKey, rotated.kaKey] }, header, body)).toEqual({ ok: true, text: 'new key' });
  });
});

describe('identity at rest', () => {
  it('is created once, kept in a 0600 file, and loads as the same user', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const store = fileSecretStore(join(dir.path, 'keys', 'identity.json'));
    const first = await loadOrCreateIdentity(store);
    const again = await loadOrCreateIdentity(store);
    expect(again.userId).toBe(first.userId);
    expect(again.kaKey).toBe(first.kaKey);
    expect(statSync(join(dir.path, 'keys', 'identity.json')).mode & 0o777).toBe(0o600);
  });

  it('refuses to overwrite a damaged identity', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const store = fileSecretStore(join(dir.path, 'identity.json'));
    await store.write('{"v":1,"idPrivate":5}');
    await expect(loadOrCreateIdentity(store)).rejects.toThrow(/damaged/);
    // Well-formed, but a key in it does not decode.
    const keys = JSON.parse(JSON.stringify({ v: 1, ...exportIdentity(generateIdentity()) })) as { idPrivate: string };
    await store.write(JSON.stringify({ ...keys, idPrivate: keys.idPrivate.replace(/[A-Za-z]{10}/, 'AAAAAAAAAA') }));
    await expect(loadOrCreateIdentity(store)).rejects.toThrow(/damaged/);
  });

  it('gives both people the same safety number, and different pairs different ones', () => {
    const carol = generateIdentity();
    expect(safetyNumber(alice.idKey, bob.idKey)).toBe(safetyNumber(bob.idKey, alice.idKey));
    expect(safetyNumber(alice.idKey, bob.idKey)).toMatch(/^(\d{5} ){11}\d{5}$/);
    expect(safetyNumber(alice.idKey, carol.idKey)).not.toBe(safetyNumber(alice.idKey, bob.idKey));
    expect(fingerprint(alice.idKey)).toMatch(/^[0-9a-f]{4}( [0-9a-f]{4}){4}$/);
  });
});
