// WAL checkpoints off the event loop. SQLite copies the WAL back into the database file
// (and syncs both) inside whichever commit crosses wal_autocheckpoint: that commit, and the
// event loop with it, then waits for the disk. Here a worker thread with a connection of its
// own runs the checkpoints instead (PASSIVE: they never block the writer), one at a time and
// at most every INTERVAL_MS while commits come; the writer's connection no longer checkpoints
// by itself. Should the worker fail, the writer's connection checkpoints as before, so the WAL
// never grows without end.
import type { Database } from 'better-sqlite3';
import type { Logger } from '../log.ts';
import { startSqliteWorker } from './worker.ts';

export interface Checkpointer {
  /** A commit was made: checkpoint soon (at most one runs at a time). */
  committed(): void;
  /** Stops the worker and closes its connection (the writer's close then checkpoints the rest). */
  close(): Promise<void>;
}

/** SQLite's own threshold, in pages, for the fallback. */
const AUTO_CHECKPOINT_PAGES = 1000;
/** How often a checkpoint may start; a few MB of WAL at the highest write rates seen. */
const INTERVAL_MS = 200;

const body = `
function handle() {
  db.pragma('wal_checkpoint(PASSIVE)');
}
`;

export interface CheckpointerOptions {
  /** The better-sqlite3 module the worker loads. Default: the one this process loads. */
  module?: string;
}

/** Moves `db`'s checkpoints to a worker thread. `db` must be in WAL mode and on a file. */
export function startCheckpointer(db: Database, log: Logger, options: CheckpointerOptions = {}): Checkpointer {
  let failed = false;
  /** A checkpoint is running, or waits for its turn. */
  let busy = false;
  let again = false;
  let lastStart = -Infinity;
  let timer: NodeJS.Timeout | undefined;
  let closing = false;
  const worker = startSqliteWorker({
    path: db.name,
    body,
    ...(options.module ? { module: options.module } : {}),
    reply(reply) {
      busy = false;
      if (!reply.ok) log.warn('checkpoint failed', { error: reply.error });
      if (again && !closing) schedule();
    },
    failed(why) {
      if (closing) return;
      failed = true;
      log.warn('checkpoints run in the event loop again', { why });
      try {
        db.pragma(`wal_autocheckpoint = ${AUTO_CHECKPOINT_PAGES}`);
      } catch {
        // closed meanwhile
      }
    },
  });
  db.pragma('wal_autocheckpoint = 0');

  const run = () => {
    timer = undefined;
    if (closing || failed) return;
    again = false;
    lastStart = performance.now();
    worker.post('checkpoint');
  };
  const schedule = () => {
    busy = true;
    const wait = lastStart + INTERVAL_MS - performance.now();
    if (wait > 0) timer = setTimeout(run, wait).unref();
    else run();
  };
  return {
    committed() {
      if (failed || closing) return;
      if (busy) again = true;
      else schedule();
    },
    close() {
      clearTimeout(timer);
      closing = true;
      return worker.close();
    },
  };
}
