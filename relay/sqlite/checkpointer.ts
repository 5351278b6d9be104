// WAL checkpoints off the event loop. SQLite copies the WAL back into the database file
// (and syncs both) inside whichever commit crosses wal_autocheckpoint: that commit, and the
// event loop with it, then waits for the disk. Here a worker thread with a connection of its
// own runs the checkpoints instead (PASSIVE: they never block the writer), one at a time and
// at most every INTERVAL_MS while commits come; the writer's connection no longer checkpoints
// by itself. Should the worker fail, the writer's connection checkpoints as before, so the WAL
// never grows without end.
import type { Database } from 'better-sqlite3';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.ts';

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

// CommonJS for `eval`; better-sqlite3 comes by path, resolved where the writer loaded it,
// which holds in plain Node and in the Electron bundle alike.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
parentPort.on('message', (m) => {
  if (m === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ ok: true });
  } catch (error) {
    parentPort.postMessage({ ok: false, error: String(error) });
  }
});
`;

export interface CheckpointerOptions {
  /** The better-sqlite3 module the worker loads. Default: the one this process loads. */
  module?: string;
}

/** Moves `db`'s checkpoints to a worker thread. `db` must be in WAL mode and on a file. */
export function startCheckpointer(db: Database, log: Logger, options: CheckpointerOptions = {}): Checkpointer {
  const fallback = (why: string) => {
    if (failed) return;
    failed = true;
    log.warn('checkpoints run in the event loop again', { why });
    try {
      db.pragma(`wal_autocheckpoint = ${AUTO_CHECKPOINT_PAGES}`);
    } catch {
      // closed meanwhile
    }
  };
  let failed = false;
  /** A checkpoint is running, or waits for its turn. */
  let busy = false;
  let again = false;
  let lastStart = -Infinity;
  let timer: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;
  let worker: Worker;
  try {
    worker = new Worker(WORKER, { eval: true, workerData: { module: options.module ?? createRequire(import.meta.url).resolve('better-sqlite3'), path: db.name } });
  } catch (error) {
    fallback(String(error));
    return { committed: () => undefined, close: async () => undefined };
  }
  worker.unref();
  db.pragma('wal_autocheckpoint = 0');

  const run = () => {
    timer = undefined;
    if (closing || failed) return;
    again = false;
    lastStart = performance.now();
    worker.postMessage('checkpoint');
  };
  const schedule = () => {
    busy = true;
    const wait = lastStart + INTERVAL_MS - performance.now();
    if (wait > 0) timer = setTimeout(run, wait).unref();
    else run();
  };
  worker.on('message', (reply: { ok: boolean; error?: string }) => {
    busy = false;
    if (!reply.ok) log.warn('checkpoint failed', { error: reply.error });
    if (again && !closing) schedule();
  });
  worker.on('error', (error) => fallback(String(error)));
  worker.on('exit', (code) => {
    if (!closing) fallback(`worker exited (${code})`);
  });

  return {
    committed() {
      if (failed || closing) return;
      if (busy) again = true;
      else schedule();
    },
    close() {
      clearTimeout(timer);
      closing ??= failed
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            worker.once('exit', () => resolve());
            // Held until it has closed its connection: unref'd, it would let the process end first.
            worker.ref();
            worker.postMessage('close');
          });
      return closing;
    },
  };
}
