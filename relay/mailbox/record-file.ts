// The (sender, id) idempotency records, in a file of their own (`relay-records.db` beside
// `relay.db`), written by a worker thread. Until the worker says a batch is in the file, its
// records stay in memory (record-batch.ts), where the store's lookups find them; after, this
// connection finds them in the file.
//
// A record is an entry at a random place in a key index, so a commit dirties a page of that
// index per record until it holds more records than the index has pages; the larger the index,
// the more pages a commit writes. Two things keep that small:
// - Records come in batches of up to a quarter second's (record-batch.ts), so that a commit
//   shares those pages among more records.
// - The records are kept in segments, tables `sent_1`, `sent_2`, ... each with its own key
//   index, and `sent` is a view of them all (a lookup searches each segment's index; the view
//   sends an insert to the newest segment, a delete to all). The worker starts a new segment
//   once the newest holds SEGMENT_ROWS records, or an eighth of those in the older ones (so
//   that a relay that keeps many records has tens of segments, not thousands). Over two million
//   records, in commits of 32,768: 2.9 µs a record, flat, against 6.8 on average and 9.6 at
//   the end with one index. A prune drops a segment whose records are all older than the
//   retention and deletes the expired records of the others.
//
// Should the worker fail, this connection writes the batches itself, through the view, as the
// event loop's work again (logged once); it starts no segment. A batch that fails to be written
// is tried again a second later.
import Database from 'better-sqlite3';
import type { Logger } from '../log.ts';
import { migrate, tune } from '../sqlite/migrate.ts';
import { startSqliteWorker } from '../sqlite/worker.ts';
import { recordFileMigrations } from './migrations.ts';
import { prepareRecordQueries, type RecordRow } from './sqlite-rows.ts';
import { recordRows, type RecordColumns } from './record-batch.ts';

export interface RecordFileOptions {
  /** The file; created if missing. */
  path: string;
  durability: 'normal' | 'full';
  log: Logger;
  /** The better-sqlite3 module the worker loads (tests make it fail). Default: this process's. */
  module?: string;
  /** Records in a segment before the worker starts the next (see above). Default SEGMENT_ROWS. */
  segmentRows?: number;
}

type Job = { records: RecordColumns } | { prune: number };
interface Posted {
  job: Job;
  /** Called once the job is done (a batch: its records are in the file). */
  done: () => void;
}

const RETRY_MS = 1_000;
/** The least a segment holds before the next is started. */
export const SEGMENT_ROWS = 262_144;
/** A segment's columns: those of relay.db's `sent` (migrations.ts). */
const COLUMNS = 'seq, key, sender, id, digest, at, delivered_at';
const SEGMENT = 'seq INTEGER PRIMARY KEY, key INTEGER NOT NULL, sender TEXT NOT NULL, id TEXT NOT NULL, digest TEXT NOT NULL, at INTEGER NOT NULL, delivered_at INTEGER';

// The worker: the only one to start or drop segments, so its own count of the newest
// segment's records (and of the older ones') holds; the state changes once a commit has.
const body = `
db.pragma('synchronous = ' + workerData.data.synchronous);
const { columns, segment, segmentRows } = workerData.data;
const values = columns.split(', ').map((c) => 'NEW.' + c).join(', ');
const countOf = (n) => db.prepare('SELECT count(*) FROM sent_' + n).pluck().get();
let nos = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name GLOB 'sent_[0-9]*'").pluck().all()
  .map((name) => Number(name.slice(5))).sort((a, b) => a - b);
const newest = () => nos[nos.length - 1];
let rows = countOf(newest());
let older = nos.slice(0, -1).reduce((sum, n) => sum + countOf(n), 0);
const insertInto = (n) => db.prepare('INSERT OR IGNORE INTO sent_' + n + ' (' + columns + ') VALUES (?, ?, ?, ?, ?, ?, ?)');
let insert = insertInto(newest());
/** The view of the segments \`list\`, and where it sends inserts and deletes. */
function shape(list) {
  const last = list[list.length - 1];
  db.exec('DROP VIEW sent; CREATE VIEW sent AS ' + list.map((n) => 'SELECT ' + columns + ' FROM sent_' + n).join(' UNION ALL ') + ';'
    + ' CREATE TRIGGER sent_insert INSTEAD OF INSERT ON sent BEGIN INSERT OR IGNORE INTO sent_' + last + ' (' + columns + ') VALUES (' + values + '); END;'
    + ' CREATE TRIGGER sent_delete INSTEAD OF DELETE ON sent BEGIN ' + list.map((n) => 'DELETE FROM sent_' + n + ' WHERE seq = OLD.seq;').join(' ') + ' END;');
}
// Columns (record-batch.ts): a delivery time of NaN is none.
const write = db.transaction((c) => {
  for (let i = 0; i < c.count; i++) {
    const delivered = c.deliveredAt[i];
    insert.run(c.seq[i], c.hash[i], c.sender[i], c.id[i], c.digest[i], c.at[i], delivered === delivered ? delivered : null);
  }
  if (rows + c.count < Math.max(segmentRows, older / 8)) return false;
  const next = newest() + 1;
  db.exec('CREATE TABLE sent_' + next + ' (' + segment + '); CREATE INDEX sent_' + next + '_by_key ON sent_' + next + ' (key);');
  shape([...nos, next]);
  return true;
});
const prune = db.transaction((before) => {
  const keep = nos.filter((n) => n === newest() || db.prepare('SELECT 1 FROM sent_' + n + ' WHERE at >= ? LIMIT 1').get(before));
  for (const n of nos) if (!keep.includes(n)) db.exec('DROP TABLE sent_' + n);
  if (keep.length < nos.length) shape(keep);
  const left = keep.map((n) => countOf(n) - db.prepare('DELETE FROM sent_' + n + ' WHERE at < ?').run(before).changes);
  return { keep, left };
});
function handle(job) {
  if (job.records) {
    const rolled = write(job.records);
    rows += job.records.count;
    if (rolled) {
      older += rows;
      rows = 0;
      nos.push(newest() + 1);
      insert = insertInto(newest());
    }
  } else {
    const { keep, left } = prune(job.prune);
    nos = keep;
    rows = left[left.length - 1];
    older = left.slice(0, -1).reduce((sum, n) => sum + n, 0);
  }
}
`;

export type RecordFile = ReturnType<typeof openRecordFile>;

export function openRecordFile({ path, durability, log, module, segmentRows = SEGMENT_ROWS }: RecordFileOptions) {
  const db = new Database(path);
  let created: boolean;
  try {
    tune(db, durability);
    created = migrate(db, recordFileMigrations).from === 0;
  } catch (error) {
    db.close();
    throw error;
  }
  const q = prepareRecordQueries(db);
  const writeHere = db.transaction((rows: RecordRow[]) => {
    for (const row of rows) q.insertSent.run(...row);
  });

  /** Posted to the worker, answered in this order. */
  const posted: Posted[] = [];
  /** Jobs to try again. */
  let waiting: Posted[] = [];
  let retryTimer: NodeJS.Timeout | undefined;
  let inWorker = true;
  let closed = false;

  const retryLater = (p: Posted) => {
    waiting.push(p);
    if (!closed) retryTimer ??= setTimeout(retry, RETRY_MS).unref();
  };
  function retry(): void {
    retryTimer = undefined;
    const again = waiting;
    waiting = [];
    for (const p of again) send(p);
  }
  /** In this thread: the fallback, and what is left at close. */
  const runHere = (p: Posted) => {
    try {
      if ('records' in p.job) writeHere(recordRows(p.job.records));
      else q.pruneSent.run(p.job.prune);
      p.done();
    } catch (error) {
      log.warn('could not write idempotency records; trying again', { error: String(error) });
      if ('records' in p.job) retryLater(p);
    }
  };
  const send = (p: Posted) => {
    if (!inWorker) return runHere(p);
    posted.push(p);
    worker.post(p.job);
  };

  const worker = startSqliteWorker<undefined>({
    path,
    body,
    data: { columns: COLUMNS, segment: SEGMENT, segmentRows, synchronous: durability === 'full' ? 'FULL' : 'NORMAL' },
    ...(module ? { module } : {}),
    reply(reply) {
      const p = posted.shift();
      if (!p) return;
      if (reply.ok) return p.done();
      log.warn('could not write idempotency records; trying again', { error: reply.error });
      if ('records' in p.job) retryLater(p);
    },
    failed(why) {
      if (closed) return;
      inWorker = false;
      log.warn('idempotency records are written in the event loop again', { why });
      for (const p of posted.splice(0)) runHere(p);
    },
  });

  return {
    /** The file's records (those the worker has not written yet are the caller's to find). */
    q,
    /** The file was new: whatever records it held before are gone (see the store's rebuild). */
    created,
    /** Writes the records; `written` is called once they are all in the file. */
    write(records: RecordColumns, written: () => void): void {
      if (records.count === 0) return written();
      send({ job: { records }, done: written });
    },
    /** Writes the rows in this thread, now; throws if it cannot. */
    writeHere: (rows: RecordRow[]): void => writeHere(rows),
    /** Deletes the records older than `before` (ms since the epoch). */
    prune(before: number): void {
      send({ job: { prune: before }, done: () => undefined });
    },
    /** Writes what waits, stops the worker, closes the file. */
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      clearTimeout(retryTimer);
      retry();
      await worker.close();
      // Anything the worker did not answer is written here (a second insert of a record changes nothing).
      inWorker = false;
      for (const p of [...posted.splice(0), ...waiting.splice(0)]) runHere(p);
      const lost = waiting.reduce((n, p) => n + ('records' in p.job ? p.job.records.count : 0), 0);
      if (lost > 0) log.error('idempotency records could not be written; a resend of one of those messages would be delivered again', { records: lost });
      db.close();
    },
  };
}
