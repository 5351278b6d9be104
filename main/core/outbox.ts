// The outbox: queued messages leave in the order they were written, one at a time, and are
// retried until the relay answers. The id makes every retry idempotent at the relay.
import type { Message } from '../../preload/contract.ts';
import type { Result, SendResult } from '../../relay/protocol.ts';
import type { History } from './history/index.ts';

/** Answers that mean "not now": the message stays queued and is sent again later. */
const TRANSIENT = new Set(['E_RATE_LIMITED', 'E_STORAGE', 'E_UNAVAILABLE', 'E_BUSY']);

const REASONS: Record<string, string> = {
  E_QUEUE_FULL: "The recipient's mailbox on the relay is full.",
  E_UNKNOWN_RECIPIENT: 'This relay does not know the recipient.',
  E_TOO_LARGE: 'The message is too long.',
  E_ID_CONFLICT: 'The relay already has a different message under this id.',
};

export interface OutboxOptions {
  history: History;
  /** Sends one queued message (its sealed body) to the relay. */
  send: (message: Message, sealed: string) => Promise<Result<SendResult>>;
  updated: (message: Message) => void;
  online: () => boolean;
  retryDelayMs?: number;
}

export class Outbox {
  private running = false;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly options: OutboxOptions;

  constructor(options: OutboxOptions) {
    this.options = options;
  }

  /** Something was queued, or the connection came back: send what waits. */
  kick(): void {
    clearTimeout(this.timer);
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.drain().finally(() => {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private later(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.kick(), delayMs);
    this.timer.unref();
  }

  private async drain(): Promise<void> {
    const { history, send, updated, online } = this.options;
    while (online()) {
      const batch = history.outbox(20);
      if (batch.length === 0) return;
      for (const message of batch) {
        if (!online()) return;
        const sealed = history.sealedBody(message.n);
        const result: Result<SendResult> = sealed ? await send(message, sealed) : { ok: false, error: { code: 'E_SCHEMA', message: 'nothing to send' } };
        if (result.ok && typeof result.value?.seq === 'number') {
          const sent = history.markSent(message.n, result.value.seq);
          if (sent) updated(sent);
          // The recipient took it before the relay answered: that answer is the delivered receipt.
          if (typeof result.value.deliveredAt === 'number') history.applyReceipt(message.peer, [message.id], 'delivered').forEach(updated);
          continue;
        }
        const code = result.ok ? 'E_INTERNAL' : result.error.code;
        if (TRANSIENT.has(code)) {
          // Keep the order: nothing after this message goes before it.
          this.later(this.options.retryDelayMs ?? (code === 'E_RATE_LIMITED' ? 1500 : 3000));
          return;
        }
        const failed = history.markFailed(message.n, REASONS[code] ?? (result.ok ? 'The relay gave an unexpected answer.' : result.error.message));
        if (failed) updated(failed);
      }
    }
  }
}
