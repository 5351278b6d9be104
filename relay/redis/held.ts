// The Redis store's fast path (relay/redis/store.ts): a message for a recipient connected to
// this node is claimed in Redis (its seq and a "held" record) but kept in this node's memory
// for up to holdMs. Taken by the recipient in that time, it never enters the Redis mailbox:
// its sender's answer carries the delivery, and its record is written with the time a moment
// later, together with others. Not taken, it is written into the mailbox then, and its sender
// answered.
import type { Envelope } from '../protocol.ts';
import { deferred, type StorageError, recordKey, type Deferred, type IncomingMessage, type PageRequest } from '../mailbox/store.ts';
import { storageError } from './commands.ts';
import type { StoreContext } from './context.ts';
import { Int, fitting, messageHeader, toEnvelope } from './members.ts';
import { RECORD, WRITE } from './scripts.ts';

/** How long the records of taken messages wait to be written together, ms (a resend meanwhile waits for them, see HELD_WAIT_MS in store.ts). */
const RECORD_BATCH_MS = 20;

export interface Held {
  recipient: string;
  envelope: Extract<Envelope, { kind: 'message' }>;
  size: number;
  digest: string;
  due: number;
  /** Its sender's answer. */
  done: Deferred;
}

export type HeldMessages = ReturnType<typeof heldMessages>;

export function heldMessages({ redis, key, me, holdMs, retention, track }: StoreContext) {
  // Held messages, in seq (= due) order, and per recipient; and by (sender, id) for resends here.
  const held = new Map<number, Held>();
  const heldFor = new Map<string, Map<number, Held>>();
  const heldBySent = new Map<string, Held>();
  /**
   * Held messages being written into the mailbox, per recipient, until WRITE replies: a page
   * read from Redis just before the write, whose reply comes after it was sent, must still
   * show them (replies come in order, so a read sent after the write finds them in Redis).
   */
  const writing = new Map<string, Map<number, Held>>();
  let holdTimer: NodeJS.Timeout | undefined;
  /** Records of taken messages (value, recipient, body bytes), written together a moment later (until then they read "held"). */
  const records = new Map<string, [string, string, number]>();
  let recordTimer: NodeJS.Timeout | undefined;
  const writeRecords = () => {
    recordTimer = undefined;
    if (records.size === 0) return;
    const taken = [...records.values()];
    const keys = [...records.keys(), ...taken.map(([, recipient]) => key.held(recipient)), ...taken.map(([, recipient]) => key.quota(recipient))];
    records.clear();
    const work = redis.run(RECORD, keys, [...taken.map(([value]) => value), ...taken.map(([, , size]) => size), retention], Int);
    // Not recorded (Redis away): the held records expire (their reservations with them) and a resend is delivered again, deduplicated by the recipient.
    track(work.catch(() => undefined));
  };

  const forget = (h: Held) => {
    held.delete(h.envelope.seq);
    heldBySent.delete(recordKey(h.envelope.from, h.envelope.id));
    const mine = heldFor.get(h.recipient);
    mine?.delete(h.envelope.seq);
    if (mine?.size === 0) heldFor.delete(h.recipient);
  };
  /**
   * Per conversation (sender and recipient), its latest write not settled yet. The next one
   * waits for it and fails with it: written, it would come before the resend of the one that
   * failed, out of the conversation's order (PROTOCOL.md 6.2a, 7.3).
   */
  const lastWrite = new Map<string, Promise<void>>();
  /** Not taken in time: into the Redis mailbox, and then its sender is answered. */
  const write = (h: Held) => {
    forget(h);
    let mine = writing.get(h.recipient);
    if (!mine) writing.set(h.recipient, (mine = new Map()));
    mine.set(h.envelope.seq, h);
    const conversation = `${h.envelope.from} ${h.recipient}`;
    const member = messageHeader(h.size, h.envelope.from, h.envelope.id) + JSON.stringify(h.envelope);
    const send = () =>
      redis.run(WRITE, [key.sent(h.envelope.from, h.envelope.id), key.mailbox(h.recipient), key.quota(h.recipient), key.nodes, key.held(h.recipient)],
        [h.digest, h.size, retention, h.envelope.seq, member, key.prefix, me, h.recipient], Int);
    const before = lastWrite.get(conversation);
    const written = (before ? before.then(send) : send()).then(() => undefined);
    lastWrite.set(conversation, written);
    const work = written
      .then(() => h.done.resolve({}), (error: unknown) => {
        const failure = storageError(error);
        h.done.reject(failure);
        // The sender's later messages to this recipient still held here fail with it too.
        for (const later of [...(heldFor.get(h.recipient)?.values() ?? [])]) {
          if (later.envelope.from !== h.envelope.from) continue;
          forget(later);
          later.done.reject(failure);
        }
      })
      .finally(() => {
        mine.delete(h.envelope.seq);
        if (mine.size === 0 && writing.get(h.recipient) === mine) writing.delete(h.recipient);
        if (lastWrite.get(conversation) === written) lastWrite.delete(conversation);
      });
    track(work);
  };
  const writeDue = (all = false) => {
    holdTimer = undefined;
    const t = performance.now(); // monotonic: a wall clock stepped back must not stall the holds
    for (const h of held.values()) {
      if (!all && h.due > t) {
        holdTimer = setTimeout(writeDue, Math.max(1, h.due - t)).unref();
        break;
      }
      write(h);
    }
  };

  return {
    /** Keeps a message claimed as `seq` here for its recipient. */
    hold: (m: IncomingMessage, seq: number): Held => {
      const envelope = { seq, kind: 'message' as const, id: m.id, from: m.from, body: m.body, sentAt: m.sentAt, at: m.at };
      const h: Held = { recipient: m.to, envelope, size: Buffer.byteLength(m.body), digest: m.digest, due: performance.now() + holdMs, done: deferred() };
      held.set(seq, h);
      heldBySent.set(recordKey(m.from, m.id), h);
      let mine = heldFor.get(m.to);
      if (!mine) heldFor.set(m.to, (mine = new Map()));
      mine.set(seq, h);
      holdTimer ??= setTimeout(writeDue, holdMs).unref();
      return h;
    },
    /** The message held here for a resend of (from, id). */
    bySent: (from: string, id: string): Held | undefined => heldBySent.get(recordKey(from, id)),
    /** The seqs held here for `recipient`, in order. */
    seqsFor: (recipient: string): number[] => [...(heldFor.get(recipient)?.keys() ?? [])],
    /** Something for `recipient` is held here: what follows must not pass it (a write now would). */
    holding: (recipient: string): boolean => heldFor.has(recipient),
    /**
     * Writes what is held for `recipient` into the mailbox now, in seq order, and resolves
     * once every write of theirs from here has settled: a message put into the mailbox after
     * that reaches their other devices behind these. (Waited for, not merely sent first: a
     * script that Redis has not cached yet is sent again after its NOSCRIPT reply, behind
     * commands sent meanwhile.) Until written, pages here still show them. Resolves with why
     * one of `from`'s could not be written, if one could not: a message of theirs to this
     * recipient accepted now would go ahead of its resend.
     */
    release: async (recipient: string, from?: string): Promise<StorageError | undefined> => {
      const mine = [...(heldFor.get(recipient)?.values() ?? [])].sort((x, y) => x.envelope.seq - y.envelope.seq);
      for (const h of mine) write(h);
      const settled = [...(writing.get(recipient)?.values() ?? [])].map((h) => h.done.promise.then(() => undefined, (error: unknown) => (h.envelope.from === from ? storageError(error) : undefined)));
      return (await Promise.all(settled)).find((failure) => failure !== undefined);
    },
    /** The recipient acknowledged these: those held here are taken, never written; returns their seqs. */
    take: (recipient: string, seqs: readonly number[], at: number): number[] => {
      const mine = heldFor.get(recipient);
      const taken = mine ? seqs.filter((s) => mine.has(s)) : [];
      for (const s of taken) {
        const h = mine?.get(s);
        if (!h) continue;
        forget(h);
        h.done.resolve({ deliveredAt: at });
        records.set(key.sent(h.envelope.from, h.envelope.id), [`${s} ${h.digest} ${at}`, h.recipient, h.size]);
      }
      if (taken.length > 0) recordTimer ??= setTimeout(writeRecords, RECORD_BATCH_MS).unref();
      return taken;
    },
    /**
     * A page read from Redis, with what is held here (or being written from here) merged in
     * seq order: none newer than a page cut short by its bytes.
     */
    withHeld: (recipient: string, members: string[], request: PageRequest): Envelope[] => {
      const { members: kept, cut } = fitting(members, request.bytes ?? Infinity);
      const fromRedis = kept.map(toEnvelope);
      const here = [...(heldFor.get(recipient)?.values() ?? []), ...(writing.get(recipient)?.values() ?? [])];
      if (here.length === 0) return fromRedis;
      const readTo = cut ? (fromRedis.at(-1)?.seq ?? request.afterSeq) : Infinity;
      const read = new Set(fromRedis.map((e) => e.seq));
      const merged = [...fromRedis, ...here.filter((h) => h.envelope.seq > request.afterSeq && h.envelope.seq <= readTo && !read.has(h.envelope.seq)).map((h) => h.envelope)];
      return merged.sort((a, b) => a.seq - b.seq).slice(0, request.limit);
    },
    /** Writes what is held, and the records of what was taken, now (their promises are tracked). */
    close: (): void => {
      clearTimeout(holdTimer);
      writeDue(true);
      clearTimeout(recordTimer);
      writeRecords();
    },
  };
}
