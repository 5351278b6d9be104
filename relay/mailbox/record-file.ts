// The (sender, id) idempotency records, in a file of their own (`relay-records.db` beside
// `relay.db`), written by a worker thread. A record is an entry at a random place in a hash
// index, which dirties a page of it per record and cost ~5-10 µs in the writer's commit: a
// sixth of the relay's event loop under a full online load. Here nothing else waits for that
// file's lock, and the event loop only posts the batches. Until the worker says a batch is in
// the file, its records stay in write-behind's memory, where the store's lookups find them;
// after, this connection finds them in the file.
//
// The batches handed over are posted to the worker in groups (GROUP_ROWS, GROUP_MS): the key
// index takes each record at a random place, so a commit dirties a page of it per record until
// it has more records than the index has pages; a larger commit shares those pages. Over the
// first two million records, commits of 3,500 cost 13 µs a record on average (18 at the end),
// of 32,768 about 7 (10 at the end).
//
// Should the worker fail, this connection writes the batches itself, as the event loop's work
// again (logged once). A batch that fails to be written is tried again a second later.
import Database from 'better-sqlite3';
import type { Logger } from '../log.ts';
import { migrate, tune } from '../sqlite/migrate.ts';
import { startSqliteWorker } from '../sqlite/worker.ts';
import { recordFileMigrations } from './migrations.ts';
import { RECORD_SQL, prepareRecordQueries, type RecordRow } from './sqlite-rows.ts';
import type { PendingSent } from './write-behind.ts';

export interface RecordFileOptions {
  /** The file; created if missing. */
  path: string;
  durability: 'normal' | 'full';
  log: Logger;
  /** The better-sqlite3 module the worker loads (tests make it fail). Default: this process's. */
  module?: string;
}

type Job = { rows: RecordRow[] } | { prune: number };
interface Posted {
  job: Job;
  /** Called once the job is done (a batch: its records are in the file). */
  done: () => void;
}

const RETRY_MS = 1_000;
/** A group is posted once it holds this many records, or this long after its first batch. */
const GROUP_ROWS = 32_768;
export const GROUP_MS = 250;

const body = `
db.pragma('synchronous = ' + workerData.data.synchronous);
const insert = db.prepare(workerData.data.insert);
const prune = db.prepare(workerData.data.prune);
const write = db.transaction((rows) => {
  for (const row of rows) insert.run(row);
});
function handle(job) {
  if (job.rows) write(job.rows);
  else prune.run(job.prune);
}
`;

export type RecordFile = ReturnType<typeof openRecordFile>;

export const toRecordRow = (s: PendingSent): RecordRow => [s.seq, s.hash, s.from, s.id, s.digest, s.at, s.deliveredAt];

export function openRecordFile({ path, durability, log, module }: RecordFileOptions) {
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
  /** Batches to try again. */
  let waiting: Posted[] = [];
  let retryTimer: NodeJS.Timeout | undefined;
  let inWorker = true;
  let closed = false;
  /** Batches not posted yet, and when they are due. */
  let group: { rows: RecordRow[]; written: (() => void)[] } | undefined;
  let groupTimer: NodeJS.Timeout | undefined;

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
      if ('rows' in p.job) writeHere(p.job.rows);
      else q.pruneSent.run(p.job.prune);
      p.done();
    } catch (error) {
      log.warn('could not write idempotency records; trying again', { error: String(error) });
      if ('rows' in p.job) retryLater(p);
    }
  };
  const send = (p: Posted) => {
    if (!inWorker) return runHere(p);
    posted.push(p);
    worker.post(p.job);
  };
  function postGroup(): void {
    clearTimeout(groupTimer);
    groupTimer = undefined;
    const g = group;
    group = undefined;
    if (g) send({ job: { rows: g.rows }, done: () => g.written.forEach((written) => written()) });
  }

  const worker = startSqliteWorker<undefined>({
    path,
    body,
    data: { ...RECORD_SQL, synchronous: durability === 'full' ? 'FULL' : 'NORMAL' },
    ...(module ? { module } : {}),
    reply(reply) {
      const p = posted.shift();
      if (!p) return;
      if (reply.ok) return p.done();
      log.warn('could not write idempotency records; trying again', { error: reply.error });
      if ('rows' in p.job) retryLater(p);
    },
    failed(why) {
      if (closed) return;
      inWorker = false;
      log.warn('idempotency records are written in the event loop again', { why });
      for (const p of posted.splice(0)) runHere(p);
      postGroup();
    },
  });

  return {
    /** The file's records (those the worker has not written yet are the caller's to find). */
    q,
    /** The file was new: whatever records it held before are gone (see the store's rebuild). */
    created,
    /** Writes the records; `written` is called once they are all in the file. */
    write(records: readonly PendingSent[], written: () => void): void {
      if (records.length === 0) return written();
      if (!inWorker) return send({ job: { rows: records.map(toRecordRow) }, done: written });
      group ??= { rows: [], written: [] };
      for (const r of records) group.rows.push(toRecordRow(r));
      group.written.push(written);
      if (group.rows.length >= GROUP_ROWS) postGroup();
      else groupTimer ??= setTimeout(postGroup, GROUP_MS).unref();
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
      postGroup();
      retry();
      await worker.close();
      // Anything the worker did not answer is written here (a second insert of a record changes nothing).
      inWorker = false;
      for (const p of [...posted.splice(0), ...waiting.splice(0)]) runHere(p);
      const lost = waiting.reduce((n, p) => n + ('rows' in p.job ? p.job.rows.length : 0), 0);
      if (lost > 0) log.error('idempotency records could not be written; a resend of one of those messages would be delivered again', { records: lost });
      db.close();
    },
  };
}
