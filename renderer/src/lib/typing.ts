// Tells the peer we are typing without flooding the wire: "typing" at most every few
// seconds while keys are pressed, "stopped" after a pause or when the message is sent.
export interface TypingTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const browserTimers: TypingTimers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export class TypingNotifier {
  static readonly REPEAT_MS = 3_000;
  static readonly IDLE_MS = 4_000;
  private sentAt = 0;
  private active = false;
  private idle: unknown = null;

  constructor(
    private readonly send: (typing: boolean) => void,
    private readonly timers: TypingTimers = browserTimers,
  ) {}

  /** A key was pressed in the composer. */
  input(): void {
    const now = this.timers.now();
    if (!this.active || now - this.sentAt >= TypingNotifier.REPEAT_MS) {
      this.active = true;
      this.sentAt = now;
      this.send(true);
    }
    if (this.idle !== null) this.timers.clearTimeout(this.idle);
    this.idle = this.timers.setTimeout(() => this.stop(), TypingNotifier.IDLE_MS);
  }

  /** Sent, cleared or left the conversation. */
  stop(): void {
    if (this.idle !== null) this.timers.clearTimeout(this.idle);
    this.idle = null;
    if (!this.active) return;
    this.active = false;
    this.send(false);
  }
}
