// Read receipts wait here until the relay acknowledges them: marking read works offline, and
// what was marked is told to the senders once a connection is back.
import type { Connection } from './connection.ts';

export interface ReadReceipts {
  /** These messages from `peer` were read: their receipts wait to be sent. */
  add(peer: string, ids: readonly string[]): void;
  /** Sends waiting read receipts, 500 ids per request; what is not acknowledged waits for the next try. */
  flush(): Promise<void>;
}

export function createReadReceipts(connection: () => Connection | null): ReadReceipts {
  const pendingReads = new Map<string, Set<string>>();
  return {
    add(peer, ids) {
      const waiting = pendingReads.get(peer) ?? new Set<string>();
      ids.forEach((id) => waiting.add(id));
      pendingReads.set(peer, waiting);
    },
    async flush() {
      for (const [peer, ids] of pendingReads) {
        while (ids.size > 0) {
          const chunk = [...ids].slice(0, 500);
          const result = await connection()?.request('message:read', { peer, ids: chunk });
          if (!result?.ok) return;
          for (const id of chunk) ids.delete(id);
        }
        pendingReads.delete(peer);
      }
    },
  };
}
