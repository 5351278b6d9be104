// Test support: a client that behaves like the app across node failures. It knows several
// node URLs and, when its connection drops or is refused, connects to the next one (with a
// fresh hello each time), after a jittered exponential backoff as the app's socket.io-client
// does it (PROTOCOL.md 13.4), and never gives up until closed. It keeps an outbox per
// recipient, sending one message at a time with the same id until the relay answers ok
// (13.1), and a history that deduplicates deliveries by (from, id) (13.2).
import { io } from 'socket.io-client';
import { generateIdentity, type Identity } from '../../relay/identity.ts';
import { buildAuth, fetchHello } from '../../relay/handshake.ts';
import type { Envelope, Result, SendResult, UserEntry } from '../../relay/protocol.ts';
import { newMessageId, type ClientSocket } from './relay.ts';
import { RECONNECT_BACKOFF } from '../../main/core/connection.ts';
import { RETRY_MS } from '../../main/core/outbox.ts';

type Message = Extract<Envelope, { kind: 'message' }>;

interface Pending {
  id: string;
  to: string;
  body: string;
  sentAt: number;
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The app's outbox's pause after E_RATE_LIMITED. */
const RATE_LIMITED_PAUSE_MS = RETRY_MS.get('E_RATE_LIMITED') ?? 1_500;

/** Reconnect backoff: the n-th retry waits min(maxMs, minMs * 2^n), give or take `jitter` of it. */
export interface Backoff {
  minMs: number;
  maxMs: number;
  /** 0..1: each delay is spread uniformly over ±jitter of its nominal value. */
  jitter: number;
}

/**
 * The app's (main/core/connection.ts): socket.io-client's Manager waits 500 ms · 2^n ± 50 %
 * (at most 10 s) before the n-th retry, the first one after a loss included.
 */
export const APP_BACKOFF: Backoff = RECONNECT_BACKOFF;

export function backoffDelay(backoff: Backoff, retry: number, random: () => number = Math.random): number {
  const nominal = backoff.minMs * 2 ** Math.min(retry, 30);
  return Math.min(backoff.maxMs, nominal * (1 + backoff.jitter * (2 * random() - 1)));
}

export class FailoverClient {
  readonly identity: Identity;
  readonly urls: string[];
  /** First arrival of each (from, id), in arrival order: what the app would store. */
  readonly history: Message[] = [];
  /** Every seq seen per (from, id), redeliveries included: more than one means stored twice. */
  readonly seqsOf = new Map<string, Set<number>>();
  readonly receipts: Extract<Envelope, { kind: 'receipt' }>[] = [];
  readonly presence: UserEntry[] = [];
  /** Per recipient: ids in the order they were handed to the outbox, and the seq each got. */
  readonly sent = new Map<string, string[]>();
  readonly acked = new Map<string, number>();
  /** How long each ok'd send waited for its answer, ms (from the emit that got the ok). */
  readonly ackMs: number[] = [];
  /** Ids sent again because a send of them got no answer (a timeout, a lost connection). */
  readonly unanswered = new Set<string>();
  /** For each first arrival: ms from its sender queueing it (its sentAt) to here; clients share one clock. */
  readonly deliveryMs: number[] = [];
  /** Error codes the relay answered to sends, and connect errors, with counts. */
  readonly errors = new Map<string, number>();
  deliveries = 0;
  connects = 0;
  /** When each connect attempt started (Date.now()), and when the connection was last made and lost. */
  readonly attempts: number[] = [];
  /** Each backoff before a retry: when it was chosen, and how long. */
  readonly waits: { at: number; ms: number }[] = [];
  lastConnectAt = 0;
  lastLossAt = 0;
  private socket: ClientSocket | null = null;
  private index: number;
  private closed = false;
  private readonly outbox = new Map<string, Pending[]>();
  private readonly sending = new Set<string>();

  constructor(urls: string[], options: { identity?: Identity; start?: number; name?: string; backoff?: Backoff } = {}) {
    this.urls = urls;
    this.identity = options.identity ?? generateIdentity();
    this.index = options.start ?? 0;
    this.name = options.name ?? 'failover tester';
    this.backoff = options.backoff ?? APP_BACKOFF;
  }

  private readonly name: string;
  private readonly backoff: Backoff;

  get id(): string {
    return this.identity.userId;
  }

  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  /** The URL of the node it is connected to (or trying). */
  get url(): string {
    return this.urls[this.index % this.urls.length]!;
  }

  private count(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  /**
   * Connects to the current node, or the next ones, until one admits it: the first attempt at
   * once, each retry after the backoff. Rejects when still refused after `deadlineMs`.
   */
  async connect(deadlineMs = 20_000): Promise<void> {
    await this.retry(Date.now() + deadlineMs, false);
  }

  /** After a loss the first attempt waits too (as socket.io-client's Manager does). */
  private async retry(deadline: number, afterLoss: boolean): Promise<void> {
    for (let n = 0; !this.closed; n += 1) {
      if (afterLoss || n > 0) {
        const ms = backoffDelay(this.backoff, afterLoss ? n : n - 1);
        this.waits.push({ at: Date.now(), ms });
        await pause(ms);
      }
      if (this.closed) return;
      try {
        await this.attempt(this.url);
        return;
      } catch (error) {
        this.count(`connect:${error instanceof Error ? error.message : String(error)}`);
        if (Date.now() > deadline) throw new Error(`could not connect to any node: ${String(error)}`, { cause: error });
        this.index += 1;
      }
    }
  }

  private attempt(url: string): Promise<void> {
    this.attempts.push(Date.now());
    const socket: ClientSocket = io(url, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      // The app's timeouts (main/core/connection.ts): a relay busy with a reconnect storm may
      // take seconds to answer, and giving up sooner only adds the attempt to the storm.
      timeout: 10_000,
      auth: (cb) => {
        fetchHello(new URL(url), AbortSignal.timeout(10_000)).then(
          (hello) => cb(buildAuth(this.identity, hello, { name: this.name })),
          () => cb({}),
        );
      },
    });
    socket.on('message:deliver', (batch, ack) => {
      for (const e of batch) {
        if (e.kind === 'receipt') {
          this.receipts.push(e);
          continue;
        }
        this.deliveries += 1;
        const key = `${e.from}\n${e.id}`;
        const seqs = this.seqsOf.get(key);
        if (seqs) seqs.add(e.seq);
        else {
          this.seqsOf.set(key, new Set([e.seq]));
          this.history.push(e);
          this.deliveryMs.push(Date.now() - e.sentAt);
        }
      }
      ack({ ok: true });
    });
    socket.on('presence:update', (user) => this.presence.push(user));
    return new Promise<void>((resolve, reject) => {
      const refused = (error: Error) => {
        socket.off('disconnect', closedEarly);
        socket.disconnect();
        reject(error);
      };
      // The relay closes a connection it has not admitted within its handshake deadline (a busy
      // relay, or a slow hello): socket.io-client then says 'disconnect', not 'connect_error'.
      const closedEarly = (reason: string) => {
        socket.off('connect_error', refused);
        refused(new Error(`closed before admitted: ${reason}`));
      };
      socket.once('disconnect', closedEarly);
      socket.once('connect_error', refused);
      socket.once('connect', () => {
        socket.off('disconnect', closedEarly);
        socket.off('connect_error', refused);
        this.socket = socket;
        this.connects += 1;
        this.lastConnectAt = Date.now();
        socket.once('disconnect', () => {
          if (this.socket === socket) this.socket = null;
          if (this.closed) return;
          this.lastLossAt = Date.now();
          // Lost the node: fail over to the next one, and keep trying (the app never gives up).
          this.index += 1;
          void this.retry(Number.POSITIVE_INFINITY, true);
        });
        for (const to of this.outbox.keys()) void this.drain(to);
        resolve();
      });
    });
  }

  /**
   * Queues a message; it is sent (and resent) until the relay acknowledges it. `id`: one the
   * sender already tried elsewhere and must keep (13.1); default a new one.
   */
  send(to: string, body: string, id = newMessageId()): string {
    const queue = this.outbox.get(to) ?? [];
    queue.push({ id, to, body, sentAt: Date.now() });
    this.outbox.set(to, queue);
    const order = this.sent.get(to) ?? [];
    order.push(id);
    this.sent.set(to, order);
    void this.drain(to);
    return id;
  }

  /** Messages still waiting for the relay's ok. */
  get pending(): number {
    let n = 0;
    for (const q of this.outbox.values()) n += q.length;
    return n;
  }

  private async drain(to: string): Promise<void> {
    if (this.sending.has(to)) return;
    this.sending.add(to);
    try {
      for (;;) {
        const next = this.outbox.get(to)?.[0];
        const socket = this.socket;
        if (!next || !socket?.connected || this.closed) return;
        let answer: Result<SendResult>;
        const emitted = performance.now();
        try {
          const emit = socket.timeout(5000).emitWithAck as (ev: string, p: unknown) => Promise<Result<SendResult>>;
          answer = await emit.call(socket.timeout(5000), 'message:send', { id: next.id, to: next.to, body: next.body, sentAt: next.sentAt });
        } catch {
          this.count('timeout');
          this.unanswered.add(next.id);
          continue; // the socket dropped or the node is gone: resend the same id, maybe elsewhere
        }
        if (answer.ok) {
          this.ackMs.push(performance.now() - emitted);
          this.acked.set(next.id, answer.value.seq);
          this.outbox.get(to)?.shift();
        } else {
          this.count(answer.error.code);
          // As the app's outbox (main/core/outbox.ts): after E_RATE_LIMITED at least 1 s, or the
          // relay takes it for a flood and cuts the socket off (PROTOCOL.md 6.1).
          await pause(answer.error.code === 'E_RATE_LIMITED' ? RATE_LIMITED_PAUSE_MS : 100);
        }
      }
    } finally {
      this.sending.delete(to);
    }
  }

  close(): void {
    this.closed = true;
    this.socket?.disconnect();
  }
}
