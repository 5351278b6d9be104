// The idempotency records, written by a worker thread into a
// file of their own (relay/mailbox/record-file.ts): when they are there, and that a
// failed write is tried again, and a failed worker leaves the writing to the event loop.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { openRecordFile, type RecordFile } from '../../relay/mailbox/record-file.ts';
import { recordColumns } from '../../relay/mailbox/record-batch.ts';
import type { RecordRow } from '../../relay/mailbox/sqlite-rows.ts';
import { recordFileMigrations } from '../../relay/mailbox/migrations.ts';
import { migrate } from '../../relay/sqlite/migrate.ts';
import { hash52 } from '../../relay/mailbox/bloom.ts';
import { recordKey } from '../../relay/mailbox/store.ts';
import { createLogger } from '../../relay/log.ts';
import { eventually, tempDir } from '../support/relay.ts';
import { newestSegment, readDb, recordSegments, refuseInserts } from '../support/db.ts';

const alice = 'a'.repeat(32);
const dirs: { remove: () => void }[] = [];
const opened: RecordFile[] = [];
afterEach(async () => {
  for (const r of opened.splice(0)) await r.close();
  for (const d of dirs.splice(0)) d.remove();
});

function open(module?: string, { segmentRows, path = join(newDir(), 'relay-records.db') }: { segmentRows?: number; path?: string } = {}) {
  const lines: string[] = [];
  const records = openRecordFile({ path, durability: 'normal', log: createLogger({ write: (line) => lines.push(line) }), ...(module ? { module } : {}), ...(segmentRows ? { segmentRows } : {}) });
  opened.push(records);
  /** The ids on file, as another process reads them. */
  const onFile = () => readDb(path, (db) => db.prepare('SELECT id FROM sent ORDER BY seq').all().map((r) => (r as { id: string }).id));
  return { records, path, lines, onFile };
}

function newDir(): string {
  const dir = tempDir();
  dirs.push(dir);
  return dir.path;
}

/** Records of alice's messages m-<from> on. */
const batch = (from: number, count: number, at = Date.now()) =>
  Array.from({ length: count }, (_, i): RecordRow => [from + i, hash52(recordKey(alice, `m-${from + i}`)), alice, `m-${from + i}`, `d-${from + i}`, at, at + 1]);

/** Resolves at `written`, with what the file held then. */
const write = (records: RecordFile, rows: RecordRow[], onFile: () => string[]) => new Promise<string[]>((resolve) => records.write(recordColumns(rows), () => resolve(onFile())));

describe('the record file', () => {
  it('are in the file, findable through its connection, when the worker says so', async () => {
    const { records, onFile } = open();
    const first = await write(records, batch(1, 500), onFile);
    expect(first).toHaveLength(500);
    expect(await write(records, batch(501, 3), onFile)).toEqual([...first, 'm-501', 'm-502', 'm-503']);
    expect(records.q.getSent.get(hash52(recordKey(alice, 'm-7')), alice, 'm-7')).toEqual({ seq: 7, digest: 'd-7', delivered_at: expect.any(Number) });
    expect(records.q.countSent.get()).toEqual({ n: 503 });
  });

  it('are written before close() resolves, even right after they were handed over', async () => {
    const { records, onFile } = open();
    let written = false;
    records.write(recordColumns(batch(1, 50)), () => (written = true));
    await records.close();
    expect(written).toBe(true);
    expect(onFile()).toHaveLength(50);
  });

  it('are tried again when a write fails, and none is lost', async () => {
    const { records, path, lines, onFile } = open();
    // A database that refuses the inserts for a while (as a full disk would).
    const allow = refuseInserts(path, newestSegment(path));
    let written = false;
    records.write(recordColumns(batch(1, 20)), () => (written = true));
    await eventually(() => lines.find((l) => l.includes('could not write idempotency records') && l.includes('refused for the test')), 'the warning');
    expect(written).toBe(false);
    expect(onFile()).toEqual([]);
    allow();
    await eventually(() => written, 'the retry');
    expect(onFile()).toHaveLength(20);
  });

  it('are written by this thread when the worker cannot start, with a warning', async () => {
    const { records, lines, onFile } = open(join(import.meta.dirname, 'no-such-module.cjs'));
    await eventually(() => lines.find((l) => l.includes('idempotency records are written in the event loop again')), 'the warning');
    let seen: string[] | undefined;
    records.write(recordColumns(batch(1, 5)), () => (seen = onFile()));
    // Synchronously now: in the file by the time write() returns.
    expect(seen).toEqual(['m-1', 'm-2', 'm-3', 'm-4', 'm-5']);
    records.prune(Date.now() + 1);
    expect(onFile()).toEqual([]);
  });

  it('are kept in segments, all found through the one view, before and after a restart', async () => {
    const { records, path, onFile } = open(undefined, { segmentRows: 100 });
    // Each write is a group of its own: the worker starts a new segment after each of the first three.
    for (const from of [1, 121, 241]) await write(records, batch(from, 120), onFile);
    await write(records, batch(361, 40), onFile);
    expect(recordSegments(path)).toEqual({ sent_1: 120, sent_2: 120, sent_3: 120, sent_4: 40 });
    for (const n of [5, 130, 250, 399]) expect(records.q.getSent.get(hash52(recordKey(alice, `m-${n}`)), alice, `m-${n}`)).toMatchObject({ seq: n, digest: `d-${n}` });
    expect(records.q.countSent.get()).toEqual({ n: 400 });
    expect(records.q.sentAfter.all(100, 50).map(([seq]) => seq)).toEqual(Array.from({ length: 50 }, (_, i) => 101 + i));
    expect(records.q.maxSentSeq.get()).toEqual({ m: 400 });
    await records.close();

    const again = open(undefined, { segmentRows: 100, path });
    expect(again.records.q.getSent.get(hash52(recordKey(alice, 'm-7')), alice, 'm-7')).toMatchObject({ seq: 7 });
    // The newest segment goes on from its 40 records.
    await write(again.records, batch(401, 70), onFile);
    expect(recordSegments(path)).toEqual({ sent_1: 120, sent_2: 120, sent_3: 120, sent_4: 110, sent_5: 0 });
    expect(again.onFile()).toEqual(Array.from({ length: 470 }, (_, i) => `m-${i + 1}`));
  });

  it('of a file from before the segments are still found, and new ones are written beside them', async () => {
    const path = join(newDir(), 'relay-records.db');
    const old = new Database(path);
    migrate(old, recordFileMigrations.slice(0, 1));
    const insert = old.prepare('INSERT INTO sent (seq, key, sender, id, digest, at, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
    for (const r of batch(1, 3)) insert.run(r);
    old.close();
    const { records, onFile } = open(undefined, { path });
    expect(records.q.getSent.get(hash52(recordKey(alice, 'm-2')), alice, 'm-2')).toMatchObject({ seq: 2, digest: 'd-2' });
    expect(await write(records, batch(4, 2), onFile)).toEqual(['m-1', 'm-2', 'm-3', 'm-4', 'm-5']);
    expect(recordSegments(path)).toEqual({ sent_1: 5 });
  });

  it('older than the retention: whole segments dropped, and the rest of them deleted from the others', async () => {
    const { records, path, onFile } = open(undefined, { segmentRows: 10 });
    await write(records, batch(1, 12, 1_000), onFile);
    await write(records, [...batch(13, 5, 1_000), ...batch(18, 7, 5_000)], onFile);
    await write(records, batch(25, 3, 5_000), onFile);
    expect(recordSegments(path)).toEqual({ sent_1: 12, sent_2: 12, sent_3: 3 });
    records.prune(2_000);
    await eventually(() => onFile().length === 10, 'the prune');
    expect(recordSegments(path)).toEqual({ sent_2: 7, sent_3: 3 });
    expect(onFile()).toEqual(Array.from({ length: 10 }, (_, i) => `m-${18 + i}`));
    // The worker counts on from what is left: 3 + 8 records fill the newest segment.
    await write(records, batch(28, 8, 5_000), onFile);
    expect(recordSegments(path)).toEqual({ sent_2: 7, sent_3: 11, sent_4: 0 });
    expect(records.q.countSent.get()).toEqual({ n: 18 });
  });

  it('older than the retention are pruned by the worker', async () => {
    const { records, onFile } = open();
    await write(records, batch(1, 3, 1_000), onFile);
    await write(records, batch(4, 2), onFile);
    records.prune(2_000);
    await eventually(() => onFile().length === 2, 'the prune');
    expect(onFile()).toEqual(['m-4', 'm-5']);
  });
});
