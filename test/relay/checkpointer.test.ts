// WAL checkpoints in a worker thread (relay/sqlite/checkpointer.ts): what reaches the database
// file, and that a failed worker leaves the writer checkpointing by itself.
import Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startCheckpointer } from '../../relay/sqlite/checkpointer.ts';
import { tune } from '../../relay/sqlite/migrate.ts';
import { createLogger } from '../../relay/log.ts';
import { eventually, tempDir } from '../support/relay.ts';

const dirs: { remove: () => void }[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove();
});

function open() {
  const dir = tempDir();
  dirs.push(dir);
  const file = join(dir.path, 'relay.db');
  const db = new Database(file);
  tune(db, 'normal');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  const insert = db.prepare<[string]>('INSERT INTO t (body) VALUES (?)');
  /** `commits` commits of `rows` rows of 1,000 bytes. */
  const write = (commits: number, rows: number) => {
    for (let c = 0; c < commits; c++) db.transaction(() => {
      for (let r = 0; r < rows; r++) insert.run('x'.repeat(1000));
    })();
  };
  return { db, file, write };
}

describe('WAL checkpoints in a worker thread', () => {
  it('closes its connection first, so that the writer, closing last, folds the whole WAL into the file', async () => {
    const { db, file, write } = open();
    const checkpoints = startCheckpointer(db, createLogger({ write: () => undefined }));
    write(50, 10);
    checkpoints.committed();
    await eventually(() => statSync(file).size > 500_000, 'the worker to copy the WAL into the file');
    await checkpoints.close();
    db.close();
    expect(existsSync(`${file}-wal`), 'the WAL is gone once both connections closed').toBe(false);
    const reader = new Database(file, { readonly: true });
    expect(reader.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 500 });
    reader.close();
  });

  it('leaves checkpoints to the writer again when its worker cannot start, with a warning', async () => {
    const { db, file, write } = open();
    const lines: string[] = [];
    const checkpoints = startCheckpointer(db, createLogger({ write: (line) => lines.push(line) }), { module: join(import.meta.dirname, 'no-such-module.cjs') });
    await eventually(() => lines.find((l) => l.includes('checkpoints run in the event loop again')), 'the warning');
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    // Well over 1,000 pages of WAL: the writer's own commits checkpoint it, in step.
    write(20, 300);
    expect(statSync(file).size).toBeGreaterThan(4_000_000);
    await checkpoints.close();
    db.close();
  });
});
