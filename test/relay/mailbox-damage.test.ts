// A SQLite mailbox with rows that cannot be read (edited by hand, or written by a faulty older
// version): their recipient still gets everything else, and the rows are kept aside, not lost.
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { eventually, useRelay } from '../support/relay.ts';
import { readDb } from '../support/db.ts';
import { generateIdentity } from '../../relay/identity.ts';

const scope = useRelay();

describe('mailbox rows that cannot be read', () => {
  it('do not stop the others from reaching their recipient, are moved to the dead letters, and give their quota back', async () => {
    const errors: string[] = [];
    const log = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: (message: string, fields?: object) => void errors.push(`${message} ${JSON.stringify(fields)}`) };
    const relay = await scope.start({ mailbox: { maxMessages: 5, maxBytes: 100_000 }, storeOptions: { log } });
    const bobIdentity = generateIdentity();
    (await scope.join({ identity: bobIdentity, name: 'Bob' })).close(); // known, and offline
    const aliceIdentity = generateIdentity();
    const before = await scope.join({ identity: aliceIdentity, name: 'Alice' });
    const seqs: number[] = [];
    for (const body of ['first', 'secret 2', 'secret 3', 'secret 4', 'last']) {
      const sent = await before.send(bobIdentity.userId, body);
      if (!sent.ok) throw new Error(sent.error.message);
      seqs.push(sent.value.seq);
    }
    const [, wrongKind, noId, blobBody] = seqs;

    // Three rows spoiled by hand while the relay is down: a message marked as a receipt (its
    // body is no receipt), one without its id, and one whose body is not text.
    await relay.stop();
    const db = new Database(relay.dbPath);
    db.prepare("UPDATE mailbox SET kind = 'receipt' WHERE seq = ?").run(wrongKind);
    db.prepare('UPDATE mailbox SET msg_id = NULL WHERE seq = ?').run(noId);
    db.prepare("UPDATE mailbox SET body = X'00ff00ff' WHERE seq = ?").run(blobBody);
    db.close();
    await relay.restart();
    const alice = await scope.join({ identity: aliceIdentity, name: 'Alice' });

    const bob = await scope.join({ identity: bobIdentity, name: 'Bob' });
    await eventually(() => bob.messages().length >= 2, 'bob to get the two readable messages');
    expect(bob.messages().map((m) => m.body)).toEqual(['first', 'last']);
    const left = () => readDb(relay.dbPath, (d) => d.prepare('SELECT count(*) AS n FROM mailbox WHERE recipient = ?').get(bobIdentity.userId) as { n: number }).n;
    await eventually(() => left() === 0, "bob's mailbox to be empty");
    expect(readDb(relay.dbPath, (d) => d.prepare('SELECT seq FROM dead_letters ORDER BY seq').all())).toEqual([wrongKind, noId, blobBody].map((seq) => ({ seq })));
    // Told once, without what the rows hold.
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(bobIdentity.userId);
    expect(errors[0]).not.toContain('secret');

    // Nothing waits for bob any more: his mailbox takes as many as its cap again.
    bob.close();
    for (let n = 0; n < 5; n++) expect((await alice.send(bobIdentity.userId, `again ${n}`)).ok).toBe(true);
  });
});
