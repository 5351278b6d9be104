// Test support: reads a SQLite database (a relay's mailbox, a core's history) the way another
// process would, through its own read-only connection, opened for the one read and closed after.
// (WAL: a reader never waits for the writer, nor holds it up once closed.)
import Database from 'better-sqlite3';
import { recordFilePath } from '../../relay/mailbox/sqlite.ts';

/** Opens `path` read-only (it must exist), runs `read` on it, and closes it whatever `read` did. */
export function readDb<T>(path: string, read: (db: Database.Database) => T): T {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

export interface RelayRecord {
  seq: number;
  sender: string;
  id: string;
  deliveredAt: number | null;
}

/**
 * A relay's idempotency records, in seq order: those in `relay.db` (of messages that were
 * written before the record file) and those in the record file beside it.
 */
export function relayRecords(dbPath: string): RelayRecord[] {
  const read = (path: string) => readDb(path, (db) => db.prepare('SELECT seq, sender, id, delivered_at AS deliveredAt FROM sent').all() as RelayRecord[]);
  return [...read(dbPath), ...read(recordFilePath(dbPath))].sort((a, b) => a.seq - b.seq);
}

/** The record file's segments (relay/mailbox/record-file.ts) and their records, oldest first. */
export function recordSegments(recordFile: string): Record<string, number> {
  return readDb(recordFile, (db) => {
    const names = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name GLOB 'sent_[0-9]*'").pluck().all() as string[];
    names.sort((a, b) => Number(a.slice('sent_'.length)) - Number(b.slice('sent_'.length)));
    return Object.fromEntries(names.map((name) => [name, db.prepare(`SELECT count(*) FROM ${name}`).pluck().get() as number]));
  });
}

/** The record file's newest segment, where its records are inserted. */
export function newestSegment(recordFile: string): string {
  const newest = Object.keys(recordSegments(recordFile)).at(-1);
  if (!newest) throw new Error(`${recordFile} has no segments`);
  return newest;
}

/**
 * Makes the database at `path` refuse inserts into `table` (as a full disk would) until the
 * returned function is called, through a connection of its own.
 */
export function refuseInserts(path: string, table: string): () => void {
  const admin = new Database(path);
  admin.exec(`CREATE TABLE refuse (x); INSERT INTO refuse VALUES (1);
    CREATE TRIGGER refuse_inserts BEFORE INSERT ON ${table} WHEN (SELECT count(*) FROM refuse) > 0 BEGIN SELECT RAISE(ABORT, 'refused for the test'); END;`);
  return () => {
    admin.exec('DELETE FROM refuse');
    admin.close();
  };
}
