// Numbered migrations run in one transaction against PRAGMA user_version.
// Shared by the relay's store and the app's history (main/core/history).
import type { Database } from 'better-sqlite3';

/** Migration N (1-based) is `migrations[N - 1]`; never edit one that has shipped, add the next. */
export type Migration = (db: Database) => void;

export function migrate(db: Database, migrations: readonly Migration[]): { from: number; to: number } {
  const from = db.pragma('user_version', { simple: true }) as number;
  if (from > migrations.length) {
    throw new Error(`database schema ${from} is newer than this program knows (${migrations.length}); update Parley`);
  }
  db.transaction(() => {
    for (let version = from; version < migrations.length; version++) {
      migrations[version]?.(db);
    }
    db.pragma(`user_version = ${migrations.length}`);
  }).immediate();
  return { from, to: migrations.length };
}

/**
 * The pragmas every Parley database runs with. `maxPageCount`: a cap on the file's size in
 * pages (SQLite's max_page_count); a write that would grow it further fails as on a full disk.
 */
export function tune(db: Database, durability: 'normal' | 'full', maxPageCount?: number): void {
  if (maxPageCount !== undefined && !(Number.isSafeInteger(maxPageCount) && maxPageCount > 0)) {
    throw new RangeError('maxPageCount must be a positive integer');
  }
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`);
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 1000');
  if (maxPageCount !== undefined) db.pragma(`max_page_count = ${maxPageCount}`);
}
