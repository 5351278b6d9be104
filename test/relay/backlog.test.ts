// D5 backlog-replay (RELIABILITY.md): someone who was away comes back to 20,000 messages that
// 5 people queued for them at the relay. Pass: the relay replays the backlog in pages (each
// delivery batch at most LIMITS.batchSize envelopes and LIMITS.batchBytes body bytes, and full
// but for the last), every message arrives once with the body it was sent with, each
// conversation in its sender's order, the mailbox is empty afterwards, and the relay's RSS
// grows by less than 50 MB meanwhile. The rate (RELIABILITY.md: >= 2,000 msg/s) is printed,
// not asserted: speed is measured by the bench (npm run bench -- --only b, its D5 line).
//
// The relay is a process of its own, so that its memory is its own: the bench's relay child
// (test/bench/parley-relay.ts), the headless relay's relay and SQLite store with limits opened
// up for load. The headless relay (relay/cli.ts) cannot hold this backlog: it caps a mailbox at
// 10,000 messages (B7, PROTOCOL.md) with no flag to raise it, and its per-socket budget of
// 50 messages/s would take 5 senders 80 s to queue 20,000.
//
// Bodies are 200 bytes, as in D1 (D5 names no size). Larger ones make the relay's RSS grow
// more while it replays, with its heap in use after a GC as small as before (V8 keeps the old
// space that pages waiting for their ack were promoted to): 10,000 bodies of 8 KB took a
// fresh relay +51 MB on this machine, 2 KB bodies +48 MB (+98-105 MB for 8 KB while a page
// still read 500 rows to send 128 of them). Pages cut by bytes are checked on their own, on
// an in-process relay, where memory is not measured.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connectClient, eventually, newMessageId, tempDir, useRelay, type TestClient } from '../support/relay.ts';
import { rssOf, startRelay } from '../bench/procs.ts';
import { readDb } from '../support/db.ts';
import { generateIdentity } from '../../relay/identity.ts';
import { LIMITS, type Envelope, type SendPayload } from '../../relay/protocol.ts';

const scope = useRelay();

const SENDERS = 5;
const EACH = 4_000;
const TOTAL = SENDERS * EACH;
const BODY = 200;
const RSS_BOUND = 50 * 1024 * 1024;

/** The bench's relay child over SQLite in `dir` (kept across restarts). */
const startRelayProcess = (dir: string) => startRelay('parley', { fileLimit: 65_536, dataDir: dir });

/** Envelopes the mailbox of the relay over `dir` holds (for `recipient`, or for anyone), read from its file. */
function held(dir: string, recipient?: string): number {
  const row = readDb(join(dir, 'relay.db'), (db) => (recipient === undefined ? db.prepare('SELECT count(*) AS n FROM mailbox').get() : db.prepare('SELECT count(*) AS n FROM mailbox WHERE recipient = ?').get(recipient)));
  return (row as { n: number }).n;
}

const bodyBytes = (batch: readonly Envelope[]) => batch.reduce((sum, e) => sum + (e.kind === 'message' ? Buffer.byteLength(e.body) : 0), 0);

/** `count` messages to `to`, each body `size` bytes and saying whose and which it is. */
function plan(from: number, to: string, count: number, size: number): SendPayload[] {
  return Array.from({ length: count }, (_, n) => {
    const head = `${from}:${n}:`;
    return { id: newMessageId(), to, body: head + 'x'.repeat(size - head.length), sentAt: Date.now() };
  });
}

/**
 * Queues `messages` in message:send-many requests of at most LIMITS.sendBatch that fit in a
 * frame, one request at a time (as the app's outbox does, to keep its order).
 */
async function queue(sender: TestClient, messages: SendPayload[]): Promise<void> {
  const budget = LIMITS.frameBytes - 2_048; // the event name, the ack id and the JSON around them
  const requests: SendPayload[][] = [[]];
  let size = 0;
  for (const m of messages) {
    const bytes = JSON.stringify(m).length + 1;
    if (requests.at(-1)!.length === LIMITS.sendBatch || size + bytes > budget) {
      requests.push([]);
      size = 0;
    }
    requests.at(-1)!.push(m);
    size += bytes;
  }
  for (const batch of requests) {
    const answer = await sender.request('message:send-many', { messages: batch }, 30_000);
    if (!answer.ok) throw new Error(`send-many refused: ${answer.error.code} ${answer.error.message}`);
    const refused = answer.value.results.find((r) => !r.ok);
    if (refused) throw new Error(`a message was refused: ${JSON.stringify(refused)}`);
  }
}

/** Bob's side: every delivery batch, noted and acknowledged at once. */
function recorder(): { batches: { envelopes: Envelope[]; at: number }[]; onDeliver: (batch: Envelope[]) => { ok: true } } {
  const batches: { envelopes: Envelope[]; at: number }[] = [];
  return {
    batches,
    onDeliver: (batch) => {
      batches.push({ envelopes: batch, at: performance.now() });
      return { ok: true };
    },
  };
}

/**
 * Paged: no batch over a page, by count or by bytes (one envelope alone may be larger), and
 * every batch but the last a full page: the next envelope would not have fitted.
 */
function expectPages(batches: { envelopes: Envelope[] }[]): void {
  for (const [i, { envelopes }] of batches.entries()) {
    expect(envelopes.length).toBeGreaterThan(0);
    expect(envelopes.length).toBeLessThanOrEqual(LIMITS.batchSize);
    if (envelopes.length > 1) expect(bodyBytes(envelopes)).toBeLessThanOrEqual(LIMITS.batchBytes);
    const next = batches[i + 1]?.envelopes[0];
    if (next) expect(envelopes.length === LIMITS.batchSize || bodyBytes([...envelopes, next]) > LIMITS.batchBytes, `batch ${i} of ${envelopes.length} is not a full page`).toBe(true);
  }
}

/** Once each, with the body it was sent with; in the relay's order, each conversation in its sender's. */
function expectOnceInOrder(received: Envelope[], sent: Map<string, SendPayload[]>): void {
  const total = [...sent.values()].reduce((n, list) => n + list.length, 0);
  expect(received.every((e) => e.kind === 'message')).toBe(true);
  const messages = received.filter((e): e is Extract<Envelope, { kind: 'message' }> => e.kind === 'message');
  expect(messages).toHaveLength(total);
  expect(new Set(messages.map((m) => `${m.from} ${m.id}`)).size).toBe(total);
  expect(messages.every((m, i) => i === 0 || m.seq > messages[i - 1]!.seq)).toBe(true);
  for (const [from, list] of sent) {
    const mine = messages.filter((m) => m.from === from);
    expect(mine.map((m) => m.id)).toEqual(list.map((m) => m.id));
    expect(mine.every((m, i) => m.body === list[i]!.body)).toBe(true);
  }
}

/** Someone the relay knows (they joined once), away now. */
async function knownAndAway(url: string, watcher?: TestClient) {
  const identity = generateIdentity();
  (await connectClient(url, { identity, name: 'Bob' })).close();
  if (watcher) {
    await eventually(async () => {
      const answer = await watcher.request('directory:get', { ids: [identity.userId] });
      return answer.ok && answer.value.users[0]?.online === false;
    }, 'Bob to be offline');
  }
  return identity;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a backlog replay', () => {
  it(`D5: ${TOTAL.toLocaleString('en')} messages queued for someone away are replayed once each, in each sender's order, in full pages, with relay RSS growing less than 50 MB`, { timeout: 120_000 }, async () => {
    const dir = tempDir();
    scope.track(dir.remove);
    let relay = await startRelayProcess(dir.path);
    scope.track(() => relay.stop());
    const first = await Promise.all(Array.from({ length: SENDERS }, async (_, i) => scope.track(await connectClient(relay.url, { name: `Sender ${i}` }))));
    const bob = await knownAndAway(relay.url, first[0]);

    const sent = new Map(first.map((s, i) => [s.id, plan(i, bob.userId, EACH, BODY)]));
    const queueStart = performance.now();
    await Promise.all(first.map((s) => queue(s, sent.get(s.id)!)));
    const queueMs = performance.now() - queueStart;
    expect(held(dir.path, bob.userId)).toBe(TOTAL);

    // The relay restarts: the backlog waits on disk only, and the relay's memory from then on
    // is the replay's (accepting the backlog grew its heap, room a replay could reuse unseen).
    await relay.stop();
    for (const s of first) s.close();
    relay = await startRelayProcess(dir.path);
    const senders = await Promise.all(first.map(async (s, i) => scope.track(await connectClient(relay.url, { identity: s.identity, name: `Sender ${i}` }))));
    expect(held(dir.path, bob.userId)).toBe(TOTAL);
    await pause(500);
    await relay.rpc.call('mem', {}); // a full GC
    const baseline = rssOf(relay.pid);
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(relay.pid))), 50);
    scope.track(() => clearInterval(sampler));

    // Bob comes back.
    const { batches, onDeliver } = recorder();
    const connectStart = performance.now();
    const back = scope.track(await connectClient(relay.url, { identity: bob, name: 'Bob', onDeliver }));
    const connectedAt = performance.now();
    await eventually(() => back.received.length >= TOTAL, 'the backlog to be replayed', 60_000);
    const lastAt = batches.at(-1)!.at;
    // The mailbox empties: Bob's acknowledgements, and the senders' for their delivered receipts.
    await eventually(() => held(dir.path) === 0, 'the mailbox to be empty', 10_000);
    await eventually(() => senders.every((s) => s.receipts().flatMap((r) => r.ids).length >= EACH), 'the delivered receipts', 10_000);
    clearInterval(sampler);
    peak = Math.max(peak, rssOf(relay.pid));
    await pause(300); // nothing more comes: no redelivery once the mailbox is empty

    const replayMs = lastAt - connectStart;
    const sizes = batches.map((b) => b.envelopes.length);
    console.log(
      `D5: ${TOTAL} queued for one recipient by ${SENDERS} senders in ${(queueMs / 1000).toFixed(1)} s; after a relay restart, replayed in ${batches.length} batches (${Math.min(...sizes)}-${Math.max(...sizes)} envelopes) ` +
        `in ${(replayMs / 1000).toFixed(2)} s from connecting = ${Math.round((TOTAL / replayMs) * 1000)} msg/s (handshake ${Math.round(connectedAt - connectStart)} ms, first batch after ${Math.round(batches[0]!.at - connectStart)} ms); ` +
        `relay RSS ${(baseline / 2 ** 20).toFixed(1)} MB -> peak ${(peak / 2 ** 20).toFixed(1)} MB (+${((peak - baseline) / 2 ** 20).toFixed(1)} MB)`,
    );

    expect(back.received).toHaveLength(TOTAL);
    expectOnceInOrder(back.received, sent);
    expectPages(batches);
    expect(Math.max(...sizes)).toBe(LIMITS.batchSize);
    // Each sender is told once of each of its messages' delivery.
    for (const s of senders) {
      const ids = s.receipts().filter((r) => r.state === 'delivered').flatMap((r) => r.ids);
      expect(ids).toHaveLength(EACH);
      expect(new Set(ids)).toEqual(new Set(sent.get(s.id)!.map((m) => m.id)));
    }
    expect(held(dir.path)).toBe(0);
    expect(peak - baseline).toBeLessThan(RSS_BOUND);
  });

  it('D5: a page of large messages is cut at LIMITS.batchBytes, full, and the backlog still arrives once each, in order', async () => {
    // In-process, with the send budget opened (300 large messages at once are over the default).
    const r = await scope.start({ rate: { capacity: 10_000, perSecond: 10_000, abuseMs: 10_000 } });
    const sender = await scope.join({ name: 'Sender' });
    const bob = await knownAndAway(r.url, sender);
    const size = 10_000; // 104 to a page of 1 MiB
    const sent = new Map([[sender.id, plan(0, bob.userId, 300, size)]]);
    await queue(sender, sent.get(sender.id)!);

    const { batches, onDeliver } = recorder();
    const back = await scope.join({ identity: bob, name: 'Bob', onDeliver });
    await eventually(() => back.received.length >= 300, 'the backlog to be replayed', 15_000);
    await pause(300);

    expect(batches.map((b) => b.envelopes.length)).toEqual([104, 104, 92]);
    expectPages(batches);
    expectOnceInOrder(back.received, sent);
  });
});
