// The history database's schema history. Append; never edit a shipped migration.
import type { Migration } from '../../../relay/sqlite/migrate.ts';

export const historyMigrations: readonly Migration[] = [
  // 1: peers, messages (with full-text search), settings
  (db) => {
    db.exec(`
      CREATE TABLE peers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        id_key TEXT NOT NULL,
        ka_key TEXT NOT NULL,
        -- A new key-agreement key (signed by the same identity key) waits here until the user accepts it.
        pending_ka_key TEXT,
        verified INTEGER NOT NULL DEFAULT 0,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL DEFAULT 0
      ) WITHOUT ROWID;

      CREATE TABLE messages (
        n INTEGER PRIMARY KEY,               -- local order: the order the conversation is shown in
        id TEXT NOT NULL,                    -- the sender's message id
        peer TEXT NOT NULL REFERENCES peers (id),
        direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        text TEXT NOT NULL,
        sealed TEXT,                         -- out: the encrypted body, reused by every retry of this id
        state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'delivered', 'read', 'failed', 'received')),
        error TEXT,                          -- why it failed (out) or could not be trusted (in)
        flagged INTEGER NOT NULL DEFAULT 0,  -- in: failed to decrypt or authenticate; never shown as genuine
        seq INTEGER,                         -- the relay's order for it
        sent_at INTEGER NOT NULL,            -- the sender's clock
        created_at INTEGER NOT NULL,         -- this machine's clock when stored
        read_at INTEGER,                     -- in: when the user saw it
        UNIQUE (peer, id)
      );
      CREATE INDEX messages_by_peer ON messages (peer, n);
      CREATE INDEX messages_unread ON messages (peer) WHERE direction = 'in' AND read_at IS NULL;
      CREATE INDEX messages_outbox ON messages (n) WHERE state = 'queued';

      CREATE VIRTUAL TABLE messages_fts USING fts5 (text, content = 'messages', content_rowid = 'n', tokenize = 'unicode61 remove_diacritics 2');
      CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, text) VALUES (new.n, new.text);
      END;
      CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.n, old.text);
      END;
      CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.n, old.text);
        INSERT INTO messages_fts (rowid, text) VALUES (new.n, new.text);
      END;

      -- Unread counts kept by triggers, so reading them costs one row per peer, whatever the history's size.
      CREATE TABLE unread (peer TEXT PRIMARY KEY REFERENCES peers (id), count INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TRIGGER unread_on_insert AFTER INSERT ON messages WHEN new.direction = 'in' AND new.read_at IS NULL BEGIN
        INSERT INTO unread (peer, count) VALUES (new.peer, 1) ON CONFLICT (peer) DO UPDATE SET count = count + 1;
      END;
      CREATE TRIGGER unread_on_read AFTER UPDATE OF read_at ON messages
        WHEN new.direction = 'in' AND old.read_at IS NULL AND new.read_at IS NOT NULL BEGIN
        UPDATE unread SET count = count - 1 WHERE peer = new.peer;
      END;

      CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    `);
  },
  // 2: read receipts the relay has not acknowledged yet, so they survive a restart
  (db) => {
    db.exec(`
      CREATE TABLE unsent_reads (peer TEXT NOT NULL REFERENCES peers (id), id TEXT NOT NULL, PRIMARY KEY (peer, id)) WITHOUT ROWID;
      -- Reading a message queues its receipt in the same statement, so neither can be without the other.
      -- (An unverified message sends none: its sender is not known to be who it says.)
      CREATE TRIGGER unsent_read_on_read AFTER UPDATE OF read_at ON messages
        WHEN new.direction = 'in' AND new.flagged = 0 AND old.read_at IS NULL AND new.read_at IS NOT NULL BEGIN
        INSERT OR IGNORE INTO unsent_reads (peer, id) VALUES (new.peer, new.id);
      END;
    `);
  },
  // 3: what the user has written in a conversation and not sent yet
  (db) => {
    db.exec('CREATE TABLE drafts (peer TEXT PRIMARY KEY REFERENCES peers (id), text TEXT NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID;');
  },
  // 4: messages the user deleted from this computer
  (db) => {
    db.exec(`
      -- A deleted incoming message's id stays, so that the relay delivering it again (its
      -- acknowledgement was lost) does not bring it back.
      CREATE TABLE removed (peer TEXT NOT NULL REFERENCES peers (id), id TEXT NOT NULL, PRIMARY KEY (peer, id)) WITHOUT ROWID;
      -- The highest n a deleted message had: SQLite gives max(n) + 1 to a new row, which would
      -- give a deleted newest message's n again; the window relies on n only ever growing.
      CREATE TABLE removed_n (one INTEGER PRIMARY KEY CHECK (one = 1), n INTEGER NOT NULL);
      CREATE TRIGGER removed_n_on_delete AFTER DELETE ON messages BEGIN
        INSERT INTO removed_n (one, n) VALUES (1, old.n) ON CONFLICT (one) DO UPDATE SET n = max(n, excluded.n);
      END;
      CREATE TRIGGER unread_on_delete AFTER DELETE ON messages WHEN old.direction = 'in' AND old.read_at IS NULL BEGIN
        UPDATE unread SET count = count - 1 WHERE peer = old.peer;
      END;
      -- out, queued: a request carried it and no answer settled it, so the relay may have it.
      ALTER TABLE messages ADD COLUMN attempted INTEGER NOT NULL DEFAULT 0;
    `);
  },
];
