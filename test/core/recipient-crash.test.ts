// A recipient whose process dies while it takes in a message (RELIABILITY.md B4): a real app
// core in a child process (test/support/core-child.ts) stops itself with SIGSTOP at a chosen
// point of taking in one delivery and is killed there with SIGKILL, then started again on the
// same data folder, 10 times per point, while the relay and the sender (real, in this process)
// carry on. The two points, each hit on purpose by the child's test hook:
// - before-commit: the delivery arrived and its history transaction has inserted the message,
//   COMMIT not yet run. A core that acknowledged before it committed has answered the relay by
//   then: the relay drops the message and tells the sender "delivered", and the row dies with
//   the process; the rows and the mailbox checked below fail.
// - before-ack: the row is committed, the relay not yet answered: the redelivery must be
//   recognised, not stored twice, and answered, so that the sender gets its receipt once.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { StopPoint } from '../support/core-child.ts';
import { CoreProcess } from '../support/core-process.ts';
import type { RelayStore } from '../../relay/mailbox/store.ts';
import type { Envelope } from '../../relay/protocol.ts';
import { eventually, tempDir, useRelay } from '../support/relay.ts';
import { knows, must, online, startCore, type TestCore } from '../support/messenger.ts';
import { readDb } from '../support/db.ts';

const KILLS = 10;

/** The recipient's environment: a compile cache its later lives share, and where it stops itself. */
function recipientEnv(compileCache: string, stop?: { at: StopPoint; text: string }): NodeJS.ProcessEnv {
  // Lives after the first load the app's modules compiled: a restart takes less of the test's time.
  return { NODE_COMPILE_CACHE: compileCache, ...(stop ? { PARLEY_TEST_STOP: stop.at, PARLEY_TEST_STOP_TEXT: stop.text } : {}) };
}

/** The recipient's history, opened as the app would open it after the crash. */
function inspectHistory(dataDir: string): { integrity: unknown; rows: { id: string; text: string }[] } {
  const db = new Database(join(dataDir, 'history.db'));
  try {
    return {
      integrity: db.pragma('integrity_check', { simple: true }),
      rows: db.prepare("SELECT id, text FROM messages WHERE direction = 'in' ORDER BY n").all() as { id: string; text: string }[],
    };
  } finally {
    db.close();
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const scope = useRelay();

async function killedWhileTaking(at: StopPoint): Promise<void> {
  let ritaId = '';
  let samId = '';
  /** Which life of the recipient runs (0 to KILLS): an acknowledgement is credited to it. */
  let life = 0;
  const idOfSeq = new Map<number, string>();
  /** The recipient's acknowledgements: which life, of which messages, what they removed, whom they queued a receipt for. */
  const acks: { life: number; ids: string[]; removed: number; receiptsFor: string[] }[] = [];
  /** The receipts the relay handed out (seq -> what they say), and those the sender took, one entry per message id. */
  const receipts = new Map<number, { state: string; ids: string[] }>();
  const samTook: { state: string; id: string }[] = [];
  const see = (envelopes: readonly Envelope[] = []) => {
    for (const e of envelopes) if (e.kind === 'receipt') receipts.set(e.seq, { state: e.state, ids: e.ids });
  };
  let store: RelayStore | undefined;
  const relay = await scope.start({
    rate: { capacity: 100_000, perSecond: 100_000, abuseMs: 60_000 },
    // Written at once rather than held in memory for a recipient that is connected: the sender is
    // answered "sent" within moments, never with the delivery, so its receipt is what tells it.
    storeOptions: { holdMs: 0 },
    wrapStore: (inner): RelayStore =>
      (store = {
        ...inner,
        accept: async (m, quota, live) => {
          const outcome = await inner.accept(m, quota, live);
          if (outcome.kind === 'accepted' || outcome.kind === 'duplicate') idOfSeq.set(outcome.seq, m.id);
          return outcome;
        },
        page: async (recipient, afterSeq, limit) => {
          const page = await inner.page(recipient, afterSeq, limit);
          see(page);
          return page;
        },
        acknowledge: async (recipient, seqs, when, next) => {
          const acked = await inner.acknowledge(recipient, seqs, when, next);
          see(acked.next);
          see(acked.offers?.map((o) => o.envelope));
          if (recipient === ritaId) acks.push({ life, ids: seqs.map((s) => idOfSeq.get(s) ?? `seq ${s}`), removed: acked.removed, receiptsFor: acked.receiptsFor });
          if (recipient === samId) {
            for (const s of seqs) {
              const receipt = receipts.get(s);
              if (receipt) samTook.push(...receipt.ids.map((id) => ({ state: receipt.state, id })));
              else samTook.push({ state: `unknown envelope ${s}`, id: '' });
            }
          }
          return acked;
        },
      }),
  });
  /** Ids of the messages the relay holds for the recipient. */
  const waiting = async () => (await store!.page(ritaId, 0, 100)).map((e) => (e.kind === 'message' ? e.id : `receipt ${e.seq}`));

  const sam: TestCore = scope.track(await startCore({ name: 'Sam' }));
  samId = sam.id;
  must(await sam.messenger.handlers['relay:join']({ address: relay.url }));
  await online(sam);
  const dataDir = tempDir('parley-recipient-crash-');
  scope.track(() => dataDir.remove());
  const compileCache = tempDir('parley-compile-cache-');
  scope.track(() => compileCache.remove());

  const ids: string[] = [];
  for (; life <= KILLS; life++) {
    const text = `b4 ${at} #${life}`;
    const rita = scope.track(await CoreProcess.start({ dataDir: dataDir.path, name: 'Rita', relayUrl: relay.url, env: recipientEnv(compileCache.path, life < KILLS ? { at, text } : undefined) }));
    if (life === 0) {
      ritaId = rita.id;
      await knows(sam, ritaId);
    }
    expect(rita.id).toBe(ritaId);
    // The message the last life died with is delivered again on this connection, and taken.
    await eventually(async () => (await waiting()).length === 0, `#${life - 1} delivered again and acknowledged`, 15_000);
    if (life === KILLS) break;

    const stopping = rita.event('stopping', `the recipient at ${at} of #${life}`);
    const message = must(await sam.messenger.handlers['message:send']({ peer: ritaId, text }));
    ids.push(message.id);
    expect(await stopping).toEqual({ type: 'stopping', at, id: message.id });
    await eventually(() => rita.stopped, 'the recipient stopped');
    // Whatever the stopped process had written reaches the relay and is acted on meanwhile.
    await pause(100);
    expect(await waiting(), `#${life}: the relay still holds it, unacknowledged`).toEqual([message.id]);
    await rita.kill();

    const { integrity, rows } = inspectHistory(dataDir.path);
    expect(integrity, `after kill ${life}`).toBe('ok');
    // Before the commit the insert is rolled back with the process; after it, the row stays.
    expect(rows.map((r) => r.id), `after kill ${life} (${at})`).toEqual(at === 'before-commit' ? ids.slice(0, -1) : ids);
    // The sender was answered (the relay committed it) and has no receipt yet.
    await eventually(() => sam.updated.some((m) => m.id === message.id && m.state === 'sent'), `#${life} sent`);
    expect(sam.updated.filter((m) => m.id === message.id && m.state === 'delivered'), `#${life}: delivered before it was taken`).toEqual([]);
  }

  // The last life took the last message: the sender sees every message delivered; a receipt
  // sent twice would show within the pause.
  await eventually(() => ids.every((id) => sam.updated.some((m) => m.id === id && m.state === 'delivered')), 'every message delivered', 15_000);
  await pause(300);

  const { integrity, rows } = inspectHistory(dataDir.path);
  expect(integrity).toBe('ok');
  // Exactly one row per message id, in the order sent.
  expect(rows).toEqual(ids.map((id, i) => ({ id, text: `b4 ${at} #${i}` })));
  // Each message: acknowledged once, by the life after the one killed with it (so it was
  // delivered again on reconnect), which removed it and queued one receipt for the sender.
  expect(ids.map((id) => acks.filter((a) => a.ids.includes(id)))).toEqual(ids.map((id, i) => [{ life: i + 1, ids: [id], removed: 1, receiptsFor: [sam.id] }]));
  // The sender took one delivered receipt per message, and showed each message delivered once.
  expect(samTook, 'the receipts the sender took').toEqual(ids.map((id) => ({ state: 'delivered', id })));
  expect(ids.map((id) => sam.updated.filter((m) => m.id === id && m.state === 'delivered').length), 'times shown delivered').toEqual(ids.map(() => 1));
  const samSees = must(await sam.messenger.handlers['conversation:page']({ peer: ritaId, limit: 500 }));
  expect(samSees.map((m) => [m.id, m.state])).toEqual(ids.map((id) => [id, 'delivered']));

  const relayDb = relay.dbPath;
  await relay.stop();
  readDb(relayDb, (db) => {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    // Nothing waits: no message for the recipient, no receipt for the sender.
    expect(db.prepare('SELECT recipient, kind, count(*) AS n FROM mailbox GROUP BY recipient, kind').all(), 'mailbox rows left').toEqual([]);
  });
}

describe('a recipient killed with SIGKILL while it takes in a message (B4)', () => {
  it('killed after the delivery arrived, before its commit, 10 times: redelivered on reconnect, stored once, one receipt each', () => killedWhileTaking('before-commit'), 60_000);
  it('killed after the commit, before its acknowledgement, 10 times: redelivered, not stored twice, one receipt each', () => killedWhileTaking('before-ack'), 60_000);
});
