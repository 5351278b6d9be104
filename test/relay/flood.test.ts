import { describe, expect, it } from 'vitest';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { eventually, newMessageId, useRelay } from '../support/relay.ts';
import { FailoverClient } from '../support/failover.ts';
import { quantile } from '../support/steady.ts';
import { generateIdentity } from '../../relay/identity.ts';
import { buildAuth, fetchHello } from '../../relay/handshake.ts';

const scope = useRelay();

describe('a flooding client', () => {
  it('is rate limited while other people’s messages still flow', async () => {
    await scope.start({ rate: { capacity: 50, perSecond: 25, abuseMs: 60_000 } });
    const [flooder, victim, carol, dave] = await Promise.all([0, 1, 2, 3].map(() => scope.join()));

    const flood = Promise.all(Array.from({ length: 2000 }, (_, i) => flooder!.send(victim!.id, `spam ${i}`, newMessageId()).catch(() => undefined)));
    const conversation: string[] = [];
    for (let i = 0; i < 20; i++) {
      const id = newMessageId();
      expect(await carol!.send(dave!.id, `hello ${i}`, id)).toMatchObject({ ok: true });
      conversation.push(id);
    }
    await eventually(() => conversation.every((id) => dave!.messages().some((m) => m.id === id)), 'carol to dave during the flood');

    const results = await flood;
    const limited = results.filter((r) => r && !r.ok && r.error.code === 'E_RATE_LIMITED').length;
    const accepted = results.filter((r) => r?.ok).length;
    expect(limited).toBeGreaterThan(1000);
    expect(accepted).toBeGreaterThanOrEqual(50);
    await eventually(() => victim!.messages().length === accepted, `the ${accepted} accepted spam messages, once each`);
  });

  it('is disconnected when it stays over the limit', async () => {
    await scope.start({ rate: { capacity: 10, perSecond: 5, abuseMs: 500 } });
    const [flooder, target] = await Promise.all([0, 1].map(() => scope.join()));
    const gone = new Promise<string>((resolve) => flooder!.socket.once('disconnect', resolve));
    const spam = setInterval(() => {
      for (let i = 0; i < 20; i++) flooder!.socket.emit('message:send', { id: newMessageId(), to: target!.id, body: 'x', sentAt: 0 }, () => undefined);
    }, 20);
    try {
      expect(await gone).toBe('io server disconnect');
    } finally {
      clearInterval(spam);
    }
    const fresh = await scope.join();
    expect(await fresh.send(target!.id, 'hello')).toMatchObject({ ok: true });
  });

  // A9 event-flood (RELIABILITY.md). The sustained-abuse rule is the relay's default (10 s over
  // the limit, never pausing 1 s: PROTOCOL.md 6.1); the budget is not, so that all 10,000
  // messages get through within the test (at the default 50/s that alone would take 200 s):
  // the refill is 600/s (well under what this relay can accept on a busy machine, or the flood
  // would not stay over it), and the bucket 1,000, so that a client that pauses 1.5 s after
  // each refusal, like the app, drains the rest at about the refill rate. About 7,500 get in
  // during the flood; the other 2,500 wait in the outbox and are sent after the cut-off.
  it('A9: a client flooding 10,000 sends is refused, cut off after 10 s over the limit, and its outbox delivers every one once later', { timeout: 60_000 }, async () => {
    const RATE = { capacity: 1_000, perSecond: 600, abuseMs: 10_000 };
    const relay = await scope.start({ rate: RATE });
    const victim = scope.track(new FailoverClient([relay.url], { name: 'victim' }));
    await victim.connect();
    const [carol, dave] = await Promise.all([0, 1].map(() => scope.join()));

    const identity = generateIdentity();
    const bodies = new Map(Array.from({ length: 10_000 }, (_, i) => [newMessageId(), `flood ${i}`] as const));
    const auth = buildAuth(identity, await fetchHello(new URL(relay.url)), { name: 'flooder' });
    // The relay runs in this thread: its event loop's lag is the timer delay beyond the
    // resolution. What the machine adds (other work on its two cores) is measured alongside by
    // a thread that does nothing, and not counted against the relay.
    const lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
    lag.enable();
    const lagP99 = () => lag.percentile(99) / 1e6 - LAG_RESOLUTION_MS;
    const idle = idleLag();
    const flood = runFlooder({ url: relay.url, auth, to: victim.id, messages: [...bodies] });

    // Someone else's conversation goes on meanwhile: carol sends to dave every 20 ms.
    const others: number[] = [];
    let flooding = true;
    const conversation = (async () => {
      while (flooding) {
        const started = performance.now();
        expect(await carol!.send(dave!.id, `hello ${others.length}`)).toMatchObject({ ok: true });
        others.push(performance.now() - started);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const report = await flood.finally(() => {
      lag.disable();
      flooding = false;
    });
    await conversation;
    others.sort((a, b) => a - b);
    const idleP99 = await idle.p99();

    expect(report.error).toBeUndefined();
    expect(report.reason).toBe('io server disconnect');
    // Over the limit from its first refusal on, never pausing: cut off 10 s after it (which is
    // seen here a little after the relay sent it), never within 10 s of the first send.
    const { firstEmit = 0, firstRefusal = 0, cutOff = 0 } = report;
    expect(cutOff - firstEmit).toBeGreaterThanOrEqual(RATE.abuseMs);
    expect(cutOff - firstRefusal).toBeGreaterThan(RATE.abuseMs - 500);
    expect(cutOff - firstRefusal).toBeLessThan(RATE.abuseMs + 1_000);
    // Everything over the bucket was refused, and only with E_RATE_LIMITED.
    expect(Object.keys(report.answers).sort()).toEqual(['E_RATE_LIMITED', 'ok']);
    expect(report.answers.E_RATE_LIMITED).toBeGreaterThan(10_000);
    // Meanwhile the others' answers and the relay's event loop stayed quick.
    expect(others.length).toBeGreaterThan(100);
    expect(quantile(others, 0.99)).toBeLessThan(100);
    expect(lagP99() - idleP99).toBeLessThan(50);

    // What was ok'd arrives; what was refused was not carried out: no more arrived than the
    // budget allowed over the flood (the bucket plus the refill), ok'd or cut off unanswered.
    const acked = new Map(report.acked);
    await eventually(() => victim.history.length >= acked.size, 'the accepted messages', 10_000);
    await new Promise((r) => setTimeout(r, 200));
    expect(victim.history.length).toBeLessThanOrEqual(Math.min(acked.size + report.unanswered.length, RATE.capacity + (RATE.perSecond * (cutOff - firstEmit)) / 1000 + 10));

    // The same person, now behaving like the app (a pause after E_RATE_LIMITED), sends what is
    // left in the outbox under the same ids: all arrive, each once.
    const left = [...bodies].filter(([id]) => !acked.has(id));
    expect(left.length).toBe(report.refused.length + report.unanswered.length);
    const app = scope.track(new FailoverClient([relay.url], { identity, name: 'flooder' }));
    await app.connect();
    for (const [id, body] of left) app.send(victim.id, body, id);
    await eventually(() => app.pending === 0, 'the outbox to drain', 15_000);
    await eventually(() => victim.history.length >= bodies.size, 'all 10,000 messages', 5_000);
    expect(victim.history.map((m) => m.id).sort()).toEqual([...bodies.keys()].sort());
    expect(victim.history.every((m) => m.from === identity.userId)).toBe(true);
    expect([...victim.seqsOf.values()].filter((seqs) => seqs.size > 1)).toEqual([]);
    for (const m of victim.history) expect(m.seq).toBe(acked.get(m.id) ?? app.acked.get(m.id));
    // A client that backs off is never cut off.
    expect(app.connects).toBe(1);
    console.log(`A9: ${acked.size} ok during the flood, ${report.answers.E_RATE_LIMITED} E_RATE_LIMITED, cut off ${cutOff - firstRefusal} ms after the first; ${left.length} left sent later; others' ack p99 ${quantile(others, 0.99).toFixed(1)} ms (${others.length}), loop lag p99 ${lagP99().toFixed(1)} ms (an idle thread's ${idleP99.toFixed(1)})`);
  });
});

/** monitorEventLoopDelay samples with a timer of this period; what it records includes the period. */
const LAG_RESOLUTION_MS = 10;

/** The event-loop lag p99 (ms) of a thread that does nothing: what the machine alone adds. */
function idleLag(): { p99: () => Promise<number> } {
  const worker = new Worker(`
const { parentPort } = require('node:worker_threads');
const lag = require('node:perf_hooks').monitorEventLoopDelay({ resolution: ${LAG_RESOLUTION_MS} });
lag.enable();
parentPort.once('message', () => parentPort.postMessage(lag.percentile(99) / 1e6 - ${LAG_RESOLUTION_MS}));
`, { eval: true });
  return {
    p99: () =>
      new Promise<number>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.postMessage('stop');
      }).finally(() => void worker.terminate()),
  };
}

interface FloodReport {
  reason?: string;
  error?: string;
  /** Date.now() of the first emit, the first E_RATE_LIMITED and the disconnect. */
  firstEmit?: number;
  firstRefusal?: number;
  cutOff?: number;
  answers: Record<string, number>;
  acked: [string, number][];
  /** Ids whose last answer was E_RATE_LIMITED, and those without an answer when cut off. */
  refused: string[];
  unanswered: string[];
}

/**
 * The flooder runs in a worker thread, on an event loop (and a core) of its own, as another
 * machine would: the lag measured in the test's thread is then the relay's (and its light
 * clients'), not the flooder's, and the flooder can send faster than the relay reads. It
 * emits every message of its outbox as fast as it can, each refused one again at once,
 * without the pause the protocol asks for, until the relay cuts it off (or `giveUpMs`
 * passes, or nothing is left). Plain JavaScript: a worker runs it without the test's transform.
 */
const FLOODER = `
const { parentPort, workerData } = require('node:worker_threads');
const { io } = require('socket.io-client');
const { url, auth, to, messages, giveUpMs } = workerData;
const bodies = new Map(messages);
const ready = messages.map(([id]) => id);
/** Each message not yet ok'd: queued, in flight or refused (its last answer E_RATE_LIMITED). */
const state = new Map(messages.map(([id]) => [id, 'queued']));
const report = { answers: {}, acked: [], refused: [], unanswered: [] };
const socket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true, auth });
const done = () => {
  for (const [id, s] of state) (s === 'refused' ? report.refused : report.unanswered).push(id);
  parentPort.postMessage(report);
  socket.disconnect();
};
socket.once('connect_error', (e) => { report.error = e.message; done(); });
socket.once('disconnect', (reason) => { report.cutOff = Date.now(); report.reason = reason; });
socket.once('connect', async () => {
  report.firstEmit = Date.now();
  // Until cut off, or every message is ok'd (nothing left to flood with), or giving up.
  while (report.cutOff === undefined && state.size > 0 && Date.now() - report.firstEmit < giveUpMs) {
    for (const id of ready.splice(0, 500)) {
      state.set(id, 'in flight');
      socket.timeout(30000).emit('message:send', { id, to, body: bodies.get(id), sentAt: Date.now() }, (error, answer) => {
        if (error) return; // cut off before the answer: the outcome is unknown
        const code = answer.ok ? 'ok' : answer.error.code;
        report.answers[code] = (report.answers[code] ?? 0) + 1;
        if (answer.ok) {
          report.acked.push([id, answer.value.seq]);
          state.delete(id);
        } else {
          report.firstRefusal ??= Date.now();
          state.set(id, 'refused');
          ready.push(id);
        }
      });
    }
    await new Promise((r) => (ready.length > 0 ? setImmediate(r) : setTimeout(r, 1)));
  }
  done();
});
`;

function runFlooder(data: { url: string; auth: object; to: string; messages: [string, string][] }): Promise<FloodReport> {
  const worker = new Worker(FLOODER, { eval: true, workerData: { ...data, giveUpMs: 25_000 } });
  return new Promise<FloodReport>((resolve, reject) => {
    worker.once('message', (report: FloodReport) => resolve(report));
    worker.once('error', reject);
  }).finally(() => void worker.terminate());
}
