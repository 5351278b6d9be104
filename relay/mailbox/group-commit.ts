// Directory writes (relay/mailbox/sqlite.ts) made during one event-loop turn, committed
// together in the next: a reconnect storm costs a commit per turn, not two per connection.
// Each write's promise settles once its commit did; a failed commit fails the writes in it.
import type { Database } from 'better-sqlite3';
import { deferred, type Deferred } from './store.ts';
import { storageError } from './write-behind.ts';

export interface GroupCommit {
  /** Runs `write` in the next commit; resolves once that is committed. */
  later(write: () => void): Promise<void>;
  /** Commits what waits now (before the database closes). */
  flush(): void;
}

export function groupCommit(db: Database): GroupCommit {
  let waiting: { write: () => void; done: Deferred }[] = [];
  const commit = db.transaction((writes: (() => void)[]) => {
    for (const write of writes) write();
  });
  const flush = () => {
    const batch = waiting;
    waiting = [];
    if (batch.length === 0) return;
    try {
      commit(batch.map((w) => w.write));
      for (const w of batch) w.done.resolve({});
    } catch (error) {
      const failure = storageError(error);
      for (const w of batch) w.done.reject(failure);
    }
  };
  return {
    later(write) {
      const done = deferred();
      waiting.push({ write, done });
      if (waiting.length === 1) setImmediate(flush);
      return done.promise.then(() => undefined);
    },
    flush,
  };
}
