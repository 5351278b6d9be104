// A sender whose process dies (RELIABILITY.md B3, B11): a real client core in a child process
// (test/support/core-child.ts) is killed with SIGKILL and started again on the same data folder,
// 20 times per test, while the relay and the recipient (real, in this process) carry on.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { ChildEvent } from '../support/core-child.ts';
import { CoreProcess } from '../support/core-process.ts';
import { StorageError, type AcceptOutcome, type RelayStore } from '../../relay/mailbox/store.ts';
import { eventually, tempDir, useRelay } from '../support/relay.ts';
import { must, online, startCore, type TestCore } from '../support/messenger.ts';
import { readDb, relayRecords } from '../support/db.ts';

const KILLS = 20;
/** What the relay carries in these tests is not rate-limited: the outbox's pauses would only make them slow. */
const NO_RATE_LIMIT = { rate: { capacity: 100_000, perSecond: 100_000, abuseMs: 60_000 } };

/** How many outgoing messages the sender has in each state (asks it). */
function report(sender: CoreProcess): Promise<Extract<ChildEvent, { type: 'report' }>['states']> {
  const answer = sender.until((e) => (e.type === 'report' ? e.states : undefined), 'a report');
  sender.command({ cmd: 'report' });
  return answer;
}

/** The sender's history after a crash, read as the app would open it. */
function inspectHistory(dataDir: string): { integrity: unknown; rows: { n: number; id: string; text: string; state: string; seq: number | null }[] } {
  const db = new Database(join(dataDir, 'history.db'));
  try {
    const integrity = db.pragma('integrity_check', { simple: true });
    const rows = db.prepare("SELECT n, id, text, state, seq FROM messages WHERE direction = 'out' ORDER BY n").all() as { n: number; id: string; text: string; state: string; seq: number | null }[];
    return { integrity, rows };
  } finally {
    db.close();
  }
}

/** What the recipient stored from `peer`, in its order. */
function received(core: TestCore, peer: string): { id: string; text: string; seq: number }[] {
  return readDb(join(core.dataDir, 'history.db'), (db) => db.prepare("SELECT id, text, seq FROM messages WHERE direction = 'in' AND peer = ? ORDER BY n").all(peer) as { id: string; text: string; seq: number }[]);
}

/** The relay's records of what `sender` sent, read from its file once it is stopped: (id, seq) and its mailbox rows per id. */
function relayRows(dbPath: string, sender: string): { records: { id: string; seq: number }[]; mailbox: { id: string; rows: number }[] } {
  return readDb(dbPath, (db) => {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    return {
      records: relayRecords(dbPath).filter((r) => r.sender === sender).map(({ id, seq }) => ({ id, seq })),
      mailbox: db.prepare("SELECT msg_id AS id, count(*) AS rows FROM mailbox WHERE kind = 'message' AND sender = ? GROUP BY msg_id").all(sender) as { id: string; rows: number }[],
    };
  });
}

const duplicates = (values: readonly string[]) => values.filter((v, i) => values.indexOf(v) !== i);

const scope = useRelay();

async function startRecipient(url: string): Promise<TestCore> {
  const core = scope.track(await startCore({ name: 'Rita' }));
  must(await core.messenger.handlers['relay:join']({ address: url }));
  await online(core);
  return core;
}

function senderDir(): string {
  const dir = tempDir('parley-crash-');
  scope.track(() => dir.remove());
  return dir.path;
}

describe('a sender killed with SIGKILL', () => {
  it('B3: killed between emit and ack, 20 times: the restarted outbox resends the same id, which arrives once, with one relay row', async () => {
    // The relay's store, seen from outside: the sender's sends (by id), and the one it is told
    // to hold: before the relay stores it, or after (stored, its answer not given). Once the
    // sender is dead, a held send is let go (the relay lets in-flight requests finish before
    // it closes): one not stored fails, one stored is answered, to nobody.
    let senderId = '';
    const tries = new Map<string, number>();
    let hold: { mode: 'before-store' | 'after-store'; held: (id: string) => void; released: Promise<void> } | undefined;
    const relay = await scope.start({
      ...NO_RATE_LIMIT,
      wrapStore: (store): RelayStore => ({
        ...store,
        accept: async (m, quota, live): Promise<AcceptOutcome> => {
          if (m.from !== senderId) return store.accept(m, quota, live);
          tries.set(m.id, (tries.get(m.id) ?? 0) + 1);
          const holding = hold;
          hold = undefined;
          if (!holding) return store.accept(m, quota, live);
          if (holding.mode === 'before-store') {
            holding.held(m.id);
            await holding.released;
            throw new StorageError('E_UNAVAILABLE', 'held by the test until its sender died');
          }
          const outcome = await store.accept(m, quota, live);
          if (outcome.kind !== 'accepted') throw new Error(`expected a new message, got ${outcome.kind}`);
          const durable = outcome.durable.then(async (settled) => {
            holding.held(m.id);
            await holding.released;
            return settled;
          });
          return { ...outcome, durable };
        },
      }),
    });
    const recipient = await startRecipient(relay.url);
    const dataDir = senderDir();
    let sender = scope.track(await CoreProcess.start({ dataDir, name: 'Sam', relayUrl: relay.url }));
    senderId = sender.id;

    const heldIds: string[] = [];
    for (let kill = 0; kill < KILLS; kill++) {
      const mode = kill % 2 === 0 ? 'after-store' : 'before-store';
      let release: () => void = () => undefined;
      const released = new Promise<void>((resolve) => (release = resolve));
      const held = new Promise<string>((resolve) => (hold = { mode, held: resolve, released }));
      const queued = sender.until((e) => (e.type === 'queued' ? e : undefined), 'the message queued');
      sender.command({ cmd: 'send', peer: recipient.id, count: 1, prefix: `b3 #${kill} ` });
      const [heldId, message] = await Promise.all([held, queued]);
      expect(heldId, 'the relay holds the message just written').toBe(message.id);
      heldIds.push(heldId);
      await sender.kill();
      release();

      const { rows } = inspectHistory(dataDir);
      expect(rows.find((r) => r.id === heldId)?.state, `#${kill} (${mode}) is still in the outbox`).toBe('queued');

      sender = scope.track(await CoreProcess.start({ dataDir, name: 'Sam', relayUrl: relay.url }));
      expect(sender.id).toBe(senderId);
      // The outbox sends it again on its own, and the relay answers it this time.
      const s = sender;
      await eventually(async () => (await report(s)).queued === undefined, `#${kill} resent and acknowledged`, 20_000);
      expect(tries.get(heldId), `#${kill} (${mode}) was sent again under its id`).toBeGreaterThanOrEqual(2);
    }

    // Every message arrives, once, in order; the sender sees each delivered.
    const r = recipient;
    await eventually(() => received(r, senderId).length >= KILLS, `${KILLS} messages at the recipient`, 20_000);
    const s = sender;
    await eventually(async () => (await report(s)).delivered === KILLS, 'every message delivered', 20_000);
    const arrived = received(r, senderId);
    expect(arrived.map((m) => m.text)).toEqual(heldIds.map((_, i) => `b3 #${i} 0`));
    expect(arrived.map((m) => m.id)).toEqual(heldIds);
    expect(duplicates(r.added.map((m) => m.id)), 'shown twice').toEqual([]);
    // Only these ids ever reached the relay: no resend under a new id.
    expect([...tries.keys()].sort()).toEqual([...heldIds].sort());

    await sender.kill();
    const relayDb = relay.dbPath;
    await relay.stop();
    const atRelay = relayRows(relayDb, senderId);
    expect(atRelay.records.map((x) => x.id)).toEqual(heldIds);
    expect(atRelay.mailbox, 'mailbox rows left after delivery').toEqual([]);
    // The answer to the resend carried the seq of the first try: sender, relay and recipient agree.
    const { rows } = inspectHistory(dataDir);
    expect(rows.map((x) => ({ id: x.id, seq: x.seq, state: x.state }))).toEqual(atRelay.records.map((x) => ({ ...x, state: 'delivered' })));
    expect(arrived.map((m) => m.seq)).toEqual(atRelay.records.map((x) => x.seq));
  }, 180_000);

  it('B11: killed at random points of a 500-message burst, 20 times: the history stays sound, each message in one state, all delivered once', async () => {
    let senderId = '';
    /** Ids the relay took from the sender (new or again). */
    const atRelay = new Set<string>();
    const relay = await scope.start({
      ...NO_RATE_LIMIT,
      wrapStore: (store): RelayStore => ({
        ...store,
        accept: async (m, quota, live) => {
          const outcome = await store.accept(m, quota, live);
          if (m.from === senderId && (outcome.kind === 'accepted' || outcome.kind === 'duplicate')) atRelay.add(m.id);
          return outcome;
        },
      }),
    });
    const recipient = await startRecipient(relay.url);
    const dataDir = senderDir();
    let sender = scope.track(await CoreProcess.start({ dataDir, name: 'Sam', relayUrl: relay.url }));
    senderId = sender.id;

    /** What the sender said it had stored (text -> id), and which it said the relay acknowledged. */
    const stored = new Map<string, string>();
    const acknowledged = new Set<string>();
    const BURST = 500;
    const killedAt: string[] = [];
    for (let kill = 0; kill < KILLS; kill++) {
      // A kill at a random event of this life: a message stored, acknowledged or delivered.
      const target = 1 + Math.floor(Math.random() * BURST * 2);
      let seen = 0;
      const s = sender;
      const killed = s.until((e) => {
        if (e.type === 'queued' || e.type === 'updated') seen += 1;
        if (seen < target && e.type !== 'sent-all') return undefined;
        s.child.kill('SIGKILL');
        return `${seen} events in`;
      }, `event #${target} of burst ${kill}`);
      s.command({ cmd: 'send', peer: recipient.id, count: BURST, prefix: `b11 #${kill}.` });
      killedAt.push(await killed);
      await s.kill();
      // What this life said before it died (what was still in the pipe too).
      for (const e of s.events) {
        if (e.type === 'queued') stored.set(e.text, e.id);
        if (e.type === 'updated' && e.state !== 'queued' && e.state !== 'failed') acknowledged.add(e.id);
      }

      const { integrity, rows } = inspectHistory(dataDir);
      const where = `after kill ${kill} (${killedAt.at(-1)})`;
      expect(integrity, where).toBe('ok');
      expect(duplicates(rows.map((r) => r.text)), `${where}: a message stored twice`).toEqual([]);
      expect(duplicates(rows.map((r) => r.id)), `${where}: an id used twice`).toEqual([]);
      // Exactly one of outbox (queued), sent (sent, delivered, read) or failed: one row, one state.
      expect(rows.filter((r) => !['queued', 'sent', 'delivered', 'read', 'failed'].includes(r.state)), where).toEqual([]);
      expect(rows.filter((r) => r.state === 'failed'), `${where}: failed`).toEqual([]);
      const byId = new Map(rows.map((r) => [r.id, r]));
      // What the core said it stored or was acknowledged, it still has so.
      expect([...stored].filter(([text, id]) => byId.get(id)?.text !== text), `${where}: stored, then lost`).toEqual([]);
      expect([...acknowledged].filter((id) => byId.get(id)?.state === 'queued'), `${where}: acknowledged, then back in the outbox`).toEqual([]);
      // The relay has nothing the sender's history does not.
      expect([...atRelay].filter((id) => !byId.has(id)), `${where}: at the relay, not in the history`).toEqual([]);

      sender = scope.track(await CoreProcess.start({ dataDir, name: 'Sam', relayUrl: relay.url }));
      expect(sender.id).toBe(senderId);
    }

    // The last life drains the outbox: everything arrives once, in the order it was written,
    // and is shown delivered (by the relay's answer, or by a receipt).
    const s = sender;
    const settled = async (state: 'queued' | 'sent') => {
      await new Promise((r) => setTimeout(r, 200));
      return (await report(s))[state] === undefined;
    };
    await eventually(() => settled('queued'), 'the outbox drained', 60_000);
    // A message stuck as "sent" would stay so: the last delivery answers get 5 s, then it is seen below.
    for (const deadline = Date.now() + 5_000; Date.now() < deadline && !(await settled('sent')););
    await s.kill();
    const { integrity, rows } = inspectHistory(dataDir);
    expect(integrity).toBe('ok');
    expect(rows.length).toBeGreaterThanOrEqual(stored.size);
    expect(rows.filter((r) => r.state !== 'delivered'), 'delivered, not shown so').toEqual([]);
    const arrived = received(recipient, senderId);
    expect(duplicates(arrived.map((m) => m.id)), 'delivered twice').toEqual([]);
    expect(arrived.map((m) => m.text)).toEqual(rows.map((r) => r.text));
    expect(arrived.map((m) => m.seq)).toEqual(rows.map((r) => r.seq));

    const relayDb = relay.dbPath;
    await relay.stop();
    const relayed = relayRows(relayDb, senderId);
    expect(relayed.records.map((x) => x.id), 'one relay record per id').toEqual(rows.map((r) => r.id));
    expect(relayed.mailbox).toEqual([]);
  }, 180_000);
});
