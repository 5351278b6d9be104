// RELIABILITY.md B7 offline-store-forward: five people send a thousand messages to someone
// offline while the relay restarts under them; the recipient gets all of them, each
// conversation in order, and the relay lets go of a message only once it is acknowledged.
import { describe, expect, it } from 'vitest';
import { connectClient, eventually, useRelay } from '../support/relay.ts';
import { readDb } from '../support/db.ts';
import { FailoverClient } from '../support/failover.ts';
import { generateIdentity } from '../../relay/identity.ts';

const scope = useRelay();

const SENDERS = 5;
const EACH = 200;

/** Messages for `recipient` that the relay's mailbox still holds, read from its file. */
function held(dbPath: string, recipient: string): number {
  return readDb(dbPath, (db) => (db.prepare("SELECT count(*) AS n FROM mailbox WHERE recipient = ? AND kind = 'message'").get(recipient) as { n: number }).n);
}

describe('store and forward to someone offline', () => {
  it('delivers 5 × 200 messages sent across a relay restart, each conversation in order, removed only once acknowledged', { timeout: 60_000 }, async () => {
    const r = await scope.start();
    const bobIdentity = generateIdentity();
    const bobOnce = await connectClient(r.url, { identity: bobIdentity, name: 'Bob' });
    bobOnce.close(); // Bob is known to the directory, and offline from now on

    const senders = Array.from({ length: SENDERS }, (_, i) => scope.track(new FailoverClient([r.url], { name: `Sender ${i}` })));
    await Promise.all(senders.map((s) => s.connect()));
    for (let n = 0; n < EACH; n++) for (const s of senders) s.send(bobIdentity.userId, `${s.id} ${n}`);

    // Restart the relay while the outboxes are still draining.
    await eventually(() => senders.reduce((sum, s) => sum + s.acked.size, 0) >= (SENDERS * EACH) / 3, 'a third accepted', 20_000);
    const before = senders.reduce((sum, s) => sum + s.acked.size, 0);
    await r.restart();
    await eventually(() => senders.every((s) => s.pending === 0), 'every outbox drained after the restart', 30_000);
    expect(before).toBeLessThan(SENDERS * EACH); // the restart really fell mid-stream
    expect(held(r.dbPath, bobIdentity.userId)).toBe(SENDERS * EACH);

    // Bob comes back but does not acknowledge yet: the relay still holds every message.
    let acknowledge = false;
    const bob = await scope.join({ identity: bobIdentity, name: 'Bob', onDeliver: () => (acknowledge ? { ok: true } : { ok: false, retryInMs: 200 }) });
    await eventually(() => bob.messages().length > 0, 'a first delivery', 10_000);
    expect(held(r.dbPath, bobIdentity.userId)).toBe(SENDERS * EACH);

    acknowledge = true;
    await eventually(() => held(r.dbPath, bobIdentity.userId) === 0, 'the mailbox emptied by acknowledgements', 30_000);
    // First arrival of each message, as the app stores it (redeliveries of refused batches aside).
    const seen = new Set<string>();
    const stored = bob.messages().filter((m) => !seen.has(`${m.from} ${m.id}`) && seen.add(`${m.from} ${m.id}`));
    expect(stored).toHaveLength(SENDERS * EACH);
    for (const s of senders) {
      expect(stored.filter((m) => m.from === s.id).map((m) => m.id)).toEqual(s.sent.get(bobIdentity.userId));
    }
    // One seq per message, and the same seq each sender was answered with.
    for (const m of stored) expect(senders.find((s) => s.id === m.from)?.acked.get(m.id)).toBe(m.seq);
  });
});
