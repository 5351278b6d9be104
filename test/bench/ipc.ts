// Typed request/response over the Node IPC channel between the bench and its children.
// Each API maps a command name to [arguments, result].
import type { ChildProcess } from 'node:child_process';
import type { HistogramData } from './stats.ts';

export type RelayKind = 'parley' | 'baseline';

export interface Lag {
  p99Ms: number;
  maxMs: number;
}

export interface ConnectResult {
  connected: number;
  failed: number;
  /** Connections of this load generator the relay has dropped so far. */
  dropped: number;
  ms: number;
  /** Connections per second over the whole batch. */
  perSecond: number;
  /** Connections made by the end of each second. */
  timeline: number[];
  firstError?: string;
}

export interface RunResult {
  sent: number;
  /** Messages that reached their recipient (first delivery only). */
  delivered: number;
  /** Parley only: sends answered {ok:true}. */
  acked: number;
  /** Sends answered with an error (Parley), or connections lost mid-run. */
  errors: number;
  /** Sent but never delivered within the run (and its grace period). */
  lost: number;
  /** Deliveries of ids no longer awaited (redeliveries, or from an earlier run). */
  stray: number;
  ms: number;
  /** send -> recipient receives, µs. */
  deliver: HistogramData;
  /** Parley: send -> the sender's ack, µs. */
  ack: HistogramData;
  /** CPU time this load generator spent during the run, ms. */
  cpuMs: number;
  firstError?: string;
}

export interface DrainResult {
  expected: number;
  delivered: number;
  ms: number;
  connectMs: number;
}

export interface LoadApi {
  connect: [{ kind: RelayKind; url: string; pairs: number; concurrency: number; tag: string; timeoutMs: number }, ConnectResult];
  /** Open loop: `rate` messages/s spread over every client (each sends to its partner). */
  open: [{ rate: number; durationMs: number; graceMs: number; bodyBytes: number }, RunResult];
  /** Closed loop: each client keeps `window` messages in flight to its partner. */
  closed: [{ window: number; durationMs: number; warmupMs: number; bodyBytes: number }, RunResult];
  /** Disconnects the second client of every pair (the receivers). */
  dropReceivers: [Record<string, never>, { dropped: number }];
  /** Senders each send `perSender` messages to their offline partner, `window` unacked at most. */
  fill: [{ perSender: number; window: number; bodyBytes: number }, RunResult];
  /** Receivers reconnect and drain their mailboxes. */
  drain: [{ concurrency: number; timeoutMs: number }, DrainResult];
  /** Connections open now, and dropped by the relay so far. */
  count: [Record<string, never>, { connected: number; dropped: number; reasons: Record<string, number> }];
  /** Event-loop delay since the last call, ms. */
  lag: [Record<string, never>, Lag];
  close: [Record<string, never>, { closed: number }];
}

export interface RelayApi {
  /** Runs a full GC (when exposed) and reports memory: RSS, JS heap in use, young generation (both semi-spaces). */
  mem: [Record<string, never>, { rss: number; heapUsed: number; youngBytes: number }];
  /** Event-loop delay since the last call, ms. */
  lag: [Record<string, never>, Lag];
  /** Closes the relay and exits the process. */
  stop: [Record<string, never>, { stopped: true }];
}

type Api<A> = { [K in keyof A]: [unknown, unknown] };
interface Request {
  rid: number;
  cmd: string;
  args: unknown;
}
interface Response {
  rid: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

const isRequest = (m: unknown): m is Request => typeof m === 'object' && m !== null && 'rid' in m && 'cmd' in m;
const isResponse = (m: unknown): m is Response => typeof m === 'object' && m !== null && 'rid' in m && 'ok' in m;

/** In a child: answers requests from the parent. Exits when the parent goes away. */
export function serve<A extends Api<A>>(handlers: { [K in keyof A]: (args: A[K][0]) => Promise<A[K][1]> }): void {
  const send = (r: Response) => process.send?.(r);
  process.on('message', (m: unknown) => {
    if (!isRequest(m)) return;
    const table = handlers as Record<string, ((args: unknown) => Promise<unknown>) | undefined>;
    const handler = Object.hasOwn(table, m.cmd) ? table[m.cmd] : undefined;
    if (!handler) return send({ rid: m.rid, ok: false, error: `unknown command ${m.cmd}` });
    handler(m.args).then(
      (value) => send({ rid: m.rid, ok: true, value }),
      (error: unknown) => send({ rid: m.rid, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}

/** In the parent: calls a child's handlers. */
export class Rpc<A extends Api<A>> {
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly child: ChildProcess;

  constructor(child: ChildProcess) {
    this.child = child;
    child.on('message', (m: unknown) => {
      if (!isResponse(m)) return;
      const w = this.waiting.get(m.rid);
      this.waiting.delete(m.rid);
      if (m.ok) w?.resolve(m.value);
      else w?.reject(new Error(m.error ?? 'child failed'));
    });
    child.on('exit', (code, signal) => {
      for (const w of this.waiting.values()) w.reject(new Error(`child exited (${code ?? signal})`));
      this.waiting.clear();
    });
  }

  call<K extends keyof A & string>(cmd: K, args: A[K][0]): Promise<A[K][1]> {
    const rid = this.next++;
    return new Promise<A[K][1]>((resolve, reject) => {
      this.waiting.set(rid, { resolve: (v) => resolve(v as A[K][1]), reject });
      this.child.send({ rid, cmd, args } satisfies Request);
    });
  }
}
