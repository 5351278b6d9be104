// One pump per connected socket: pages the recipient's mailbox in seq order, sends a batch,
// waits for the client's ack, removes what was acknowledged, repeats. Live messages and a
// backlog take the same path, so a new message can never overtake an older one that is
// visible. In a cluster an envelope can become visible after a newer one was sent (a node
// kept it in memory for a moment, relay/redis/held.ts): offered then, it is sent at once,
// out of seq order, rather than left behind the cursor. Senders send one request at a time
// per recipient, and a request's messages are accepted one after the other (PROTOCOL.md
// 7.3, 13.1), so each conversation keeps its order.
import { z } from 'zod';
import type { DeliverAck, Envelope } from './protocol.ts';
import { envelopeBytes, type Offer, type RelayStore } from './mailbox/store.ts';
import type { Logger } from './log.ts';
import type { RelaySocket } from './handlers.ts';

const DeliverAckSchema = z.union([
  z.strictObject({ ok: z.literal(true) }),
  z.strictObject({ ok: z.literal(false), retryInMs: z.number().int().min(0).max(60_000).optional() }),
]);

export interface DeliveryTarget {
  /**
   * Emits a batch and resolves with the client's (untrusted) answer; rejects when none came
   * within `timeoutMs` or the stream stopped (stop()). Leaves no timer behind.
   */
  deliver(batch: Envelope[], timeoutMs: number): Promise<unknown>;
  /** The stream stopped (its socket went away, or the relay is closing): fails the batch in flight. */
  stop(): void;
}

/**
 * Delivers to a socket. The ack deadline is the relay's own timer, not Socket.IO's
 * (`socket.timeout()`): that one holds the process open and outlives the socket, so a relay
 * stopping while a client sat on a batch could not exit before it fired.
 */
export function socketTarget(socket: RelaySocket): DeliveryTarget {
  // The batch in flight: a stream sends one at a time. Kept here until it is answered, not by
  // an abort listener per batch: added and removed per batch, a listener made the stream's
  // signal reallocate its map of listeners twice a message, and a map that outlived two young
  // collections kept what it had held alive into the old generation.
  let inFlight: Answer | undefined;
  return {
    deliver(batch, timeoutMs) {
      const sent = answerWithin(timeoutMs, () => {
        if (inFlight === sent) inFlight = undefined;
      });
      inFlight = sent;
      socket.emit('message:deliver', batch, sent.ack);
      // Unanswered at the deadline: Socket.IO would keep the callback until the socket closes,
      // one more per try for a client that never answers. A late answer then finds no callback
      // and Socket.IO ignores it; the batch is sent again anyway.
      sent.answer.catch(() => forgetAck(socket, sent.ack));
      return sent.answer;
    },
    stop() {
      inFlight?.fail(new Error('delivery stream stopped'));
    },
  };
}

/** Drops an ack callback Socket.IO holds for the socket (4.8: a private map of ack id to callback). */
function forgetAck(socket: RelaySocket, ack: (answer: unknown) => void): void {
  const acks: unknown = socket['acks'];
  if (!(acks instanceof Map)) return;
  for (const [id, callback] of acks) if (callback === ack) acks.delete(id);
}

interface Answer {
  /** The client's answer; rejected at the deadline or by fail(). */
  answer: Promise<unknown>;
  /** The ack callback handed to Socket.IO. */
  ack: (answer: unknown) => void;
  fail: (error: Error) => void;
}

/**
 * An ack callback and the answer it brings, rejected at the deadline; `settled` is called once
 * it settles. Made apart from the batch, which an unanswered callback would otherwise keep
 * alive. Once settled, the callback no longer reaches the answer's resolvers, nor through them
 * the stream that awaits it (a map Socket.IO dropped can point at the callback until the next
 * full collection).
 */
function answerWithin(timeoutMs: number, settled: () => void): Answer {
  let pending: { resolve: (value: unknown) => void; reject: (error: Error) => void; timer: NodeJS.Timeout } | undefined;
  const take = () => {
    const p = pending;
    pending = undefined;
    if (p) {
      clearTimeout(p.timer);
      settled();
    }
    return p;
  };
  const fail = (error: Error) => take()?.reject(error);
  const answer = new Promise<unknown>((resolve, reject) => {
    pending = { resolve, reject, timer: setTimeout(() => fail(new Error('no answer in time')), timeoutMs).unref() };
  });
  return { answer, ack: (value) => take()?.resolve(value), fail };
}

export interface PumpOptions {
  store: RelayStore;
  log: Logger;
  batchSize: number;
  /** Body bytes per batch; a batch holds at least one envelope. */
  batchBytes: number;
  ackTimeoutMs: number;
  now: () => number;
  /** Called with what an acknowledgement queued: delivered receipts for these senders (as offers, when the store says). */
  onReceipts: (senders: string[], offers: Offer[] | undefined) => void;
}

export class Pump {
  private cursor = 0;
  /** Seqs this stream sent lately, to tell an envelope that became visible late from one already sent. */
  private readonly recent = new SentLately();
  /** Envelopes behind the cursor that were never sent: they go first. */
  private late: Envelope[] = [];
  private running = false;
  private again = false;
  private stopped = false;
  private readonly recipient: string;
  private readonly target: DeliveryTarget;
  private readonly options: PumpOptions;

  constructor(recipient: string, target: DeliveryTarget, options: PumpOptions) {
    this.recipient = recipient;
    this.target = target;
    this.options = options;
  }

  /** Something may be waiting: deliver it now, or right after the batch in flight. */
  notify(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.run().catch((error: unknown) => {
      this.running = false;
      this.options.log.error('delivery stream failed', { user: this.recipient, error: String(error) });
    });
  }

  /**
   * Envelopes were just queued, one after the other in the mailbox, and `prev` is the seq of
   * the one before the first (0: none). When this stream is idle and has sent everything up
   * to `prev`, nothing older can be waiting (seqs are handed out in write order), so they are
   * sent at once, in one batch, without reading the mailbox; otherwise this is a plain notify().
   */
  offer(envelopes: readonly Envelope[], prev: number): void {
    const first = envelopes[0];
    if (this.stopped || !first) return;
    for (const envelope of envelopes) {
      if (envelope.seq <= this.cursor && !this.recent.has(envelope.seq) && !this.late.some((e) => e.seq === envelope.seq)) this.late.push(envelope);
    }
    if (this.running || first.seq <= this.cursor || prev > this.cursor) return this.notify();
    this.running = true;
    this.run(envelopes.slice(0, this.options.batchSize)).catch((error: unknown) => {
      this.running = false;
      this.options.log.error('delivery stream failed', { user: this.recipient, error: String(error) });
    });
  }

  stop(): void {
    this.stopped = true;
    this.target.stop();
  }

  private async run(first?: Envelope[]): Promise<void> {
    const { store, batchSize, batchBytes, ackTimeoutMs, log } = this.options;
    // The page that the last acknowledgement read in its own step (or an offer), if any.
    let prefetched: Envelope[] | undefined = first;
    while (!this.stopped) {
      let batch: Envelope[];
      const late = this.late.length > 0 && !prefetched;
      if (late) {
        batch = withinBytes(this.late.slice(0, batchSize), batchBytes);
        this.late = this.late.slice(batch.length);
      } else if (prefetched) {
        // Read after that ack; a wake-up that came meanwhile (`again`) still gets its own page.
        batch = withinBytes(prefetched, batchBytes);
        prefetched = undefined;
      } else {
        this.again = false;
        try {
          batch = withinBytes(await store.page(this.recipient, this.cursor, batchSize, batchBytes), batchBytes);
        } catch (error) {
          log.warn('mailbox read failed; retrying', { user: this.recipient, error: String(error) });
          await pause(1000);
          continue;
        }
      }
      const last = batch.at(-1);
      if (!last) {
        if (this.again) continue;
        // Decided and cleared in the same turn: a notify() after this starts a new run (had
        // `running` been cleared a microtask later, a wake-up in between would be lost).
        this.running = false;
        return;
      }
      if (this.stopped) return;
      if (!late) this.cursor = last.seq;
      for (const e of batch) this.recent.add(e.seq);
      let answer: DeliverAck | undefined;
      try {
        const parsed = DeliverAckSchema.safeParse(await this.target.deliver(batch, ackTimeoutMs));
        answer = parsed.success ? parsed.data : { ok: false };
      } catch {
        answer = undefined; // no answer in time, or the socket went away
      }
      if (this.stopped) return;
      if (!answer?.ok) {
        // Not taken: send the same envelopes again, after a pause the client may choose.
        for (const e of batch) this.recent.delete(e.seq);
        if (late) this.late.unshift(...batch);
        else this.cursor = (batch[0]?.seq ?? 1) - 1;
        await pause(answer?.retryInMs ?? 1000);
        continue;
      }
      try {
        const acked = await store.acknowledge(this.recipient, batch.map((e) => e.seq), this.options.now(), late ? undefined : { afterSeq: this.cursor, limit: batchSize, bytes: batchBytes });
        if (acked.receiptsFor.length > 0) this.options.onReceipts(acked.receiptsFor, acked.offers);
        prefetched = acked.next;
      } catch (error) {
        // The envelopes stay in the mailbox: send them again (after a pause) so that this
        // ack can be recorded, with its delivered receipts. The client recognises them by id.
        log.warn('mailbox remove failed; will deliver again', { user: this.recipient, error: String(error) });
        for (const e of batch) this.recent.delete(e.seq);
        if (late) this.late.unshift(...batch);
        else this.cursor = (batch[0]?.seq ?? 1) - 1;
        await pause(1000);
      }
    }
  }
}

/**
 * The seqs a stream sent lately. An offer can come after a page already read and sent its
 * envelopes (a wake from another node loses the race with the page): those are not sent again,
 * while an envelope that became visible behind the cursor is. Two generations, each of at most
 * RECENT seqs or SENT_LATELY_MS: the stream remembers at least what it sent in the last
 * SENT_LATELY_MS, up to its last RECENT seqs, and at most twice that. A connection at a chat's
 * pace keeps a few dozen seqs, not the last 4,096 (160 KB) of every connection that ever got
 * as many. Forgetting one costs at most a second delivery, which the client recognises by id.
 */
export class SentLately {
  private current = new Set<number>();
  private previous = new Set<number>();
  private since: number;
  private readonly now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.now = now;
    this.since = now();
  }

  add(seq: number): void {
    const t = this.now();
    if (this.current.size >= RECENT || t - this.since >= SENT_LATELY_MS) {
      this.previous = this.current;
      this.current = new Set();
      this.since = t;
    }
    this.current.add(seq);
  }

  has(seq: number): boolean {
    return this.current.has(seq) || this.previous.has(seq);
  }

  delete(seq: number): void {
    this.current.delete(seq);
    this.previous.delete(seq);
  }

  /** How many seqs it holds. */
  get size(): number {
    return this.current.size + this.previous.size;
  }
}

/** Seqs and ms a generation of SentLately spans: well over a batch in flight, and the offers racing it. */
export const RECENT = 1024;
export const SENT_LATELY_MS = 10_000;

function withinBytes(envelopes: Envelope[], budget: number): Envelope[] {
  let used = 0;
  let count = 0;
  for (const e of envelopes) {
    used += envelopeBytes(e);
    if (count > 0 && used > budget) break;
    count += 1;
  }
  return count === envelopes.length ? envelopes : envelopes.slice(0, count);
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
