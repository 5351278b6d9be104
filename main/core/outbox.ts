// The outbox: queued messages leave in the order they were written (to each recipient: one
// whose mailbox is full waits alone), several per request (message:send-many), one request at
// a time, and are retried until the relay answers. The id makes every retry idempotent at the relay.
import type { Message, Result } from '../../preload/contract.ts';
import { LIMITS, RETRYABLE_CODES, type SendResult } from '../../relay/protocol.ts';
import type { History } from './history/index.ts';

/**
 * Answers that mean "not now" (PROTOCOL.md 13.1): the message stays queued and is sent again
 * later. A full mailbox too: the relay holds back the later messages to that person with the
 * same answer, and they must stay behind the first (so that person waits, and nobody else).
 */
const TRANSIENT: ReadonlySet<string> = new Set([...RETRYABLE_CODES, 'E_BUSY']);
// Maps, not objects: the code is the relay's word, and "constructor" or "__proto__" must find nothing.
export const RETRY_MS: ReadonlyMap<string, number> = new Map([['E_RATE_LIMITED', 1_500], ['E_QUEUE_FULL', 30_000]]);

const REASONS: ReadonlyMap<string, string> = new Map([
  ['E_UNKNOWN_RECIPIENT', 'This relay does not know the recipient.'],
  ['E_TOO_LARGE', 'The message is too long.'],
  ['E_ID_CONFLICT', 'The relay already has a different message under this id.'],
]);

export interface Outgoing {
  message: Message;
  sealed: string;
}

/**
 * Sealed body bytes per request: with the JSON around each message (about 100 bytes, 50 at
 * most) a batch stays well under the relay's frame limit, as one body, at most LIMITS.bodyBytes, does.
 */
const BATCH_BYTES = 48 * 1024;

/** The first of `items` that go in one message:send-many: at most `max` (50), within BATCH_BYTES of bodies, at least one. */
export function firstBatch<T>(items: readonly T[], bodyLength: (item: T) => number, max: number = LIMITS.sendBatch): T[] {
  let bytes = 0;
  let count = 0;
  for (const item of items) {
    if (count >= max || (count > 0 && bytes + bodyLength(item) > BATCH_BYTES)) break;
    bytes += bodyLength(item);
    count += 1;
  }
  return items.slice(0, count);
}

export interface OutboxOptions {
  history: History;
  /** Sends queued messages (with their sealed bodies) to the relay in one request. */
  send: (batch: readonly Outgoing[]) => Promise<Result<{ results: Result<SendResult>[] }>>;
  updated: (message: Message) => void;
  online: () => boolean;
  retryDelayMs?: number;
}

export class Outbox {
  private running = false;
  private again = false;
  /** A refusal for the whole connection (a rate limit, a fault) is pausing every send. */
  private holding = false;
  /**
   * The most messages one request carries. A request spends a token of the relay's budget per
   * message, all or none (PROTOCOL.md 6.2a): a budget smaller than a full batch would refuse it
   * for ever, so each E_RATE_LIMITED halves the next batch, and each batch that goes through
   * doubles it again, up to LIMITS.sendBatch.
   */
  private batchMax: number = LIMITS.sendBatch;
  /** Recipients whose mailbox is full, each with when to try again (performance.now()). */
  private readonly paused = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  /** The messages of the request the relay has not answered yet. */
  private readonly inFlight = new Set<number>();
  private readonly options: OutboxOptions;

  constructor(options: OutboxOptions) {
    this.options = options;
  }

  /**
   * Something was queued, or (`reconnected`) the connection came back: send what waits, but
   * not yet to a recipient whose mailbox was full. While a refusal for the whole connection
   * pauses every send, and while a recipient's pause runs, only a new connection cuts it short.
   */
  kick(reconnected = false): void {
    if (reconnected) {
      this.holding = false;
      this.paused.clear();
    }
    if (this.holding) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.drain().catch(() => this.later(3_000, true)).finally(() => {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.kick();
      } else if (!this.holding && this.paused.size > 0 && this.options.online()) {
        // Again when the first recipient's pause ends (offline, the reconnection's kick will do).
        this.later(Math.min(...this.paused.values()) - performance.now(), false);
      }
    });
  }

  stop(): void {
    clearTimeout(this.timer);
    // Closing while a request is on its way: its answer will not be seen.
    if (this.inFlight.size > 0) this.options.history.markAttempted([...this.inFlight]);
  }

  /** Whether message `n` is on its way to the relay (sent, not answered yet): deleted now, it may still arrive. */
  sending(n: number): boolean {
    return this.inFlight.has(n);
  }

  /** Kicks after `delayMs`; with `hold`, nothing is sent until then. */
  private later(delayMs: number, hold: boolean): void {
    clearTimeout(this.timer);
    this.holding = hold;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.holding = false;
      this.kick();
    }, Math.max(0, delayMs));
    this.timer.unref();
  }

  private retryMs(code: string): number {
    return this.options.retryDelayMs ?? RETRY_MS.get(code) ?? 3_000;
  }

  private async drain(): Promise<void> {
    const { history, send, online } = this.options;
    while (online()) {
      const now = performance.now();
      for (const [peer, until] of this.paused) if (until <= now) this.paused.delete(peer);
      const queued = history.outbox(LIMITS.sendBatch, [...this.paused.keys()]);
      if (queued.length === 0) return;
      const ready: Outgoing[] = [];
      for (const message of queued) {
        const sealed = history.sealedBody(message.n);
        if (!sealed) this.settle(message, { ok: false, error: { code: 'E_SCHEMA', message: 'nothing to send' } });
        // Stored before message:send checked sizes: the relay would refuse it, or close the socket on it.
        else if (Buffer.byteLength(sealed) > LIMITS.bodyBytes) this.settle(message, { ok: false, error: { code: 'E_TOO_LARGE', message: 'too large' } });
        else ready.push({ message, sealed });
      }
      const batch = firstBatch(ready, (o) => Buffer.byteLength(o.sealed), this.batchMax);
      if (batch.length === 0) continue;
      for (const { message } of batch) this.inFlight.add(message.n);
      let answer: Awaited<ReturnType<OutboxOptions['send']>>;
      try {
        answer = await send(batch);
      } catch (error) {
        history.markAttempted(batch.map(({ message }) => message.n));
        throw error;
      } finally {
        this.inFlight.clear();
      }
      if (answer.ok) this.batchMax = Math.min(LIMITS.sendBatch, this.batchMax * 2);
      else if (answer.error.code === 'E_RATE_LIMITED') this.batchMax = Math.max(1, Math.ceil(batch.length / 2));
      const results = answer.ok ? answer.value.results : batch.map(() => answer);
      let retry: string | undefined;
      const unsettled: number[] = [];
      batch.forEach(({ message }, i) => {
        const result = results[i] ?? { ok: false, error: { code: 'E_INTERNAL', message: 'The relay gave an unexpected answer.' } };
        if (this.settle(message, result)) return;
        // No answer (or "not now"): it stays queued, but may have reached the relay.
        unsettled.push(message.n);
        const code = result.ok ? 'E_INTERNAL' : result.error.code;
        // Only this recipient's messages wait: the relay answered their later ones in the batch the same.
        if (code === 'E_QUEUE_FULL') this.paused.set(message.peer, performance.now() + this.retryMs(code));
        else retry ??= code;
      });
      if (unsettled.length > 0) history.markAttempted(unsettled);
      if (retry !== undefined) {
        // Keep the order: what is still queued goes again, first, after a pause.
        this.later(this.retryMs(retry), true);
        return;
      }
    }
  }

  /** Applies the relay's answer to one message; false when it stays queued for a retry. */
  private settle(message: Message, result: Result<SendResult>): boolean {
    const { history, updated } = this.options;
    if (result.ok && typeof result.value?.seq === 'number') {
      // The recipient took it before the relay answered: that answer is the delivered receipt.
      if (typeof result.value.deliveredAt === 'number') {
        history.markSentDelivered(message, result.value.seq).forEach(updated);
        return true;
      }
      const sent = history.markSent(message.n, result.value.seq);
      if (sent) updated(sent);
      return true;
    }
    const code = result.ok ? 'E_INTERNAL' : result.error.code;
    if (TRANSIENT.has(code)) return false;
    const failed = history.markFailed(message.n, REASONS.get(code) ?? (result.ok ? 'The relay gave an unexpected answer.' : result.error.message));
    if (failed) updated(failed);
    return true;
  }
}
