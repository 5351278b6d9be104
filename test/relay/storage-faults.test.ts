// B8 disk full and B9 database busy: the relay's SQLite file refuses writes for a while.
// A send is acknowledged ok only once it is stored; meanwhile senders get a typed, retryable
// error, the relay stays up and answers other requests, and once storage is back the
// senders' retries (same ids) are delivered exactly once, in order.
import { beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { eventually, newMessageId, tempDir, useRelay } from '../support/relay.ts';
import { watchProcessFaults, type ProcessFaults } from '../support/process-faults.ts';
import { readDb } from '../support/db.ts';
import { generateIdentity } from '../../relay/identity.ts';

const scope = useRelay();
let dir: ReturnType<typeof tempDir>;
let watch: ProcessFaults;

beforeEach(() => {
  dir = tempDir();
  watch = watchProcessFaults();
  // Tracked before the test's relays start, so stopped and removed after they stop.
  scope.track(() => dir.remove());
  scope.track(() => watch.stop());
});

/** Reads the relay's database through a second connection (WAL: readers never wait). */
function query<T>(dbPath: string, sql: string): T[] {
  return readDb(dbPath, (db) => db.prepare(sql).all() as T[]);
}
const storedIds = (dbPath: string) => query<{ msg_id: string }>(dbPath, "SELECT msg_id FROM mailbox WHERE kind = 'message' ORDER BY seq").map((r) => r.msg_id);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Outgoing {
  id: string;
  body: string;
}

describe('relay storage faults', () => {
  it('B8: a full database refuses sends with E_STORAGE, never ok; after the cap is lifted the retries are delivered once, in order', async () => {
    const aliceId = generateIdentity();
    const bobId = generateIdentity();
    // Both join once, so the relay knows them; then the database's size is measured.
    let relay = await scope.start({ dir: dir.path });
    for (const identity of [aliceId, bobId]) (await scope.join({ identity })).close();
    await relay.stop();
    const [{ page_count: pages }] = query<{ page_count: number }>(relay.dbPath, 'PRAGMA page_count') as [{ page_count: number }];

    // A cap a few pages over the current size: a few messages fit, then the disk is "full".
    relay = await scope.start({ dir: dir.path, storeOptions: { maxPageCount: pages + 4 } });
    let alice = await scope.join({ identity: aliceId });
    const outbox: Outgoing[] = Array.from({ length: 12 }, (_, i) => ({ id: newMessageId(), body: `message ${i} ${'x'.repeat(3000)}` }));
    const seqs = new Map<string, number>();
    let next = 0;
    /** Sends the outbox in order, one at a time, as a client does; stops at the first refusal. */
    const drain = async (): Promise<string | undefined> => {
      for (; next < outbox.length; next++) {
        const m = outbox[next]!;
        const result = await alice.send(bobId.userId, m.body, m.id);
        if (!result.ok) return result.error.code;
        seqs.set(m.id, result.value.seq);
      }
      return undefined;
    };

    expect(await drain()).toBe('E_STORAGE');
    expect(next).toBeGreaterThan(0);
    expect(next).toBeLessThan(outbox.length);
    // Retrying the refused message while the disk is still full is refused again, not "ok".
    const head = outbox[next]!;
    for (let i = 0; i < 2; i++) {
      expect(await alice.send(bobId.userId, head.body, head.id)).toMatchObject({ ok: false, error: { code: 'E_STORAGE' } });
    }
    // Every ok was stored, and nothing refused was.
    expect(storedIds(relay.dbPath)).toEqual(outbox.slice(0, next).map((m) => m.id));
    // The relay is up and answers what needs no new space.
    expect(await alice.request('directory:get', { ids: [bobId.userId] })).toMatchObject({ ok: true, value: { users: [{ id: bobId.userId }] } });
    expect(await alice.request('directory:page', {})).toMatchObject({ ok: true });
    expect(watch.faults).toEqual([]);

    // The operator lifts the cap: the relay restarts on the same data without it.
    alice.close();
    await relay.stop();
    relay = await scope.start({ dir: dir.path });
    alice = await scope.join({ identity: aliceId });
    // A message acknowledged before the restart is still known under its id and seq.
    const first = outbox[0]!;
    expect(await alice.send(bobId.userId, first.body, first.id)).toMatchObject({ ok: true, value: { seq: seqs.get(first.id) } });
    expect(await drain()).toBeUndefined();

    const bob = await scope.join({ identity: bobId });
    await eventually(() => bob.messages().length >= outbox.length, `all ${outbox.length} messages at bob`);
    expect(bob.messages().map((m) => m.id)).toEqual(outbox.map((m) => m.id));
    expect(bob.messages().map((m) => m.body)).toEqual(outbox.map((m) => m.body));
    await eventually(() => storedIds(relay.dbPath).length === 0, 'the mailbox to empty after bob acknowledged');
    expect(query<{ integrity_check: string }>(relay.dbPath, 'PRAGMA integrity_check')).toEqual([{ integrity_check: 'ok' }]);
    expect(watch.faults).toEqual([]);
  });

  /** Holds the relay database's write lock from a second connection, as another process might. */
  function lockDatabase(dbPath: string, forMs: number): { isLocked: () => boolean; released: Promise<void> } {
    const locker = new Database(dbPath);
    locker.exec('BEGIN IMMEDIATE');
    let locked = true;
    const released = new Promise<void>((resolve) =>
      setTimeout(() => {
        locker.exec('COMMIT');
        locked = false;
        locker.close();
        resolve();
      }, forMs),
    );
    return { isLocked: () => locked, released };
  }

  it('B9: while another connection holds the write lock longer than busy_timeout, no send is ok before it is stored; retries are delivered once', async () => {
    const relay = await scope.start({ dir: dir.path });
    const alice = await scope.join();
    const bobId = generateIdentity();
    (await scope.join({ identity: bobId })).close();
    // Bob is offline (his last-seen is written) before the lock: what alice sends must go to disk.
    await eventually(async () => {
      const r = await alice.request('directory:get', { ids: [bobId.userId] });
      return r.ok && r.value.users[0]?.online === false;
    }, 'bob offline');

    // busy_timeout is 1 s (relay/sqlite/migrate.ts); the lock is held for 3.
    const lock = lockDatabase(relay.dbPath, 3000);
    expect(await alice.request('directory:get', { ids: [bobId.userId] })).toMatchObject({ ok: true });

    const outbox: Outgoing[] = Array.from({ length: 5 }, (_, i) => ({ id: newMessageId(), body: `during the lock ${i}` }));
    const answers: { ok: boolean; code?: string; whileLocked: boolean }[] = [];
    for (const m of outbox) {
      for (let attempt = 0; ; attempt++) {
        if (attempt > 40) throw new Error(`message ${m.id} never got an ok; answers: ${JSON.stringify(answers)}`);
        const result = await alice.send(bobId.userId, m.body, m.id);
        answers.push({ ok: result.ok, whileLocked: lock.isLocked(), ...(result.ok ? {} : { code: result.error.code }) });
        if (result.ok) break;
        await sleep(250); // the outbox's backoff, short for the test
      }
    }
    await lock.released;

    // The lock really refused writes, with a retryable typed error; no ok came while it was held.
    expect(answers.some((a) => !a.ok && a.whileLocked)).toBe(true);
    expect(answers.filter((a) => !a.ok).map((a) => a.code)).toEqual(answers.filter((a) => !a.ok).map(() => 'E_STORAGE'));
    expect(answers.filter((a) => a.ok && a.whileLocked)).toEqual([]);
    expect(answers.filter((a) => a.ok)).toHaveLength(outbox.length);
    expect(storedIds(relay.dbPath)).toEqual(outbox.map((m) => m.id));

    const bob = await scope.join({ identity: bobId });
    await eventually(() => bob.messages().length >= outbox.length, 'all messages at bob');
    expect(bob.messages().map((m) => m.id)).toEqual(outbox.map((m) => m.id));
    expect(watch.faults).toEqual([]);
  });

  it('B9: a recipient who acknowledges while the database is locked: the relay stays up, and the sender still gets the delivered receipt', async () => {
    const relay = await scope.start({ dir: dir.path });
    const aliceId = generateIdentity();
    let alice = await scope.join({ identity: aliceId });
    let letBobAck!: () => void;
    const bobMayAck = new Promise<void>((resolve) => (letBobAck = resolve));
    const bob = await scope.join({ onDeliver: () => bobMayAck.then(() => ({ ok: true as const })) });

    // Bob has the message but has not acknowledged it: it is written, and alice's answer says "sent".
    const id = newMessageId();
    const sent = await alice.send(bob.id, 'hello bob', id);
    expect(sent).toMatchObject({ ok: true });
    expect(sent.ok && sent.value.deliveredAt).toBeUndefined();
    await eventually(() => bob.messages().some((m) => m.id === id), 'the delivery to bob');
    // Alice goes offline, so her receipt must be written to her mailbox.
    alice.close();
    await eventually(async () => {
      const r = await bob.request('directory:get', { ids: [aliceId.userId] });
      return r.ok && r.value.users[0]?.online === false;
    }, 'alice offline');

    const lock = lockDatabase(relay.dbPath, 2000);
    letBobAck();
    await lock.released;
    expect(watch.faults).toEqual([]);

    // The removal and its receipt are written once the lock is gone; alice gets the receipt once.
    alice = await scope.join({ identity: aliceId });
    await eventually(() => alice.receipts().length > 0, 'the delivered receipt at alice');
    await eventually(() => storedIds(relay.dbPath).length === 0, 'bob’s mailbox to empty');
    expect(alice.receipts()).toMatchObject([{ kind: 'receipt', from: bob.id, state: 'delivered', ids: [id] }]);
    expect(bob.messages().filter((m) => m.id === id)).toHaveLength(1);
    expect(await alice.request('directory:page', {})).toMatchObject({ ok: true });
    expect(watch.faults).toEqual([]);
  });
});
