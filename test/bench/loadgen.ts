// Child process: the load generator. Holds pairs of clients (2i and 2i+1 talk to each other),
// drives them as the bench asks over IPC, and reports counts and latency histograms.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createPeer, type Peer } from './clients.ts';
import { serve, type ConnectResult, type LoadApi, type RelayKind, type RunResult } from './ipc.ts';
import { lagSinceLast } from './child.ts';
import { Histogram } from './stats.ts';

let kind: RelayKind = 'parley';
let peers: Peer[] = [];
const pending = new Map<string, { t0: number; from: number }>();
const prefix = randomBytes(6).toString('base64url');
let counter = 0;
let onDelivered: ((from: number) => void) | null = null;
/** Connections lost without close(): the relay dropped them (ping timeout, rate limit...). */
let dropped = 0;
let dropReasons: Record<string, number> = {};

interface Run {
  sent: number;
  delivered: number;
  acked: number;
  errors: number;
  stray: number;
  deliver: Histogram;
  ack: Histogram;
  cpu: NodeJS.CpuUsage;
  started: number;
  firstError?: string;
}
let run: Run = newRun();

function newRun(): Run {
  return { sent: 0, delivered: 0, acked: 0, errors: 0, stray: 0, deliver: new Histogram(), ack: new Histogram(), cpu: process.cpuUsage(), started: performance.now() };
}

function fail(error: string): void {
  run.errors++;
  run.firstError ??= error;
}

function finish(r: Run, ms: number, keepPending = false): RunResult {
  const cpu = process.cpuUsage(r.cpu);
  const lost = keepPending ? 0 : pending.size;
  if (!keepPending) pending.clear();
  return {
    sent: r.sent, delivered: r.delivered, acked: r.acked, errors: r.errors, lost, stray: r.stray, ms,
    deliver: r.deliver.toData(), ack: r.ack.toData(), cpuMs: (cpu.user + cpu.system) / 1000,
    ...(r.firstError === undefined ? {} : { firstError: r.firstError }),
  };
}

function received(id: string): void {
  const p = pending.get(id);
  if (!p) {
    run.stray++;
    return;
  }
  pending.delete(id);
  run.delivered++;
  run.deliver.add((performance.now() - p.t0) * 1000);
  onDelivered?.(p.from);
}

let pad = '';
function sendFrom(index: number): void {
  const from = peers[index];
  const to = peers[index ^ 1];
  if (!from || !to) return;
  const id = `${prefix}${(counter++).toString(36)}`;
  const t0 = performance.now();
  pending.set(id, { t0, from: index });
  run.sent++;
  from.send(to.name, id, `${id}|${pad}`, (error) => {
    if (error !== null) return fail(error);
    if (kind !== 'parley') return;
    run.acked++;
    run.ack.add((performance.now() - t0) * 1000);
  });
}

/** A connect_error's message, and the relay's {code, message} when it sent one. */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const data = 'data' in error ? error.data : undefined;
  return `${error.message || error.name}${data === undefined ? '' : ` ${JSON.stringify(data)}`}`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done() && performance.now() < deadline) await sleep(5);
}

/** Runs `task(i)` for i in [0, n) with at most `concurrency` at once; stops starting new ones after `timeoutMs`. */
async function pool(n: number, concurrency: number, timeoutMs: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const deadline = performance.now() + timeoutMs;
  const worker = async () => {
    while (next < n && performance.now() < deadline) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

async function connectAll(indices: number[], concurrency: number, timeoutMs: number): Promise<ConnectResult> {
  let failed = 0;
  let done = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const timeline: number[] = [];
  const ticker = setInterval(() => timeline.push(done), 1000);
  await pool(indices.length, concurrency, timeoutMs, async (i) => {
    try {
      await peers[indices[i] ?? -1]?.connect();
      done++;
    } catch (error) {
      failed++;
      firstError ??= describeError(error);
    }
  });
  clearInterval(ticker);
  const ms = performance.now() - t0;
  const connected = indices.filter((i) => peers[i]?.connected).length;
  return { connected, failed, dropped, ms, perSecond: (connected / ms) * 1000, timeline, ...(firstError === undefined ? {} : { firstError }) };
}

const bodyPad = (bytes: number) => 'x'.repeat(Math.max(1, bytes - prefix.length - 8));
const live = () => peers.map((_, i) => i).filter((i) => peers[i]?.connected);

serve<LoadApi>({
  async connect({ kind: k, url, pairs, concurrency, tag, timeoutMs }) {
    // Adds pairs to those already held (2i and 2i+1 stay partners).
    kind = k;
    const events = (i: number) => ({
      message: received,
      dropped: (reason: string) => {
        dropped++;
        dropReasons[reason] = (dropReasons[reason] ?? 0) + 1;
        fail(`client ${i} dropped: ${reason}`);
      },
    });
    const first = peers.length;
    for (let i = first; i < first + pairs * 2; i++) peers.push(createPeer(kind, url, `${tag}-${i}`, events(i)));
    return connectAll(peers.map((_, i) => i).slice(first), concurrency, timeoutMs);
  },

  async open({ rate, durationMs, graceMs, bodyBytes }) {
    pad = bodyPad(bodyBytes);
    const senders = live();
    run = newRun();
    const t0 = performance.now();
    let next = 0;
    for (;;) {
      const elapsed = Math.min(performance.now() - t0, durationMs);
      const due = Math.floor((rate * elapsed) / 1000);
      while (run.sent < due && senders.length > 0) sendFrom(senders[next++ % senders.length] ?? 0);
      if (elapsed >= durationMs) break;
      await sleep(1);
    }
    const ms = performance.now() - t0;
    await until(() => pending.size === 0, graceMs);
    return finish(run, ms);
  },

  async closed({ window, durationMs, warmupMs, bodyBytes }) {
    pad = bodyPad(bodyBytes);
    run = newRun();
    let active = true;
    onDelivered = (from) => {
      if (active) sendFrom(from);
    };
    for (const i of live()) for (let w = 0; w < window; w++) sendFrom(i);
    await sleep(warmupMs);
    const before = run.delivered;
    const t0 = performance.now();
    await sleep(durationMs - warmupMs);
    const counted = run.delivered - before;
    const ms = performance.now() - t0;
    active = false;
    onDelivered = null;
    await until(() => pending.size === 0, 5_000);
    const result = finish(run, ms);
    return { ...result, delivered: counted };
  },

  async dropReceivers() {
    let closed = 0;
    for (let i = 1; i < peers.length; i += 2) {
      peers[i]?.close();
      closed++;
    }
    await sleep(500);
    return { dropped: closed };
  },

  async fill({ perSender, window, bodyBytes }) {
    pad = bodyPad(bodyBytes);
    run = newRun();
    const t0 = performance.now();
    const senders = live().filter((i) => i % 2 === 0);
    const all = Promise.all(senders.map((i) => new Promise<void>((resolve) => {
      const from = peers[i];
      const to = peers[i ^ 1];
      if (!from || !to) return resolve();
      let started = 0;
      let answered = 0;
      const one = () => {
        started++;
        const id = `${prefix}${(counter++).toString(36)}`;
        const sentAt = performance.now();
        pending.set(id, { t0: sentAt, from: i });
        run.sent++;
        from.send(to.name, id, `${id}|${pad}`, (error) => {
          answered++;
          if (error === null) {
            run.acked++;
            run.ack.add((performance.now() - sentAt) * 1000);
          } else fail(error);
          if (started < perSender) one();
          else if (answered === perSender) resolve();
        });
      };
      for (let w = 0; w < Math.min(window, perSender); w++) one();
    })));
    await Promise.race([all, new Promise<void>((resolve) => setTimeout(resolve, 120_000).unref())]);
    return finish(run, performance.now() - t0, true);
  },

  async drain({ concurrency, timeoutMs }) {
    const expected = pending.size;
    run = newRun();
    const t0 = performance.now();
    const receivers = peers.map((_, i) => i).filter((i) => i % 2 === 1);
    const connected = await connectAll(receivers, concurrency, timeoutMs);
    await until(() => pending.size === 0, Math.max(0, timeoutMs - connected.ms));
    const ms = performance.now() - t0;
    pending.clear();
    return { expected, delivered: run.delivered, ms, connectMs: connected.ms };
  },

  lag: async () => lagSinceLast(),

  async count() {
    return { connected: live().length, dropped, reasons: dropReasons };
  },

  async close() {
    for (const p of peers) p.close();
    dropped = 0;
    dropReasons = {};
    const closed = peers.length;
    peers = [];
    await sleep(200);
    return { closed };
  },
});
