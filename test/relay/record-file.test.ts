// The idempotency records, written by a worker thread into a
// file of their own (relay/mailbox/record-file.ts): when they are there, and that a
// failed write is tried again, and a failed worker leaves the writing to the event loop.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openRecordFile, type RecordFile } from '../../relay/mailbox/record-file.ts';
import type { PendingSent } from '../../relay/mailbox/write-behind.ts';
import { hash52 } from '../../relay/mailbox/bloom.ts';
import { recordKey } from '../../relay/mailbox/store.ts';
import { createLogger } from '../../relay/log.ts';
import { eventually, tempDir } from '../support/relay.ts';
import { readDb, refuseInserts } from '../support/db.ts';

const alice = 'a'.repeat(32);
const dirs: { remove: () => void }[] = [];
const opened: RecordFile[] = [];
afterEach(async () => {
  for (const r of opened.splice(0)) await r.close();
  for (const d of dirs.splice(0)) d.remove();
});

function open(module?: string) {
  const dir = tempDir();
  dirs.push(dir);
  const path = join(dir.path, 'relay-records.db');
  const lines: string[] = [];
  const records = openRecordFile({ path, durability: 'normal', log: createLogger({ write: (line) => lines.push(line) }), ...(module ? { module } : {}) });
  opened.push(records);
  /** The ids on file, as another process reads them. */
  const onFile = () => readDb(path, (db) => db.prepare('SELECT id FROM sent ORDER BY seq').all().map((r) => (r as { id: string }).id));
  return { records, path, lines, onFile };
}

/** Records as write-behind hands them over (only these fields are written). */
const batch = (from: number, count: number, at = Date.now()) =>
  Array.from({ length: count }, (_, i): PendingSent => {
    const key = recordKey(alice, `m-${from + i}`);
    return { key, hash: hash52(key), from: alice, id: `m-${from + i}`, seq: from + i, digest: `d-${from + i}`, at, deliveredAt: at + 1 } as PendingSent;
  });

/** Resolves at `written`, with what the file held then. */
const write = (records: RecordFile, sent: PendingSent[], onFile: () => string[]) => new Promise<string[]>((resolve) => records.write(sent, () => resolve(onFile())));

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
    records.write(batch(1, 50), () => (written = true));
    await records.close();
    expect(written).toBe(true);
    expect(onFile()).toHaveLength(50);
  });

  it('are tried again when a write fails, and none is lost', async () => {
    const { records, path, lines, onFile } = open();
    // A database that refuses the inserts for a while (as a full disk would).
    const allow = refuseInserts(path, 'sent');
    let written = false;
    records.write(batch(1, 20), () => (written = true));
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
    records.write(batch(1, 5), () => (seen = onFile()));
    // Synchronously now: in the file by the time write() returns.
    expect(seen).toEqual(['m-1', 'm-2', 'm-3', 'm-4', 'm-5']);
    records.prune(Date.now() + 1);
    expect(onFile()).toEqual([]);
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
