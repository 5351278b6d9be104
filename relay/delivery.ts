// One pump per connected socket: pages the recipient's mailbox in seq order, sends a batch,
// waits for the client's ack, removes what was acknowledged, repeats. Live messages and a
// backlog take the same path, so a new message can never overtake an older one.
import { z } from 'zod';
import type { DeliverAck, Envelope } from './protocol.ts';
import type { RelayStore } from './mailbox/store.ts';
import type { Logger } from './log.ts';

const DeliverAckSchema = z.union([
  z.strictObject({ ok: z.literal(true) }),
  z.strictObject({ ok: z.literal(false), retryInMs: z.number().int().min(0).max(60_000).optional() }),
]);

export interface DeliveryTarget {
  /** Emits a batch and resolves with the client's (untrusted) answer; rejects on timeout or disconnect. */
  deliver(batch: Envelope[], timeoutMs: number): Promise<unknown>;
}

export interface PumpOptions {
  store: RelayStore;
  log: Logger;
  batchSize: number;
  /** Body bytes per batch; a batch holds at least one envelope. */
  batchBytes: number;
  ackTimeoutMs: number;
  /** Called with the envelopes that this acknowledgement removed from the mailbox (each once). */
  onAcknowledged: (recipient: string, removed: Envelope[]) => void;
}

export class Pump {
  private cursor = 0;
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
    void this.run().finally(() => {
      this.running = false;
    });
  }

  stop(): void {
    this.stopped = true;
  }

  private async run(): Promise<void> {
    const { store, batchSize, ackTimeoutMs, log } = this.options;
    while (!this.stopped) {
      this.again = false;
      let batch: Envelope[];
      try {
        batch = withinBytes(await store.page(this.recipient, this.cursor, batchSize), this.options.batchBytes);
      } catch (error) {
        log.warn('mailbox read failed; retrying', { user: this.recipient, error: String(error) });
        await pause(1000);
        continue;
      }
      const last = batch.at(-1);
      if (!last) {
        if (this.again) continue;
        return;
      }
      if (this.stopped) return;
      this.cursor = last.seq;
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
        this.cursor = (batch[0]?.seq ?? 1) - 1;
        await pause(answer?.retryInMs ?? 1000);
        continue;
      }
      try {
        const removed = await store.remove(this.recipient, batch.map((e) => e.seq));
        if (removed.length > 0) this.options.onAcknowledged(this.recipient, removed);
      } catch (error) {
        // The envelopes stay in the mailbox and come again on the next connection; the
        // client recognises them by id, so nothing is shown twice.
        log.warn('mailbox remove failed', { user: this.recipient, error: String(error) });
      }
    }
  }
}

function withinBytes(envelopes: Envelope[], budget: number): Envelope[] {
  let used = 0;
  let count = 0;
  for (const e of envelopes) {
    used += e.kind === 'message' ? Buffer.byteLength(e.body) : e.ids.length * 24;
    if (count > 0 && used > budget) break;
    count += 1;
  }
  return count === envelopes.length ? envelopes : envelopes.slice(0, count);
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
