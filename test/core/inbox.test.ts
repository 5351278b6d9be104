// The inbox against a real history and real sealed bodies: what is stored, in which order,
// and what the relay is told.
import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { openHistory, type History } from '../../main/core/history/index.ts';
import { createInbox } from '../../main/core/inbox.ts';
import { seal } from '../../main/core/crypto.ts';
import { generateIdentity, signWith, toB64u, type Identity } from '../../relay/identity.ts';
import type { Envelope, Result, UserEntry } from '../../relay/protocol.ts';
import type { Message } from '../../preload/contract.ts';
import { eventually, tempDir } from '../support/relay.ts';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

const bob = generateIdentity();
const alice = generateIdentity();
const carol = generateIdentity();
const entry = (who: Identity, name: string): UserEntry => ({ id: who.userId, name, idKey: who.idKey, kaKey: who.kaKey, kaSig: who.kaSig, online: true, lastSeen: 1, rev: 1 });

let seq = 0;
function message(from: Identity, text: string, id = `msg-${++seq}-xxxxxxxxxx`): Envelope {
  const sentAt = 1_700_000_000_000 + seq;
  return { seq: ++seq, kind: 'message', id, from: from.userId, body: seal(from, bob.kaKey, { from: from.userId, to: bob.userId, id, sentAt }, text), sentAt, at: sentAt };
}

function setup(directory: UserEntry[]) {
  const dir = tempDir();
  const path = join(dir.path, 'history.db');
  const history: History = openHistory(path);
  cleanup.push(() => {
    history.close();
    dir.remove();
  });
  history.seePeer({ ...entry(alice, 'Alice') });
  const added: Message[][] = [];
  const progress: number[] = [];
  const lookups: string[][] = [];
  let reachable = true;
  const inbox = createInbox({
    identity: bob,
    history,
    lookup: async (ids): Promise<Result<{ users: UserEntry[] }>> => {
      lookups.push(ids);
      if (!reachable) return { ok: false, error: { code: 'E_UNAVAILABLE', message: 'offline' } };
      return { ok: true, value: { users: directory.filter((u) => ids.includes(u.id)) } };
    },
    seePeer: (e) => history.seePeer(e),
    added: (messages) => added.push(messages),
    updated: () => undefined,
    progress: (n) => progress.push(n),
  });
  return { history, path, inbox, added, progress, lookups, offline: (off: boolean) => (reachable = !off) };
}

describe('inbox', () => {
  it('stores nothing of a batch while one of its senders is unknown, and all of it, in order, once known', async () => {
    const directory: UserEntry[] = [];
    const { history, inbox, added, lookups } = setup(directory);
    const batch = [message(alice, 'one'), message(carol, 'two'), message(alice, 'three')];

    expect(await inbox(batch)).toEqual({ ok: false, retryInMs: 5000 });
    expect(lookups).toEqual([[carol.userId]]);
    expect(added).toEqual([]);
    expect(history.page(alice.userId, null, 10)).toEqual([]);

    directory.push(entry(carol, 'Carol'));
    expect(await inbox(batch)).toEqual({ ok: true });
    expect(added.flat().map((m) => m.text)).toEqual(['one', 'two', 'three']);
    expect(history.page(alice.userId, null, 10).map((m) => m.text)).toEqual(['one', 'three']);
    expect(history.page(carol.userId, null, 10).map((m) => m.text)).toEqual(['two']);
  });

  it('flags a signed message whose one-time key is unusable and stores the rest of the batch, so one crafted message cannot stop everyone else\'s', async () => {
    const { history, inbox } = setup([]);
    // Alice signs a body whose one-time key is the all-zero X25519 point (key agreement with it fails).
    const id = 'crafted-0001';
    const sentAt = 1_700_000_000_000;
    const [e, n, c] = [toB64u(Buffer.alloc(32)), toB64u(Buffer.alloc(12)), toB64u(Buffer.alloc(32, 7))];
    const info = `parley-msg-v1\n${alice.userId}\n${bob.userId}\n${id}\n${sentAt}\n${e}\n${n}`;
    const crafted: Envelope = { seq: ++seq, kind: 'message', id, from: alice.userId, body: JSON.stringify({ v: 1, e, n, c, s: signWith(alice, Buffer.from(`${info}\n${c}`)) }), sentAt, at: sentAt };
    expect(await inbox([crafted, message(alice, 'still here')])).toEqual({ ok: true });
    expect(history.page(alice.userId, null, 10).map((m) => [m.text, m.flagged])).toEqual([['', true], ['still here', false]]);
  });

  it('asks again later when the directory cannot be reached', async () => {
    const { inbox, added, offline } = setup([entry(carol, 'Carol')]);
    offline(true);
    expect(await inbox([message(carol, 'hello')])).toEqual({ ok: false, retryInMs: 3000 });
    expect(added).toEqual([]);
    offline(false);
    expect(await inbox([message(carol, 'hello')])).toEqual({ ok: true });
  });

  it('stores a backlog batch in slices, letting the app run in between, complete and in order', async () => {
    const { history, inbox, added, progress } = setup([]);
    const batch = Array.from({ length: 500 }, (_, i) => message(alice, `backlog ${i}`));
    batch.splice(250, 0, message(alice, 'not for bob', 'forged-xxxxxxxxxxxxxx'));
    const forged = batch[250];
    if (forged?.kind === 'message') forged.body = batch[251]?.kind === 'message' ? batch[251].body : '';

    let turns = 0;
    const ticker = setInterval(() => (turns += 1), 0);
    const answer = await inbox(batch);
    clearInterval(ticker);

    expect(answer).toEqual({ ok: true });
    expect(added.length).toBeGreaterThan(1);
    expect(turns).toBeGreaterThan(1);
    const texts = added.flat().map((m) => m.text);
    expect(texts).toHaveLength(501);
    expect(texts.filter((t) => t.startsWith('backlog'))).toEqual(Array.from({ length: 500 }, (_, i) => `backlog ${i}`));
    expect(added.flat()[250]).toMatchObject({ flagged: true, text: '' });
    const stored = history.page(alice.userId, null, 1000);
    expect(stored.map((m) => m.id)).toEqual(batch.map((e) => (e.kind === 'message' ? e.id : '')));
    expect(progress.at(-1)).toBe(501);
    expect(history.unreadCounts().get(alice.userId)).toBe(501);

    // Redelivered (the ack was lost): nothing is stored twice.
    expect(await inbox(batch)).toEqual({ ok: true });
    expect(added.flat()).toHaveLength(501);
    expect(history.page(alice.userId, null, 1000)).toHaveLength(501);
  });

  it('stops showing a backlog’s progress after a batch fails to store, and answers that batch as failed', async () => {
    const { path, inbox, progress } = setup([]);
    expect(await inbox(Array.from({ length: 150 }, (_, i) => message(alice, `backlog ${i}`)))).toEqual({ ok: true });
    expect(progress.at(-1)).toBe(150);
    // The next batch comes at once, and the disk refuses it (a trigger stands in for the disk).
    const db = new Database(path);
    db.exec("CREATE TRIGGER refuse BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END");
    db.close();
    await expect(inbox(Array.from({ length: 150 }, (_, i) => message(alice, `more ${i}`)))).rejects.toThrow('disk I/O error');
    await eventually(() => progress.at(-1) === 0, 'progress over', 3000);
  });

  it('takes one batch at a time, so a second batch is never stored before the first', async () => {
    const { inbox, added } = setup([]);
    const first = Array.from({ length: 200 }, (_, i) => message(alice, `first ${i}`));
    const second = [message(alice, 'second')];
    const answers = await Promise.all([inbox(first), inbox(second)]);
    expect(answers).toEqual([{ ok: true }, { ok: true }]);
    expect(added.flat().map((m) => m.text)).toEqual([...first.map((_, i) => `first ${i}`), 'second']);
  });
});
