// The SQLite mailbox on its own: what reaches the disk, and when a sender may be answered.
import Database from 'better-sqlite3';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { relayMigrations } from '../../relay/mailbox/migrations.ts';
import { boxKey } from '../../relay/mailbox/bloom.ts';
import { openSqliteStore, recordFilePath, type SqliteStoreOptions } from '../../relay/mailbox/sqlite.ts';
import { GROUP_MS } from '../../relay/mailbox/record-batch.ts';
import { createLogger } from '../../relay/log.ts';
import { migrate } from '../../relay/sqlite/migrate.ts';
import { digestOf, type IncomingMessage, type RelayStore } from '../../relay/mailbox/store.ts';
import { eventually, idsOf, readPages, tempDir } from '../support/relay.ts';
import { newestSegment, readDb, refuseInserts, relayRecords } from '../support/db.ts';

const alice = 'a'.repeat(32);
const bob = 'b'.repeat(32);
const quota = { messages: 100, bytes: 100_000 };
const message = (id: string, body = `body of ${id}`): IncomingMessage => ({ from: alice, to: bob, id, body, sentAt: 1, at: Date.now(), digest: digestOf(bob, body) });

const dirs: { remove: () => void }[] = [];
const stores: RelayStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) d.remove();
});

function open(holdMs: number, path?: string, more: Partial<SqliteStoreOptions> = {}) {
  const dir = tempDir();
  dirs.push(dir);
  const file = path ?? join(dir.path, 'relay.db');
  const store = openSqliteStore({ ...more, path: file, holdMs });
  stores.push(store);
  return { store, file };
}

/** A relay.db in a new folder at an older schema `version`, open for the test to fill. */
function oldDatabase(version: number) {
  const dir = tempDir();
  dirs.push(dir);
  const file = join(dir.path, 'relay.db');
  const db = new Database(file);
  migrate(db, relayMigrations.slice(0, version));
  return { file, db };
}

/** What another process reading the files would see. */
function onDisk(file: string) {
  return {
    mailbox: readDb(file, (db) => db.prepare('SELECT seq, msg_id AS id FROM mailbox ORDER BY seq').all()),
    sent: relayRecords(file).map(({ id, deliveredAt }) => ({ id, deliveredAt })),
  };
}

/** The messages (not receipts) in the mailbox file, by id, and the records. */
function messagesOnDisk(file: string) {
  const { mailbox, sent } = onDisk(file);
  return { messages: (mailbox as { id: string | null }[]).flatMap((r) => (r.id === null ? [] : [r.id])), sent };
}

const settled = async <T>(p: Promise<T>, ms: number): Promise<T | 'pending'> => Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms))]);
const turn = () => new Promise((r) => setImmediate(r));

/**
 * Retries of every `every`th message of `seqs` are duplicates with their seq, and those of
 * `conflicting` with another body are conflicts: answered by `store`, then by a store opened
 * again on its file (whose filter of known ids starts at its smallest).
 */
async function retriesAnswered(store: RelayStore, file: string, seqs: ReadonlyMap<string, number>, every: number, conflicting: readonly string[]) {
  for (let turns = 0; turns < 10; turns++) await turn();
  const retry = async (s: RelayStore) => {
    for (const [id, seq] of [...seqs].filter((_, i) => i % every === 0)) expect(await s.accept(message(id), quota), id).toMatchObject({ kind: 'duplicate', seq });
    for (const id of conflicting) expect(await s.accept(message(id, 'another body'), quota), id).toEqual({ kind: 'conflict' });
  };
  await retry(store);
  await store.close();
  stores.splice(0);
  const reopened = openSqliteStore({ path: file, expectedRecords: 1 });
  stores.push(reopened);
  await retry(reopened);
}

describe('the SQLite mailbox', () => {
  it("fails a sender's later held message to the same recipient with the earlier one whose write failed, so that their resends keep the order", async () => {
    const { store, file } = open(200);
    const accept = async (m: IncomingMessage) => {
      const outcome = await store.accept(m, quota, true);
      if (outcome.kind !== 'accepted') throw new Error(outcome.kind);
      return outcome;
    };
    const first = await accept(message('held-0001'));
    await new Promise((r) => setTimeout(r, 50));
    // Held 50 ms longer: behind the first in Alice's conversation with Bob. Carol's is not.
    const second = await accept(message('held-0002'));
    const carols = await accept({ ...message('held-0003'), from: 'c'.repeat(32) });
    // Storage refuses the first's write, and is back at once.
    const release = refuseInserts(file, 'mailbox');
    const firstFailed = first.durable.then(() => 'written', (error: unknown) => (release(), (error as { code?: string }).code));
    expect(await firstFailed).toBe('E_STORAGE');
    // Written now, the second would get seq order ahead of the first's resend.
    expect(await second.durable.then(() => 'written', (error: unknown) => (error as { code?: string }).code)).toBe('E_STORAGE');
    expect(await carols.durable).toEqual({});
    expect(messagesOnDisk(file).messages).toEqual(['held-0003']);
  });

  it('keeps a message for a connected recipient in memory, and never writes it once it is acknowledged', async () => {
    const { store, file } = open(60_000);
    const outcome = await store.accept(message('live-0001'), quota, true);
    if (outcome.kind !== 'accepted') throw new Error(outcome.kind);
    await turn();
    // Not answered and not on disk: a crash now loses nothing the sender was told was safe.
    expect(await settled(outcome.durable, 50)).toBe('pending');
    expect(onDisk(file).mailbox).toEqual([]);
    expect((await store.page(bob, 0, 10)).map((e) => e.seq)).toEqual([outcome.seq]);

    const acked = await store.acknowledge(bob, [outcome.seq], 1234);
    expect(acked).toMatchObject({ removed: 1, receiptsFor: [] });
    expect(await outcome.durable).toEqual({ deliveredAt: 1234 });
    // Only the idempotency record is written (with a later commit: nobody waits for it), with
    // the delivery; Alice's mailbox got no receipt.
    await eventually(() => onDisk(file).sent.length > 0, 'the record written');
    expect(onDisk(file)).toEqual({ mailbox: [], sent: [{ id: 'live-0001', deliveredAt: 1234 }] });
    expect(await store.page(alice, 0, 10)).toEqual([]);
    const again = await store.accept(message('live-0001'), quota, true);
    expect(again).toMatchObject({ kind: 'duplicate', seq: outcome.seq });
    if (again.kind === 'duplicate') expect(await again.durable).toEqual({ deliveredAt: 1234 });
    // Its record went to the record file, not into relay.db's commits; a retry after a restart
    // is answered from there, with the delivery.
    expect(readDb(file, (db) => db.prepare('SELECT count(*) AS n FROM sent').get())).toEqual({ n: 0 });
    await store.close();
    const reopened = openSqliteStore({ path: file });
    stores.push(reopened);
    const afterRestart = await reopened.accept(message('live-0001'), quota, true);
    expect(afterRestart).toMatchObject({ kind: 'duplicate', seq: outcome.seq });
    if (afterRestart.kind === 'duplicate') expect(await afterRestart.durable).toEqual({ deliveredAt: 1234 });
    expect(await reopened.accept(message('live-0001', 'another body'), quota, true)).toEqual({ kind: 'conflict' });
  });

  it("tells with each accepted message the seq of the one before it in the recipient's mailbox, while it knows it without a read", async () => {
    const { store } = open(60_000);
    const accept = async (id: string, live = true) => {
      const outcome = await store.accept(message(id), quota, live);
      if (outcome.kind !== 'accepted') throw new Error(outcome.kind);
      return outcome;
    };
    const first = await accept('prev-1');
    expect(first.prev).toBe(0);
    const second = await accept('prev-2');
    expect(second.prev).toBe(first.seq);
    // The newest waiting one taken out of turn (its acknowledgement came first): the next
    // follows the one still waiting, not the one taken.
    await store.acknowledge(bob, [second.seq], 1);
    const third = await accept('prev-3');
    expect(third.prev).toBe(first.seq);
    await store.acknowledge(bob, [first.seq, third.seq], 1);
    expect((await accept('prev-4')).prev).toBe(0);
    // Once something waits on disk, the store would have to read to know: it says nothing, and
    // the recipient's stream reads the mailbox instead.
    const written = await accept('prev-5', false);
    await written.durable;
    expect((await accept('prev-6')).prev).toBeUndefined();
  });

  it('never hands out a seq again after a crash, even one whose message never reached the disk', async () => {
    const { store, file } = open(60_000);
    // Taken by its recipient from memory: its sender is answered with this seq, and nothing
    // about it is written yet (its record goes with a later commit).
    const taken = await store.accept(message('live-0001'), quota, true);
    if (taken.kind !== 'accepted') throw new Error(taken.kind);
    await store.acknowledge(bob, [taken.seq], 1234);
    expect(await taken.durable).toEqual({ deliveredAt: 1234 });
    // The process dies here (nothing more is written: this store is never used again), and
    // the relay starts again on the same file.
    const after = open(60_000, file).store;
    const next = await after.accept(message('live-0002'), quota, true);
    if (next.kind !== 'accepted') throw new Error(next.kind);
    // The sender holds seq N for its first message: its second must come after it.
    expect(next.seq).toBeGreaterThan(taken.seq);
  });

  it('writes a held message when its recipient does not acknowledge in time, then answers; the late ack queues a receipt', async () => {
    const { store, file } = open(30);
    const outcome = await store.accept(message('slow-0001'), quota, true);
    if (outcome.kind !== 'accepted') throw new Error(outcome.kind);
    expect(await outcome.durable).toEqual({});
    // Answered once the message is on disk; its record follows it into the record file.
    expect(onDisk(file).mailbox).toEqual([{ seq: outcome.seq, id: 'slow-0001' }]);
    await eventually(() => onDisk(file).sent.length > 0, 'the record filed');
    expect(onDisk(file)).toEqual({ mailbox: [{ seq: outcome.seq, id: 'slow-0001' }], sent: [{ id: 'slow-0001', deliveredAt: null }] });
    const acked = await store.acknowledge(bob, [outcome.seq], 99);
    expect(acked).toMatchObject({ removed: 1, receiptsFor: [alice] });
    expect(await store.page(alice, 0, 10)).toMatchObject([{ kind: 'receipt', from: bob, state: 'delivered', ids: ['slow-0001'] }]);
  });

  it('pages written and held envelopes together in seq order, and writes everything held on close', async () => {
    const { store, file } = open(60_000);
    const a = await store.accept(message('held-0001'), quota, true);
    const b = await store.accept(message('disk-0002'), quota, false);
    const c = await store.accept(message('held-0003'), quota, true);
    if (b.kind !== 'accepted') throw new Error(b.kind);
    await b.durable;
    expect(onDisk(file).mailbox).toEqual([{ seq: b.seq, id: 'disk-0002' }]);
    expect(idsOf(await store.page(bob, 0, 10))).toEqual(['held-0001', 'disk-0002', 'held-0003']);
    expect((await store.page(bob, 0, 2)).map((e) => e.seq)).toEqual([a, b].map((o) => ('seq' in o ? o.seq : 0)));
    await store.close();
    stores.splice(0);
    expect(onDisk(file).mailbox.map((r) => (r as { id: string }).id)).toEqual(['held-0001', 'disk-0002', 'held-0003']);
    const reopened = openSqliteStore({ path: file });
    stores.push(reopened);
    expect((await reopened.page(bob, 0, 10)).map((e) => e.seq)).toEqual([a, b, c].map((o) => ('seq' in o ? o.seq : 0)));
  });

  it('reads a page of large messages only as far as its bytes allow, never skipping one behind it', async () => {
    const { store } = open(60_000);
    const big = { messages: 100, bytes: 10_000_000 };
    const body = (n: number) => `${n}:`.padEnd(8 * 1024, 'x');
    const ids: string[] = [];
    for (let n = 0; n < 20; n++) {
      const outcome = await store.accept(message(`large-${String(n).padStart(4, '0')}`, body(n)), big, false);
      if (outcome.kind !== 'accepted') throw new Error(outcome.kind);
      await outcome.durable;
      ids.push(`large-${String(n).padStart(4, '0')}`);
    }
    // One more, held in memory, newer than everything written.
    const held = await store.accept(message('held-9999'), big, true);
    if (held.kind !== 'accepted') throw new Error(held.kind);

    // 32 KiB of 8 KiB bodies: four, not the twenty a page of 500 could hold, and not the held one.
    const first = await store.page(bob, 0, 500, 32 * 1024);
    expect(idsOf(first)).toEqual(ids.slice(0, 4));
    // A budget smaller than one body still gives one envelope.
    expect(idsOf(await store.page(bob, 0, 500, 100))).toEqual(ids.slice(0, 1));
    // Page after page, everything comes, once and in order, the held one last.
    const pages = await readPages(store, bob, 500, 48 * 1024);
    expect(Math.max(...pages.map((page) => page.length))).toBeLessThanOrEqual(6);
    expect(idsOf(pages.flat())).toEqual([...ids, 'held-9999']);
    // The page an acknowledgement reads next keeps to the same budget.
    const acked = await store.acknowledge(bob, first.map((e) => e.seq), 1, { afterSeq: first.at(-1)?.seq ?? 0, limit: 500, bytes: 32 * 1024 });
    expect(idsOf(acked.next ?? [])).toEqual(ids.slice(4, 8));
  });

  it('copies what it stored from the WAL into the database file by itself, before SQLite\'s own threshold would', async () => {
    const { store, file } = open(0);
    const body = 'x'.repeat(1000);
    // Some 500 KB of bodies: a few hundred pages of WAL, under the 1,000 at which a commit would checkpoint in the event loop.
    const outcomes = await Promise.all(Array.from({ length: 500 }, (_, i) => store.accept(message(`wal-${String(i).padStart(5, '0')}`, body), { messages: 10_000, bytes: 10_000_000 })));
    await Promise.all(outcomes.map((o) => (o.kind === 'accepted' ? o.durable : Promise.reject(new Error(o.kind)))));
    const before = statSync(file).size;
    await eventually(() => statSync(file).size > 500_000, `the database file to take the messages (it holds ${before} bytes)`);
    expect(readDb(file, (db) => db.prepare('SELECT count(*) AS n FROM mailbox').get())).toEqual({ n: 500 });
  });

  it('upgrades a version 1 database: its records still answer retries, as sends without a delivery', async () => {
    // A database as the first version left it: schema 1, one message waiting, and its record.
    const { file, db } = oldDatabase(1);
    const old = message('old-00001');
    db.prepare("INSERT INTO mailbox (seq, recipient, kind, sender, msg_id, body, sent_at, at, size) VALUES (7, ?, 'message', ?, ?, ?, 1, 2, 3)").run(bob, alice, old.id, old.body);
    db.prepare('INSERT INTO sent (sender, id, seq, digest, at) VALUES (?, ?, 7, ?, ?)').run(alice, old.id, old.digest, Date.now());
    db.close();
    const { store } = open(1000, file);
    const again = await store.accept(old, quota);
    expect(again).toMatchObject({ kind: 'duplicate', seq: 7 });
    if (again.kind === 'duplicate') expect(await again.durable).toEqual({});
    expect(await store.accept(message('old-00001', 'another body'), quota)).toEqual({ kind: 'conflict' });
    expect(onDisk(file)).toEqual({ mailbox: [{ seq: 7, id: 'old-00001' }], sent: [{ id: 'old-00001', deliveredAt: null }] });
    // New seqs continue after the old ones.
    const next = await store.accept(message('new-00002'), quota);
    expect(next).toMatchObject({ kind: 'accepted', seq: 8 });
  });

  it('upgrades a version 4 database and moves the rows it cannot read to the dead letters, as they were, whether met in a page or in an acknowledgement', async () => {
    // Schema 4, with a receipt between two messages whose state no version ever wrote.
    const { file, db } = oldDatabase(4);
    const insert = db.prepare('INSERT INTO mailbox (seq, recipient, kind, sender, msg_id, body, sent_at, at, size) VALUES (?, ?, ?, ?, ?, ?, ?, 2, ?)');
    insert.run(7, bob, 'message', alice, 'old-00007', 'seven', 1, 5);
    insert.run(8, bob, 'receipt', alice, null, '{"state":"seen","ids":["x"]}', null, 16);
    insert.run(9, bob, 'message', alice, 'old-00009', 'nine', 1, 4);
    db.close();
    const { store } = open(0, file);
    expect(idsOf(await store.page(bob, 0, 10))).toEqual(['old-00007', 'old-00009']);
    const dead = () => readDb(file, (d) => d.prepare('SELECT seq, kind, msg_id AS id, body, sent_at AS sentAt FROM dead_letters ORDER BY seq').all());
    expect(dead()).toEqual([{ seq: 8, kind: 'receipt', id: null, body: '{"state":"seen","ids":["x"]}', sentAt: null }]);

    // A row spoilt after it was sent: its acknowledgement moves it aside too, and removes the other.
    const writer = new Database(file);
    writer.prepare("UPDATE mailbox SET sent_at = 'soon' WHERE seq = 9").run();
    writer.close();
    expect(await store.acknowledge(bob, [7, 9], 3)).toMatchObject({ removed: 1, receiptsFor: [alice] });
    expect(dead()).toMatchObject([{ seq: 8 }, { seq: 9, id: 'old-00009', sentAt: 'soon' }]);
    const bobsRows = () => readDb(file, (d) => (d.prepare('SELECT count(*) AS n FROM mailbox WHERE recipient = ?').get(bob) as { n: number }).n);
    await eventually(() => bobsRows() === 0, "bob's mailbox to be empty");
  });

  it('answers every retry as a duplicate while its filter of known ids grows past its size, and after a restart', async () => {
    // The filter starts at its smallest (1,024 ids) and is refilled from the table, in slices, as it fills up.
    const { store, file } = open(0, undefined, { expectedRecords: 1 });
    const ids = Array.from({ length: 3_000 }, (_, i) => `grow-${String(i).padStart(5, '0')}`);
    const seqs = new Map<string, number>();
    for (const id of ids) {
      const outcome = await store.accept(message(id), { messages: 10_000, bytes: 10_000_000 });
      if (outcome.kind !== 'accepted') throw new Error(outcome.kind);
      seqs.set(id, outcome.seq);
      // Filed now and then, so that a refill has records to read from the file, not only
      // those it is told are on their way there.
      if (seqs.size % 500 === 0) {
        await outcome.durable;
        await eventually(() => onDisk(file).sent.length === seqs.size, 'records filed');
      }
    }
    await eventually(() => onDisk(file).sent.length === ids.length, 'every record written');
    await retriesAnswered(store, file, seqs, 97, ['grow-00001']);
  });
  it('finds the records of delivered and of written messages alike while its filter grows, and after a restart', async () => {
    // Every other message is taken from memory, the rest are written: the records of both go
    // to the record file.
    const { store, file } = open(60_000, undefined, { expectedRecords: 1 });
    const ids = Array.from({ length: 2_400 }, (_, i) => `both-${String(i).padStart(5, '0')}`);
    const seqs = new Map<string, number>();
    for (const [i, id] of ids.entries()) {
      const live = i % 2 === 0;
      const outcome = await store.accept(message(id), { messages: 10_000, bytes: 10_000_000 }, live);
      if (outcome.kind !== 'accepted') throw new Error(outcome.kind);
      seqs.set(id, outcome.seq);
      if (live) await store.acknowledge(bob, [outcome.seq], 99);
    }
    await eventually(() => onDisk(file).sent.length === ids.length, 'every record written');
    expect(readDb(file, (db) => db.prepare('SELECT count(*) AS n FROM sent').get())).toEqual({ n: 0 });
    await retriesAnswered(store, file, seqs, 41, ['both-00000', 'both-00001']);
  });

  it('files the records of a batch only once each of its messages is written or taken, and answers their retries meanwhile', async () => {
    const { store, file } = open(2_000);
    // Held in memory for a connected recipient who does not acknowledge it (yet).
    const held = await store.accept(message('held-0001'), quota, true);
    const written = await store.accept(message('plain-0001'), quota);
    if (held.kind !== 'accepted' || written.kind !== 'accepted') throw new Error('not accepted');
    await written.durable;
    await new Promise((r) => setTimeout(r, GROUP_MS + 300));
    // Filed before its message is, a record would make the sender's retry after a failed
    // write a duplicate of a message that never was.
    expect(onDisk(file).sent).toEqual([]);
    expect(await store.accept(message('plain-0001'), quota)).toMatchObject({ kind: 'duplicate', seq: written.seq });
    const retry = await store.accept(message('held-0001'), quota, true);
    if (retry.kind !== 'duplicate') throw new Error(retry.kind);
    expect(retry.seq).toBe(held.seq);
    expect(await settled(retry.durable, 50)).toBe('pending');
    expect(await retry.durable).toEqual({});
    await eventually(() => onDisk(file).sent.length === 2, 'both records filed');
  });

  it('rebuilds the records of the messages in the mailbox after an unclean end, so that their retries are still duplicates', async () => {
    const { store, file } = open(0);
    await store.close();
    stores.splice(0);
    // As a process that died between committing a message and filing its record leaves it.
    const m = message('lost-0001');
    const raw = new Database(file);
    raw.prepare("INSERT INTO mailbox (seq, recipient, box, kind, sender, msg_id, body, sent_at, at, size) VALUES (77, ?, ?, 'message', ?, ?, ?, 1, ?, 9)").run(bob, boxKey(bob), alice, m.id, m.body, m.at);
    raw.prepare("UPDATE meta SET value = 0 WHERE key = 'records_filed'").run();
    raw.close();
    const lines: string[] = [];
    const reopened = openSqliteStore({ path: file, log: createLogger({ write: (line) => lines.push(line) }) });
    stores.push(reopened);
    expect(lines.filter((l) => l.includes('rebuilt idempotency records'))).toEqual([expect.stringContaining('records=1')]);
    expect(await reopened.accept(m, quota)).toMatchObject({ kind: 'duplicate', seq: 77 });
    expect(await reopened.accept(message('lost-0001', 'another body'), quota)).toEqual({ kind: 'conflict' });
    expect(idsOf(await reopened.page(bob, 0, 10))).toEqual(['lost-0001']);
  });

  /** A message written while the record file refuses its record (as a full disk would). */
  async function writtenUnfiled(id: string) {
    const { store, file } = open(0);
    const allow = refuseInserts(recordFilePath(file), newestSegment(recordFilePath(file)));
    const outcome = await store.accept(message(id), quota);
    if (outcome.kind !== 'accepted') throw new Error(outcome.kind);
    await outcome.durable;
    return { store, file, seq: outcome.seq, allow };
  }

  it('refuses an acknowledgement while the records of its messages cannot be filed, and changes nothing until they can', async () => {
    const { store, file, seq, allow } = await writtenUnfiled('wait-0001');
    // The row is all its record has: removed now, the record could not be rebuilt after a crash.
    await expect(store.acknowledge(bob, [seq], 5)).rejects.toMatchObject({ code: 'E_STORAGE' });
    expect(idsOf(await store.page(bob, 0, 10))).toEqual(['wait-0001']);
    expect(await store.page(alice, 0, 10)).toEqual([]);
    allow();
    expect(await store.acknowledge(bob, [seq], 6)).toMatchObject({ removed: 1, receiptsFor: [alice] });
    expect(await store.page(alice, 0, 10)).toMatchObject([{ kind: 'receipt', state: 'delivered', ids: ['wait-0001'], at: 6 }]);
    await eventually(() => messagesOnDisk(file).messages.length === 0, 'the removal');
    expect(messagesOnDisk(file).sent).toEqual([{ id: 'wait-0001', deliveredAt: null }]);
  });

  it('closes as unclean when a record could not be filed, and the next start rebuilds it', async () => {
    const { store, file, seq, allow } = await writtenUnfiled('shut-0001');
    await store.close();
    expect(readDb(file, (db) => db.prepare("SELECT value FROM meta WHERE key = 'records_filed'").get())).toEqual({ value: 0 });
    allow();
    stores.splice(0);
    const lines: string[] = [];
    const reopened = openSqliteStore({ path: file, log: createLogger({ write: (line) => lines.push(line) }) });
    stores.push(reopened);
    expect(lines.filter((l) => l.includes('rebuilt idempotency records'))).toEqual([expect.stringContaining('records=1')]);
    expect(await reopened.accept(message('shut-0001'), quota)).toMatchObject({ kind: 'duplicate', seq });
  });

  it('rebuilds the records of the mailbox when the record file is gone (deleted, or not restored from a backup)', async () => {
    const { store, file } = open(0);
    const outcome = await store.accept(message('gone-0001'), quota);
    if (outcome.kind !== 'accepted') throw new Error(outcome.kind);
    await store.close();
    stores.splice(0);
    expect(readDb(file, (db) => db.prepare("SELECT value FROM meta WHERE key = 'records_filed'").get())).toEqual({ value: 1 });
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${recordFilePath(file)}${suffix}`, { force: true });
    const reopened = openSqliteStore({ path: file });
    stores.push(reopened);
    expect(await reopened.accept(message('gone-0001'), quota)).toMatchObject({ kind: 'duplicate', seq: outcome.seq });
  });

  it('keeps a delivered receipt when the acknowledgement could not be stored: the next acknowledgement removes the message and queues it', async () => {
    const { store, file } = open(0);
    // Seqs come in blocks of 10,000 written ahead: use up the first block with the message itself, so that the
    // acknowledgement's receipt needs a new block (a write) while the database is locked.
    const others = { from: 'c'.repeat(32), to: 'd'.repeat(32) };
    let last: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < 9_999; i++) {
      const o = await store.accept({ ...message(`fill-${i}`), ...others }, { messages: 1e9, bytes: 1e12 });
      if (o.kind === 'accepted') last = o.durable;
    }
    const sent = await store.accept(message('for-bob-1'), quota);
    if (sent.kind !== 'accepted') throw new Error(sent.kind);
    await Promise.all([last, sent.durable]);
    expect(sent.seq).toBe(10_000);

    // Another process (a backup, the sqlite3 shell) holds the write lock past busy_timeout.
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    try {
      await expect(store.acknowledge(bob, [sent.seq], 1234)).rejects.toMatchObject({ code: expect.stringMatching(/^E_/) });
    } finally {
      other.exec('COMMIT');
      other.close();
    }
    // Bob's client gets the batch again and acknowledges again: removed now, and Alice's receipt queued.
    expect(await store.acknowledge(bob, [sent.seq], 1235)).toMatchObject({ removed: 1, receiptsFor: [alice] });
    expect(await store.page(bob, 0, 10)).toEqual([]);
    expect(await store.page(alice, 0, 10)).toMatchObject([{ kind: 'receipt', from: bob, state: 'delivered', ids: ['for-bob-1'], at: 1235 }]);
  });

  it("never pages another recipient's row that shares the recipient's integer key (a hash)", async () => {
    const { store, file } = open(0);
    const sent = await store.accept(message('mine-0001'), quota);
    if (sent.kind !== 'accepted') throw new Error(sent.kind);
    await sent.durable;
    await store.close();
    stores.splice(0);
    const carol = 'c'.repeat(32);
    const raw = new Database(file);
    raw.prepare("INSERT INTO mailbox (seq, recipient, box, kind, sender, msg_id, body, sent_at, at, size) VALUES (500, ?, ?, 'message', ?, 'carols-0001', 'for carol', 1, 2, 9)").run(carol, boxKey(bob), alice);
    raw.close();
    const reopened = openSqliteStore({ path: file });
    stores.push(reopened);
    expect(idsOf(await reopened.page(bob, 0, 10))).toEqual(['mine-0001']);
    // Bob's quota counts his one message only.
    expect(await reopened.accept(message('mine-0002'), { messages: 2, bytes: 100_000 })).toMatchObject({ kind: 'accepted' });
    expect(await reopened.accept(message('mine-0003'), { messages: 2, bytes: 100_000 })).toEqual({ kind: 'full' });
  });
});
