// What the messenger believes, and what it flags: forged and tampered messages, key
// changes, look-alike names.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { eventually, newMessageId, useRelay } from '../support/relay.ts';
import { knows, must, online, startCore, type TestCore } from '../support/messenger.ts';
import { readDb } from '../support/db.ts';
import { identityFromKeys, importIdentity } from '../../relay/identity.ts';

const scope = useRelay();

/** Starts the test's relay, and these people on it, each knowing the others. */
async function people(names: string[]): Promise<TestCore[]> {
  const { url } = await scope.start();
  const started = await Promise.all(names.map((name) => startCore({ name })));
  for (const c of started) scope.track(c);
  for (const c of started) must(await c.messenger.handlers['relay:join']({ address: url }));
  await Promise.all(started.map(online));
  for (const a of started) for (const b of started) if (a !== b) await knows(a, b.id);
  return started;
}

describe('trust', () => {
  it('flags a sealed body replayed under another sender, and a damaged one, and never shows them as genuine', async () => {
    const [alice, bob] = await people(['Alice', 'Bob']);
    must(await bob!.messenger.handlers['relay:leave'](null));
    must(await alice!.messenger.handlers['message:send']({ peer: bob!.id, text: 'from the real alice' }));
    await eventually(() => alice!.updated.some((m) => m.state === 'sent'), 'stored at relay');
    const captured = readDb(scope.relay.dbPath, (db) => (db.prepare('SELECT body FROM mailbox').get() as { body: string }).body);

    const mallory = await scope.join({ name: 'Mallory' });
    expect(await mallory.send(bob!.id, captured, newMessageId())).toMatchObject({ ok: true });
    expect(await mallory.send(bob!.id, '{"v":1,"garbage":true}', newMessageId())).toMatchObject({ ok: true });

    must(await bob!.messenger.handlers['relay:join']({ address: scope.relay.url }));
    await eventually(() => bob!.added.length === 3, 'three messages stored');
    const fromMallory = bob!.added.filter((m) => m.peer === mallory.id);
    expect(fromMallory).toHaveLength(2);
    for (const m of fromMallory) {
      expect(m.flagged).toBe(true);
      expect(m.text).toBe('');
    }
    expect(fromMallory.map((m) => m.error).sort()).toEqual(['This message arrived damaged and cannot be shown.', 'This message is not signed by its sender: it may be forged.']);
    const genuine = bob!.added.find((m) => m.peer === alice!.id);
    expect(genuine).toMatchObject({ flagged: false, text: 'from the real alice' });
    const malloryPerson = must(await bob!.messenger.handlers['people:list'](null)).find((p) => p.id === mallory.id);
    expect(malloryPerson?.last).toMatchObject({ flagged: true, text: '' });
  });

  it('warns when a peer’s key-agreement key changes, until the user accepts it', async () => {
    const [alice, bob] = await people(['Alice', 'Bob']);
    const bobSecret = JSON.parse(readFileSync(join(bob!.dataDir, 'identity.json'), 'utf8')) as { idPrivate: string; kaPrivate: string };
    const rotated = identityFromKeys(importIdentity(bobSecret).idPrivate, generateKeyPairSync('x25519').privateKey);
    expect(rotated.userId).toBe(bob!.id);
    await scope.join({ identity: rotated, name: 'Bob' });
    const warned = await eventually(() => alice!.persons.find((p) => p.id === bob!.id && p.keyChanged), 'key change warning');
    expect(warned.verified).toBe(false);
    const accepted = must(await alice!.messenger.handlers['peer:acceptKey']({ peer: bob!.id }));
    expect(accepted.keyChanged).toBe(false);
  });

  it('marks two people who share a display name', async () => {
    const [alice, bob] = await people(['Alice', 'Bob']);
    await scope.join({ name: 'bob' });
    await eventually(async () => must(await alice!.messenger.handlers['people:list'](null)).filter((p) => p.nameClash).length === 2, 'both bobs marked');
    const list = must(await alice!.messenger.handlers['people:list'](null));
    expect(list.find((p) => p.id === bob!.id)?.nameClash).toBe(true);
  });
});
