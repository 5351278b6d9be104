// Test support: reads a SQLite database (a relay's mailbox, a core's history) the way another
// process would, through its own read-only connection, opened for the one read and closed after.
// (WAL: a reader never waits for the writer, nor holds it up once closed.)
import Database from 'better-sqlite3';

/** Opens `path` read-only (it must exist), runs `read` on it, and closes it whatever `read` did. */
export function readDb<T>(path: string, read: (db: Database.Database) => T): T {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}
