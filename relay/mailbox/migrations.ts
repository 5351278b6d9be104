// The relay database's schema history. Append; never edit a shipped migration.
import type { Migration } from '../sqlite/migrate.ts';
import { boxKey, hash52 } from './bloom.ts';

export const relayMigrations: readonly Migration[] = [
  // 1: relay identity, directory, mailbox, idempotency records
  (db) => {
    db.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
      CREATE TABLE users (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        id_key TEXT NOT NULL,
        ka_key TEXT NOT NULL,
        ka_sig TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        rev INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE mailbox (
        seq INTEGER PRIMARY KEY,
        recipient TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('message', 'receipt')),
        sender TEXT NOT NULL,
        msg_id TEXT,
        body TEXT NOT NULL,
        sent_at INTEGER,
        at INTEGER NOT NULL,
        size INTEGER NOT NULL
      );
      CREATE INDEX mailbox_by_recipient ON mailbox (recipient, seq);
      CREATE TABLE sent (
        sender TEXT NOT NULL,
        id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        digest TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (sender, id)
      ) WITHOUT ROWID;
      CREATE INDEX sent_by_age ON sent (at);
    `);
  },
  // 2: a send answered with its delivery (the recipient took it before it was written)
  // answers its retries the same way
  (db) => {
    db.exec('ALTER TABLE sent ADD COLUMN delivered_at INTEGER');
  },
  // 3: the directory's changes since a rev (directory:changes)
  (db) => {
    db.exec('CREATE INDEX users_by_rev ON users (rev)');
  },
  // 4: records in seq order, found through a small hash index: a new record is an append
  // plus two small index entries, where it was an insert at a random place in a wide table
  (db) => {
    db.function('parley_record_key', { deterministic: true }, (sender: unknown, id: unknown) => hash52(`${String(sender)}\n${String(id)}`));
    db.exec(`
      ALTER TABLE sent RENAME TO sent_v1;
      CREATE TABLE sent (
        seq INTEGER PRIMARY KEY,
        key INTEGER NOT NULL,
        sender TEXT NOT NULL,
        id TEXT NOT NULL,
        digest TEXT NOT NULL,
        at INTEGER NOT NULL,
        delivered_at INTEGER
      );
      INSERT OR IGNORE INTO sent (seq, key, sender, id, digest, at, delivered_at)
        SELECT seq, parley_record_key(sender, id), sender, id, digest, at, delivered_at FROM sent_v1 ORDER BY seq;
      DROP TABLE sent_v1;
      CREATE INDEX sent_by_key ON sent (key);
      CREATE INDEX sent_by_age ON sent (at);
    `);
  },
  // 5: mailbox rows that cannot be read (edited by hand, or written by a faulty version), moved
  // here as they were, for an operator: left in the mailbox they failed every page of it. The
  // columns take any value, as the rows may hold anything.
  (db) => {
    db.exec(`
      CREATE TABLE dead_letters (
        seq INTEGER PRIMARY KEY,
        recipient, kind, sender, msg_id, body, sent_at, at, size,
        set_aside_at INTEGER NOT NULL
      );
    `);
  },
  // 6: the mailbox indexed by an integer key of the recipient (boxKey(): a hash, so queries
  // also compare the recipient) instead of the recipient's text: a new row's index entry is
  // a fifth of the size, and a commit of offline messages ~2 µs a row cheaper
  (db) => {
    db.function('parley_box_key', { deterministic: true }, (recipient: unknown) => boxKey(String(recipient)));
    db.exec(`
      ALTER TABLE mailbox ADD COLUMN box INTEGER;
      UPDATE mailbox SET box = parley_box_key(recipient);
      DROP INDEX mailbox_by_recipient;
      CREATE INDEX mailbox_by_box ON mailbox (box, seq);
    `);
  },
];

/**
 * The record file (record-file.ts): the same `sent` table as relay.db's since its migration 4
 * (whose text is frozen, so it is written out again here).
 */
export const recordFileMigrations: readonly Migration[] = [
  (db) => {
    db.exec(`
      CREATE TABLE sent (
        seq INTEGER PRIMARY KEY,
        key INTEGER NOT NULL,
        sender TEXT NOT NULL,
        id TEXT NOT NULL,
        digest TEXT NOT NULL,
        at INTEGER NOT NULL,
        delivered_at INTEGER
      );
      CREATE INDEX sent_by_key ON sent (key);
      CREATE INDEX sent_by_age ON sent (at);
    `);
  },
  (db) => {
    // Segments (record-file.ts): the records so far are the first; `sent` becomes a view of them.
    db.exec(`
      ALTER TABLE sent RENAME TO sent_1;
      CREATE VIEW sent AS SELECT seq, key, sender, id, digest, at, delivered_at FROM sent_1;
      CREATE TRIGGER sent_insert INSTEAD OF INSERT ON sent BEGIN
        INSERT OR IGNORE INTO sent_1 (seq, key, sender, id, digest, at, delivered_at)
        VALUES (NEW.seq, NEW.key, NEW.sender, NEW.id, NEW.digest, NEW.at, NEW.delivered_at);
      END;
      CREATE TRIGGER sent_delete INSTEAD OF DELETE ON sent BEGIN DELETE FROM sent_1 WHERE seq = OLD.seq; END;
    `);
  },
];
