// Senders kept waiting by the Redis store (relay/redis/store.ts): a message for a recipient
// connected to another node goes into the Redis mailbox, and its sender's answer waits up to
// holdMs for that node's acknowledgement, told on this node's wake-up channel (taken()). In
// time, the answer carries the delivery and no receipt travels back; else the answer says
// "stored" and the receipt follows as usual (UNWAIT).
import { StorageError, deferred, recordKey, type Deferred, type IncomingMessage, type Settled } from '../mailbox/store.ts';
import type { StoreContext } from './context.ts';
import { Int } from './members.ts';
import { UNWAIT } from './scripts.ts';

/** How long a delivery notice that came before its sender's wait was registered is kept for it. */
const EARLY_NOTICE_MS = 5_000;

export interface Waiting {
  /** Its idempotency record's key. */
  record: string;
  seq: number;
  digest: string;
  timer: NodeJS.Timeout;
  /** Its sender's answer. */
  done: Deferred;
}

export type SenderWaits = ReturnType<typeof senderWaits>;

export function senderWaits({ redis, key, me, holdMs, track }: StoreContext) {
  /** Senders' answers waiting for a recipient on another node, by recordKey(). */
  const waits = new Map<string, Waiting>();
  /**
   * Notices that arrived before the script's reply made the sender wait here (they come on
   * another connection, in no order with it), kept a few seconds for wait() to find.
   */
  const early = new Map<string, { at: number; until: number }>();

  /** Stops waiting: the answer says stored, or delivered when the recipient took it meanwhile. */
  const unwait = (sent: string, w: Waiting) => {
    waits.delete(sent);
    clearTimeout(w.timer);
    const work = redis.run(UNWAIT, [w.record], [me], Int).then(
      (at) => w.done.resolve(at > 0 ? { deliveredAt: at } : {}),
      // Unsure whether a receipt will follow: not answered, the sender resends, and the
      // duplicate clears the wait (scripts.ts), so that it will.
      () => w.done.reject(new StorageError('E_UNAVAILABLE', 'relay storage is unreachable; send it again')),
    );
    track(work);
  };

  return {
    /** The answer to a message accepted as `seq` whose recipient is connected to another node. */
    wait: (m: IncomingMessage, seq: number): Promise<Settled> => {
      const done = deferred();
      const sent = recordKey(m.from, m.id);
      const noticed = early.get(sent);
      if (noticed) {
        early.delete(sent);
        return Promise.resolve({ deliveredAt: noticed.at });
      }
      const w: Waiting = { record: key.sent(m.from, m.id), seq, digest: m.digest, done, timer: setTimeout(() => unwait(sent, w), holdMs).unref() };
      waits.set(sent, w);
      return done.promise;
    },
    /** The sender of (from, id) waiting here, for a resend. */
    bySent: (from: string, id: string): Waiting | undefined => waits.get(recordKey(from, id)),
    /** Another node's recipient took a message whose sender this node keeps waiting. */
    taken: (from: string, id: string, at: number): void => {
      const sent = recordKey(from, id);
      const w = waits.get(sent);
      if (!w) {
        // Not waiting yet (or answered already: then UNWAIT read the time from the record).
        const t = performance.now(); // monotonic, as the entries' `until`
        for (const [k, e] of early) {
          if (e.until > t) break;
          early.delete(k);
        }
        early.set(sent, { at, until: t + EARLY_NOTICE_MS });
        return;
      }
      waits.delete(sent);
      clearTimeout(w.timer);
      w.done.resolve({ deliveredAt: at });
    },
    /** Answers every waiting sender now (their UNWAITs are tracked). */
    close: (): void => {
      for (const [sent, w] of [...waits]) unwait(sent, w);
    },
  };
}
