// One or more load-generator processes driven as one: pairs and rates are split between
// them, results are summed and their histograms merged.
import { cpuMsOf, startLoadgen, type LoadProc } from './procs.ts';
import type { ConnectResult, DrainResult, Lag, RelayKind, RunResult } from './ipc.ts';
import { merged, type Histogram } from './stats.ts';

/** One run's figures summed over the load generators (CPU is measured per process instead). */
export type Totals = Omit<RunResult, 'deliver' | 'ack' | 'cpuMs'> & { deliver: Histogram; ack: Histogram };

function total(parts: RunResult[]): Totals {
  const sum = (f: (r: RunResult) => number) => parts.reduce((s, r) => s + f(r), 0);
  const ms = Math.max(...parts.map((r) => r.ms));
  const firstError = parts.find((r) => r.firstError !== undefined)?.firstError;
  return {
    sent: sum((r) => r.sent), delivered: sum((r) => r.delivered), acked: sum((r) => r.acked), errors: sum((r) => r.errors),
    lost: sum((r) => r.lost), stray: sum((r) => r.stray), ms,
    deliver: merged(...parts.map((r) => r.deliver)), ack: merged(...parts.map((r) => r.ack)),
    ...(firstError === undefined ? {} : { firstError }),
  };
}

/** Splits `n` into `k` near-equal whole parts. */
const split = (n: number, k: number) => Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));

export class Fleet {
  private readonly procs: LoadProc[];

  private constructor(procs: LoadProc[]) {
    this.procs = procs;
  }

  static start(count: number, fileLimit: number): Fleet {
    return new Fleet(Array.from({ length: Math.max(1, count) }, () => startLoadgen(fileLimit)));
  }

  get pids(): number[] {
    return this.procs.map((p) => p.pid);
  }

  cpuMs(): number {
    return this.pids.reduce((s, pid) => s + cpuMsOf(pid), 0);
  }

  async connect(kind: RelayKind, url: string, pairs: number, concurrency: number, timeoutMs: number): Promise<ConnectResult> {
    const shares = split(pairs, this.procs.length);
    const perProc = split(concurrency, this.procs.length).map((c) => Math.max(1, c));
    const parts = await Promise.all(this.procs.map((p, i) =>
      p.rpc.call('connect', { kind, url, pairs: shares[i] ?? 0, concurrency: perProc[i] ?? 1, tag: `${kind}${i}`, timeoutMs })));
    const connected = parts.reduce((s, r) => s + r.connected, 0);
    const ms = Math.max(...parts.map((r) => r.ms));
    const firstError = parts.find((r) => r.firstError !== undefined)?.firstError;
    const timeline = Array.from({ length: Math.max(...parts.map((r) => r.timeline.length)) }, (_, i) => parts.reduce((s, r) => s + (r.timeline[i] ?? r.connected), 0));
    return {
      connected, failed: parts.reduce((s, r) => s + r.failed, 0), dropped: parts.reduce((s, r) => s + r.dropped, 0), ms, perSecond: (connected / ms) * 1000, timeline,
      ...(firstError === undefined ? {} : { firstError }),
    };
  }

  async open(rate: number, durationMs: number, graceMs: number, bodyBytes: number): Promise<Totals> {
    const rates = this.procs.map(() => rate / this.procs.length);
    return total(await Promise.all(this.procs.map((p, i) => p.rpc.call('open', { rate: rates[i] ?? 0, durationMs, graceMs, bodyBytes }))));
  }

  async closed(window: number, durationMs: number, warmupMs: number, bodyBytes: number): Promise<Totals> {
    return total(await Promise.all(this.procs.map((p) => p.rpc.call('closed', { window, durationMs, warmupMs, bodyBytes }))));
  }

  async count(): Promise<{ connected: number; dropped: number; reasons: Record<string, number> }> {
    const parts = await Promise.all(this.procs.map((p) => p.rpc.call('count', {})));
    const reasons: Record<string, number> = {};
    for (const part of parts) for (const [why, n] of Object.entries(part.reasons)) reasons[why] = (reasons[why] ?? 0) + n;
    return { connected: parts.reduce((s, r) => s + r.connected, 0), dropped: parts.reduce((s, r) => s + r.dropped, 0), reasons };
  }

  /** The worst event-loop delay among the load generators since the last call. */
  async lag(): Promise<Lag> {
    const parts = await Promise.all(this.procs.map((p) => p.rpc.call('lag', {})));
    return { p99Ms: Math.max(...parts.map((l) => l.p99Ms)), maxMs: Math.max(...parts.map((l) => l.maxMs)) };
  }

  async dropReceivers(): Promise<number> {
    const parts = await Promise.all(this.procs.map((p) => p.rpc.call('dropReceivers', {})));
    return parts.reduce((s, r) => s + r.dropped, 0);
  }

  async fill(perSender: number, window: number, bodyBytes: number): Promise<Totals> {
    return total(await Promise.all(this.procs.map((p) => p.rpc.call('fill', { perSender, window, bodyBytes }))));
  }

  async drain(concurrency: number, timeoutMs: number): Promise<DrainResult> {
    const parts = await Promise.all(this.procs.map((p) => p.rpc.call('drain', { concurrency, timeoutMs })));
    return {
      expected: parts.reduce((s, r) => s + r.expected, 0),
      delivered: parts.reduce((s, r) => s + r.delivered, 0),
      ms: Math.max(...parts.map((r) => r.ms)),
      connectMs: Math.max(...parts.map((r) => r.connectMs)),
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop()));
  }
}
