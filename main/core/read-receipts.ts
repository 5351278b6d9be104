// Read receipts leave from the history (unsent_reads, filled as messages are marked read) and
// are removed from it once the relay acknowledges them: marking read works offline and across
// a restart, and what was read is told to the senders once a connection is back. A peer the
// relay refuses is skipped, not waited for, so one never holds back the receipts for others.
import type { ErrorCode } from '../../relay/protocol.ts';
import type { Connection } from './connection.ts';
import type { History } from './history/index.ts';

export interface ReadReceipts {
  /** Sends the waiting read receipts, 500 ids per request; what is not acknowledged waits for the next try. */
  flush(): Promise<void>;
  close(): void;
}

/** Ids per message:read (PROTOCOL.md). */
const CHUNK = 500;
/**
 * Refusals that will not change: dropped. E_UNKNOWN_RECIPIENT is not among them: the peer
 * may join this relay later (or the user may move back to theirs), so it waits for the next connect.
 */
const DROP: ReadonlySet<string> = new Set<ErrorCode>(['E_SCHEMA']);
const WAIT_FOR_CONNECT: ReadonlySet<string> = new Set<ErrorCode>(['E_UNKNOWN_RECIPIENT']);

export function createReadReceipts(history: History, connection: () => Connection | null, retryMs = 5_000): ReadReceipts {
  let running: Promise<void> | null = null;
  let again = false;
  let retry: NodeJS.Timeout | undefined;
  let closed = false;

  async function sendAll(): Promise<void> {
    for (const [peer, ids] of history.unsentReads()) {
      for (let i = 0; i < ids.length; i += CHUNK) {
        const chunk = ids.slice(i, i + CHUNK);
        const result = await connection()?.request('message:read', { peer, ids: chunk });
        if (!result || closed) return; // offline or closing: the next connect sends them
        if (result.ok || DROP.has(result.error.code)) {
          history.readsSent(peer, chunk);
          continue;
        }
        if (!WAIT_FOR_CONNECT.has(result.error.code)) {
          // Not now (rate limited, a storage fault): again a little later.
          clearTimeout(retry);
          retry = setTimeout(() => void receipts.flush(), retryMs).unref();
        }
        break; // on to the next peer
      }
    }
  }

  const receipts: ReadReceipts = {
    flush() {
      if (closed) return Promise.resolve();
      if (running) {
        again = true;
        return running;
      }
      running = (async () => {
        do {
          again = false;
          await sendAll();
        } while (again && !closed);
      })().finally(() => (running = null));
      return running;
    },
    close() {
      closed = true;
      clearTimeout(retry);
    },
  };
  return receipts;
}
