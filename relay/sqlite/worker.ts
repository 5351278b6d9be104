// A worker thread with a better-sqlite3 connection of its own, for SQLite work that must not
// hold up the event loop: checkpoints (checkpointer.ts) and the records written behind
// (relay/mailbox/record-file.ts). Each message posted gets one reply, in order.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export type WorkerReply<T> = { ok: true; value: T } | { ok: false; error: string };

export interface SqliteWorkerOptions<T> {
  /** The database file; it must exist. */
  path: string;
  /**
   * CommonJS run in the worker once its connection is open, with `db` (the connection) and
   * `workerData.data` in scope; it defines `function handle(message)`, whose return value (or
   * thrown error) is the reply.
   */
  body: string;
  /** Handed to `body` as `workerData.data` (structured-cloned). */
  data?: unknown;
  reply(reply: WorkerReply<T>): void;
  /** The worker failed to start or stopped by itself; called once, and the worker is gone. */
  failed(why: string): void;
  /** The better-sqlite3 module the worker loads. Default: the one this process loads. */
  module?: string;
}

export interface SqliteWorker {
  post(message: unknown): void;
  /** Lets the worker finish what was posted, close its connection and stop. */
  close(): Promise<void>;
}

// CommonJS for `eval`; better-sqlite3 comes by path, resolved where the caller loaded it, which
// holds in plain Node and in the Electron bundle alike.
const prelude = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
`;
const loop = `
parentPort.on('message', (m) => {
  if (m === '\\u0000close') {
    db.close();
    parentPort.close();
    return;
  }
  let reply;
  try {
    reply = { ok: true, value: handle(m) };
  } catch (error) {
    reply = { ok: false, error: String(error) };
  }
  parentPort.postMessage(reply);
});
`;

/** Starts the worker; `failed` is called (asynchronously) if it cannot. Unref'd until close(). */
export function startSqliteWorker<T>(options: SqliteWorkerOptions<T>): SqliteWorker {
  let closing: Promise<void> | undefined;
  let gone = false;
  const fail = (why: string) => {
    if (gone) return;
    gone = true;
    options.failed(why);
  };
  let worker: Worker;
  try {
    worker = new Worker(`${prelude}${options.body}${loop}`, {
      eval: true,
      workerData: { module: options.module ?? createRequire(import.meta.url).resolve('better-sqlite3'), path: options.path, data: options.data },
    });
  } catch (error) {
    queueMicrotask(() => fail(String(error)));
    return { post: () => undefined, close: async () => undefined };
  }
  worker.unref();
  worker.on('message', (reply: WorkerReply<T>) => options.reply(reply));
  worker.on('error', (error) => fail(String(error)));
  worker.on('exit', (code) => {
    if (!closing) fail(`worker exited (${code})`);
    gone = true;
  });
  return {
    post(message) {
      if (!gone && !closing) worker.postMessage(message);
    },
    close() {
      closing ??= gone
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            worker.once('exit', () => resolve());
            // Held until it has closed its connection: unref'd, it would let the process end first.
            worker.ref();
            worker.postMessage('\u0000close');
          });
      return closing;
    },
  };
}
