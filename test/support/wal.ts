// Test support: counts the commits made to a SQLite database in WAL mode from outside the
// connection that makes them, with no hook in the code under test.
//
// Every commit appends its pages to the -wal file; the last frame of a commit carries the
// database size after it (nonzero), other frames carry 0. A checkpoint copies frames back to
// the database, and the next writer may then restart the log from the top, overwriting them:
// so a read-only connection holds one read transaction open from the start. A checkpoint may
// not go past a reader's snapshot, nor the log restart under it, so the log only grows and
// still holds every commit made since. (PRAGMA data_version cannot count them: it moves once
// per change a connection notices, however many commits that change took.)
//
// With SQLite's powersafe-overwrite off, a synchronous commit may pad the log to a sector
// boundary with copies of its last frame; they would count as extra commits, so the count can
// only be too high, never hide one. Unix builds default to powersafe-overwrite on.
import Database from 'better-sqlite3';
import { closeSync, openSync, readSync } from 'node:fs';

export interface WalCommits {
  /** Commits in the log since the start of the watch (and before, back to the log's last restart). */
  count(): number;
  close(): void;
}

const HEADER = 32;
const FRAME_HEADER = 24;

function readLog(walPath: string): { salt: [number, number]; commits: number } {
  const fd = openSync(walPath, 'r');
  try {
    const header = Buffer.alloc(HEADER);
    if (readSync(fd, header, 0, HEADER, 0) < HEADER) throw new Error(`${walPath}: no WAL header`);
    const pageSize = header.readUInt32BE(8);
    const salt: [number, number] = [header.readUInt32BE(16), header.readUInt32BE(20)];
    const frame = Buffer.alloc(FRAME_HEADER);
    let commits = 0;
    for (let at = HEADER; readSync(fd, frame, 0, FRAME_HEADER, at) === FRAME_HEADER; at += FRAME_HEADER + pageSize) {
      // A frame of an older generation of the log (before a restart) is past the end.
      if (frame.readUInt32BE(8) !== salt[0] || frame.readUInt32BE(12) !== salt[1]) break;
      if (frame.readUInt32BE(4) !== 0) commits += 1;
    }
    return { salt, commits };
  } finally {
    closeSync(fd);
  }
}

/** Starts watching; the database must be in WAL mode with a log that holds frames not yet checkpointed (e.g. just after it was opened and migrated). */
export function watchWalCommits(dbPath: string): WalCommits {
  const reader = new Database(dbPath, { readonly: true, fileMustExist: true });
  reader.exec('BEGIN');
  reader.prepare('SELECT count(*) FROM sqlite_schema').get();
  const walPath = `${dbPath}-wal`;
  const { salt } = readLog(walPath);
  return {
    count() {
      const now = readLog(walPath);
      // A restart under the reader means it held nothing (it read a fully checkpointed log):
      // the count would miss commits, so it refuses.
      if (now.salt[0] !== salt[0] || now.salt[1] !== salt[1]) throw new Error(`${walPath} was restarted during the watch; commits cannot be counted`);
      return now.commits;
    },
    close() {
      if (reader.inTransaction) reader.exec('COMMIT');
      reader.close();
    },
  };
}
