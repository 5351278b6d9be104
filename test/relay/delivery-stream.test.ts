// A delivery stream on a real SQLite mailbox, driven the way a cluster drives it: a wake-up
// offer from another node can arrive after the stream's own page already read and sent the
// same envelope. The recipient must get each envelope once, and one that became visible behind
// the stream's cursor (never sent) must still reach them.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Pump, type DeliveryTarget } from '../../relay/delivery.ts';
import { openSqliteStore } from '../../relay/mailbox/sqlite.ts';
import { digestOf, type RelayStore } from '../../relay/mailbox/store.ts';
import { silentLogger } from '../../relay/log.ts';
import type { Envelope } from '../../relay/protocol.ts';
import { eventually, idsOf, tempDir } from '../support/relay.ts';

const alice = 'a'.repeat(32);
const bob = 'b'.repeat(32);
const quota = { messages: 100, bytes: 100_000 };

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function openStore(): RelayStore {
  const dir = tempDir();
  const store = openSqliteStore({ path: join(dir.path, 'relay.db') });
  cleanups.push(dir.remove, () => store.close());
  return store;
}

async function send(store: RelayStore, id: string): Promise<Envelope> {
  const body = `body of ${id}`;
  const outcome = await store.accept({ from: alice, to: bob, id, body, sentAt: 1, at: Date.now(), digest: digestOf(bob, body) }, quota);
  if (outcome.kind !== 'accepted') throw new Error(`not accepted: ${outcome.kind}`);
  const envelope = (await store.page(bob, outcome.seq - 1, 1))[0];
  if (!envelope) throw new Error('accepted but not in the mailbox');
  return envelope;
}

/** Bob's device: records every batch; answers the first when the test says, the others at once. */
function device(holdFirst: boolean) {
  const batches: string[][] = [];
  let release: (() => void) | undefined;
  const target: DeliveryTarget = {
    deliver(batch) {
      batches.push(idsOf(batch));
      if (holdFirst && batches.length === 1) return new Promise((resolve) => (release = () => resolve({ ok: true })));
      return Promise.resolve({ ok: true });
    },
    stop: () => undefined,
  };
  return { target, batches, answerFirst: () => release?.(), delivered: () => batches.flat() };
}

/** Bob's mailbox, his device, and the stream that delivers from one to the other. */
function bobsStream(holdFirst: boolean) {
  const store = openStore();
  const bobs = device(holdFirst);
  const pump = new Pump(bob, bobs.target, { store, log: silentLogger, batchSize: 50, batchBytes: 256 * 1024, ackTimeoutMs: 5000, now: Date.now, onReceipts: () => undefined });
  cleanups.push(() => pump.stop());
  return { store, bobs, pump };
}

/** Sends one more message through a plain wake-up and waits until the mailbox is empty: anything the stream still meant to send went before it. */
async function drain(store: RelayStore, pump: Pump, bobs: ReturnType<typeof device>, id: string): Promise<void> {
  await send(store, id);
  pump.notify();
  await eventually(async () => bobs.delivered().includes(id) && (await store.page(bob, 0, 10)).length === 0, `${id} delivered and removed`);
}

describe('a delivery stream offered what its own page already sent', () => {
  it('sends it once when the offer comes while that batch waits for its ack', async () => {
    const { store, bobs, pump } = bobsStream(true);
    const first = await send(store, 'm1');
    pump.notify();
    await eventually(() => bobs.batches.length === 1, 'the page sent m1');
    pump.offer([first], 0); // another node's wake-up for m1, later than the page
    bobs.answerFirst();
    await drain(store, pump, bobs, 'm2');
    expect(bobs.delivered()).toEqual(['m1', 'm2']);
  });

  it('sends it once when the offer comes after the batch was acknowledged', async () => {
    const { store, bobs, pump } = bobsStream(false);
    const first = await send(store, 'm1');
    pump.notify();
    await eventually(async () => bobs.batches.length === 1 && (await store.page(bob, 0, 10)).length === 0, 'm1 delivered and removed');
    pump.offer([first], 0);
    await drain(store, pump, bobs, 'm2');
    expect(bobs.delivered()).toEqual(['m1', 'm2']);
  });

  it('still sends an envelope that became visible behind its cursor and was never sent', async () => {
    const { store, bobs, pump } = bobsStream(false);
    // As when another node held m1 in memory a moment: m2 is offered as if nothing came before
    // it, and sent at once; m1's offer comes after.
    const first = await send(store, 'm1');
    const second = await send(store, 'm2');
    pump.offer([second], 0);
    await eventually(() => bobs.delivered().includes('m2'), 'm2 sent');
    pump.offer([first], 0);
    await drain(store, pump, bobs, 'm3');
    expect(bobs.delivered()).toEqual(['m2', 'm1', 'm3']);
  });
});
