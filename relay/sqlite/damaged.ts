// SQLite's word for a file, or a page of it, that is not a database it can read (a disk
// fault, a partial copy, an edit by hand): what opens or touches it fails with one of these.
import Database from 'better-sqlite3';

export const isDamaged = (error: unknown): boolean => error instanceof Database.SqliteError && /^SQLITE_(NOTADB|CORRUPT)/.test(error.code);
