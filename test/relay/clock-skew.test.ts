// B10 clock skew: the senders' clocks and the relay's own clock are wrong, or jump. Order is
// the relay's seq, dedup is the (sender, id) record: neither may depend on a clock. sentAt is
// the sender's word, carried as sent (the skew may show), and never sorts anything.
import { describe, expect, it } from 'vitest';
import { connectClient, eventually, newMessageId, useRelay, type TestClient } from '../support/relay.ts';
import { fetchHello } from '../../relay/handshake.ts';
import type { Envelope } from '../../relay/protocol.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

type Delivered = Extract<Envelope, { kind: 'message' }>;
interface Sent { id: string; from: string; body: string; sentAt: number; seq: number }

const scope = useRelay();

/** The relay's clock (and its store's, as in production where both read the system clock), with a jump we control. */
function relayClock() {
  let offset = 0;
  return { now: () => Date.now() + offset, jump: (ms: number) => void (offset += ms) };
}

/** Sends one message and waits for its ok, as a client's outbox does (one request at a time). */
async function send(from: TestClient, to: string, sentAt: number, log: Sent[]): Promise<Sent> {
  const id = newMessageId();
  const body = `${log.length} from ${from.id.slice(0, 6)} at ${sentAt}`;
  const result = await from.send(to, body, id, sentAt);
  if (!result.ok) throw new Error(`send ${log.length} refused: ${result.error.code} ${result.error.message}`);
  const sent = { id, from: from.id, body, sentAt, seq: result.value.seq };
  log.push(sent);
  return sent;
}

/** Every sent message arrived exactly once, in send order, with increasing seq, as it was sent. */
function expectDeliveredInSendOrder(received: Delivered[], sent: Sent[]): void {
  expect(received.map((m) => m.id)).toEqual(sent.map((m) => m.id));
  for (let i = 1; i < received.length; i++) expect(received[i]!.seq).toBeGreaterThan(received[i - 1]!.seq);
  expect(received.map(({ seq, from, body, sentAt }) => ({ seq, from, body, sentAt }))).toEqual(sent.map(({ seq, from, body, sentAt }) => ({ seq, from, body, sentAt })));
}

describe('clock skew (B10)', () => {
  it("delivers in send order by seq whatever the senders' clocks say, from the mailbox and live", async () => {
    await scope.start();
    const bobFirst = await scope.join({ name: 'Bob' });
    const alice = await scope.join({ name: 'Alice' });
    const carol = await scope.join({ name: 'Carol' });
    bobFirst.close(); // bob goes offline: the first half waits in his mailbox

    const base = Date.now();
    const sent: Sent[] = [];
    // alice's clock runs 2 h fast, then steps back a day and a half mid-run (and later back
    // again); carol's runs a day slow. Sorting by sentAt would scramble every one of these.
    let aliceClock = base + 2 * HOUR;
    const carolClock = () => base - DAY + sent.length;
    for (let i = 0; i < 6; i++) {
      await send(alice, bobFirst.id, (aliceClock += 1_000), sent);
      await send(carol, bobFirst.id, carolClock(), sent);
      if (i === 2) aliceClock -= DAY + 12 * HOUR;
    }

    const bob = await scope.join({ name: 'Bob', identity: bobFirst.identity });
    await eventually(() => bob.messages().length >= sent.length, 'the backlog');
    for (let i = 0; i < 6; i++) {
      await send(carol, bob.id, carolClock(), sent);
      await send(alice, bob.id, (aliceClock += 1_000), sent);
      if (i === 3) aliceClock -= 2 * DAY;
    }
    // Delivery follows seq: once the last message is in, every earlier one was delivered before it.
    const last = sent.at(-1)!.id;
    await eventually(() => bob.messages().some((m) => m.id === last), 'the last live message');

    // The sentAt values really were out of order, so send order is not a sentAt order.
    const stamps = sent.map((m) => m.sentAt);
    expect(stamps).not.toEqual([...stamps].sort((a, b) => a - b));
    expectDeliveredInSendOrder(bob.messages(), sent);
    // The skew shows: alice's sentAt is 2 h ahead of the relay's `at`, carol's a day behind.
    const first = bob.messages()[0]!;
    expect(first.sentAt - first.at).toBeGreaterThan(HOUR);
    expect(bob.messages()[1]!.at - bob.messages()[1]!.sentAt).toBeGreaterThan(DAY - HOUR);
  });

  it('keeps order and dedup when the relay clock jumps back a day, also across a restart', async () => {
    const clock = relayClock();
    const relay = await scope.start({ now: clock.now, storeOptions: { now: clock.now } });
    let alice = await scope.join({ name: 'Alice' });
    let bob = await scope.join({ name: 'Bob' });
    const sent: Sent[] = [];
    for (let i = 0; i < 4; i++) await send(alice, bob.id, Date.now(), sent);

    clock.jump(-DAY);
    // A connected sender keeps sending as before: nothing it does depends on the relay's clock.
    for (let i = 0; i < 4; i++) await send(alice, bob.id, Date.now(), sent);

    // Resends of earlier ids, from both sides of the jump and with a new sentAt, as an outbox
    // retries: the same message (same seq), not queued again.
    for (const earlier of [sent[1]!, sent[5]!]) {
      expect(await alice.send(bob.id, earlier.body, earlier.id, Date.now() + HOUR)).toEqual({ ok: true, value: expect.objectContaining({ seq: earlier.seq }) });
    }
    // Delivery follows seq: a resend taken as new would arrive before this one.
    await send(alice, bob.id, Date.now(), sent);
    await eventually(() => bob.messages().some((m) => m.id === sent.at(-1)!.id), 'the message after the resends');
    expectDeliveredInSendOrder(bob.messages(), sent);
    // The relay's own times went back a day while its seq went on.
    const at = bob.messages().map((m) => m.at);
    expect(at[3]! - at[4]!).toBeGreaterThan(DAY - HOUR);

    // Restarted with its clock still a day behind: the records still answer resends.
    await relay.restart();
    alice = await scope.join({ name: 'Alice', identity: alice.identity });
    bob = await scope.join({ name: 'Bob', identity: bob.identity });
    for (const earlier of [sent[0]!, sent[6]!]) {
      expect(await alice.send(bob.id, earlier.body, earlier.id, Date.now() - DAY)).toEqual({ ok: true, value: expect.objectContaining({ seq: earlier.seq }) });
    }
    const after: Sent[] = [];
    await send(alice, bob.id, Date.now(), after);
    await eventually(() => bob.messages().some((m) => m.id === after[0]!.id), 'the message after the restart');
    expect(bob.messages().map((m) => m.id)).toEqual([after[0]!.id]);
    expect(after[0]!.seq).toBeGreaterThan(sent.at(-1)!.seq);
  });

  it('keeps directory revs increasing across a restart with the relay clock set back, so a directory cursor misses nobody', async () => {
    const clock = relayClock();
    const relay = await scope.start({ now: clock.now, storeOptions: { now: clock.now } });
    const alice = await scope.join({ name: 'Alice' });
    const before = await alice.request('directory:changes', { since: 0 });
    if (!before.ok) throw new Error(before.error.message);
    const cursor = Math.max(...before.value.users.map((u) => u.rev));
    alice.close();

    clock.jump(-HOUR);
    await relay.restart();
    // Someone new after the restart, and Alice back: both come after the cursor she kept.
    const carol = await scope.join({ name: 'Carol' });
    const back = await scope.join({ name: 'Alice', identity: alice.identity });
    const changes = await back.request('directory:changes', { since: cursor });
    if (!changes.ok) throw new Error(changes.error.message);
    expect(changes.value.users.map((u) => u.id).sort()).toEqual([alice.id, carol.id].sort());
    for (const user of changes.value.users) expect(user.rev).toBeGreaterThan(cursor);
  });

  it('writes a held message, and answers its sender, when the relay clock steps back during the hold', async () => {
    const clock = relayClock();
    await scope.start({ now: clock.now, storeOptions: { now: clock.now, holdMs: 300 } });
    const alice = await scope.join({ name: 'Alice' });
    // Bob is connected but never acknowledges: the message waits in memory for him, then must be written.
    let delivered = false;
    const bob = await scope.join({ name: 'Bob', onDeliver: () => ((delivered = true), new Promise<never>(() => undefined)) });
    const answer = alice.send(bob.id, 'held across the jump', newMessageId(), Date.now());
    await eventually(() => delivered, 'the delivery to bob');
    clock.jump(-DAY);
    // Stored (no delivery in the answer): with the hold timed on the wall clock it would wait a day.
    expect(await answer).toEqual({ ok: true, value: { seq: expect.any(Number) } });
  });

  it('lets a throttled address in again a minute later even when the relay clock jumped back a day', async () => {
    const clock = relayClock();
    const relay = await scope.start({ now: clock.now, accessCode: 'correct horse', maxAuthFailures: 1 });
    const url = relay.url;
    await expect(connectClient(url)).rejects.toMatchObject({ message: 'E_ACCESS_CODE' });
    await expect(fetchHello(new URL(url))).rejects.toThrow(/429/);
    clock.jump(-DAY);
    await expect(fetchHello(new URL(url))).rejects.toThrow(/429/);
    clock.jump(61_000);
    await scope.join({ accessCode: 'correct horse' });
  });
});
