// Test support: a client that behaves like the app across node failures. It knows several
// node URLs and, when its connection drops or is refused, connects to the next one (with a
// fresh hello each time). It keeps an outbox per recipient, sending one message at a time
// with the same id until the relay answers ok (PROTOCOL.md 13.1), and a history that
// deduplicates deliveries by (from, id) (13.2).
import { io } from 'socket.io-client';
import { generateIdentity, type Identity } from '../../relay/identity.ts';
import { buildAuth, fetchHello } from '../../relay/handshake.ts';
import type { Envelope, Result, SendResult, UserEntry } from '../../relay/protocol.ts';
import { newMessageId, type ClientSocket } from './relay.ts';

type Message = Extract<Envelope, { kind: 'message' }>;

interface Pending {
  id: string;
  to: string;
  body: string;
  sentAt: number;
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

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
  /** Error codes the relay answered to sends, and connect errors, with counts. */
  readonly errors = new Map<string, number>();
  deliveries = 0;
  connects = 0;
  private socket: ClientSocket | null = null;
  private index: number;
  private closed = false;
  private readonly outbox = new Map<string, Pending[]>();
  private readonly sending = new Set<string>();

  constructor(urls: string[], options: { identity?: Identity; start?: number; name?: string } = {}) {
    this.urls = urls;
    this.identity = options.identity ?? generateIdentity();
    this.index = options.start ?? 0;
    this.name = options.name ?? 'failover tester';
  }

  private readonly name: string;

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

  /** Connects to the current node, or the next ones, until one admits it. */
  async connect(deadlineMs = 20_000): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    while (!this.closed) {
      try {
        await this.attempt(this.url);
        return;
      } catch (error) {
        this.count(`connect:${error instanceof Error ? error.message : String(error)}`);
        if (Date.now() > deadline) throw new Error(`could not connect to any node: ${String(error)}`, { cause: error });
        this.index += 1;
        await pause(100);
      }
    }
  }

  private attempt(url: string): Promise<void> {
    const socket: ClientSocket = io(url, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: 3000,
      auth: (cb) => {
        fetchHello(new URL(url), AbortSignal.timeout(3000)).then(
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
        }
      }
      ack({ ok: true });
    });
    socket.on('presence:update', (user) => this.presence.push(user));
    return new Promise<void>((resolve, reject) => {
      socket.once('connect', () => {
        this.socket = socket;
        this.connects += 1;
        socket.once('disconnect', () => {
          if (this.socket === socket) this.socket = null;
          if (this.closed) return;
          // Lost the node: fail over to the next one.
          this.index += 1;
          void this.connect().catch(() => undefined);
        });
        for (const to of this.outbox.keys()) void this.drain(to);
        resolve();
      });
      socket.once('connect_error', (error) => {
        socket.disconnect();
        reject(error);
      });
    });
  }

  /** Queues a message; it is sent (and resent) until the relay acknowledges it. */
  send(to: string, body: string): string {
    const id = newMessageId();
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
          continue; // the socket dropped or the node is gone: resend the same id, maybe elsewhere
        }
        if (answer.ok) {
          this.ackMs.push(performance.now() - emitted);
          this.acked.set(next.id, answer.value.seq);
          this.outbox.get(to)?.shift();
        } else {
          this.count(answer.error.code);
          await pause(100);
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
