import { afterEach, describe, expect, it, vi } from 'vitest';
import Database from 'better-sqlite3';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import type { IpcMainInvokeEvent } from 'electron';
import { join } from 'node:path';
import { DamagedHistoryError, openHistory, ftsQuery, type History } from '../../main/core/history/index.ts';
import { historyMigrations } from '../../main/core/history/migrations.ts';
import { migrate } from '../../relay/sqlite/migrate.ts';
import { tempDir } from '../support/relay.ts';
import { dispatch, type Handlers } from '../../main/ipc.ts';
import { must, startCore } from '../support/messenger.ts';
import { generateIdentity } from '../../relay/identity.ts';

const dirs: { remove: () => void }[] = [];
const open: History[] = [];
afterEach(() => {
  for (const h of open.splice(0)) h.close();
  for (const d of dirs.splice(0)) d.remove();
});

function fresh(now?: () => number): { history: History; path: string } {
  const dir = tempDir();
  dirs.push(dir);
  const path = join(dir.path, 'history.db');
  const history = openHistory(path, now ? { now } : {});
  open.push(history);
  return { history, path };
}

const peer = (id: string, name = id, kaKey = 'k'.repeat(43)) => ({ id, name, idKey: 'i'.repeat(43), kaKey, lastSeen: 1 });
let counter = 0;
const incoming = (p: string, text: string, id = `in-${++counter}-xxxxxx`) => ({ id, peer: p, text, sentAt: 1, seq: counter, flagged: false, error: null });

describe('history migrations', () => {
  it('migration 1 creates the schema on an empty file, migrations 2 to 4 upgrade it, each recorded in user_version', () => {
    const dir = tempDir();
    dirs.push(dir);
    const db = new Database(join(dir.path, 'm.db'));
    const tables = () => db.prepare("SELECT name FROM sqlite_master WHERE type IN ('table') ORDER BY name").all().map((r) => (r as { name: string }).name);
    expect(migrate(db, historyMigrations.slice(0, 1))).toEqual({ from: 0, to: 1 });
    expect(db.pragma('user_version', { simple: true })).toBe(1);
    expect(tables()).toEqual(expect.arrayContaining(['messages', 'messages_fts', 'peers', 'settings']));
    expect(migrate(db, historyMigrations.slice(0, 2))).toEqual({ from: 1, to: 2 });
    expect(tables()).toContain('unsent_reads');
    expect(migrate(db, historyMigrations.slice(0, 3))).toEqual({ from: 2, to: 3 });
    expect(tables()).toContain('drafts');
    expect(migrate(db, historyMigrations)).toEqual({ from: 3, to: 4 });
    expect(tables()).toEqual(expect.arrayContaining(['removed', 'removed_n']));
    expect(migrate(db, historyMigrations)).toEqual({ from: 4, to: 4 });
    db.close();
  });

  it('refuses a database from a newer Parley instead of damaging it', () => {
    const dir = tempDir();
    dirs.push(dir);
    const path = join(dir.path, 'future.db');
    const db = new Database(path);
    db.pragma('user_version = 99');
    db.close();
    expect(() => openHistory(path)).toThrow(/newer than this program knows/);
  });

  it('names a damaged history file and what to do, and leaves it as it was', () => {
    const dir = tempDir();
    dirs.push(dir);
    const path = join(dir.path, 'history.db');
    const damaged = Buffer.alloc(8192, 'not a database ');
    writeFileSync(path, damaged);
    expect(() => openHistory(path)).toThrow(new DamagedHistoryError(path, new Error('file is not a database')).message);
    expect(readFileSync(path).equals(damaged)).toBe(true);
  });
});

describe('a damaged page inside history.db', () => {
  it('answers what touches it with what to do (not "something went wrong"), while the rest of the history works', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const path = join(dir.path, 'history.db');
    const history = openHistory(path);
    const bob = generateIdentity().userId;
    history.seePeer(peer(bob, 'Bob'));
    for (let i = 0; i < 3_000; i++) history.addOutgoing({ id: `out-${i}-xxxxxxxx`, peer: bob, text: `message ${i} `.repeat(20) });
    history.close();
    // The page holding message 1480, in the middle of the history, overwritten (a disk fault).
    const at = readFileSync(path).indexOf('message 1480 message 1480');
    expect(at).toBeGreaterThan(0);
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.alloc(4096, 0xab), 0, 4096, Math.floor(at / 4096) * 4096);
    closeSync(fd);

    const core = await startCore({ dataDir: dir.path });
    const app = 'file:///app/index.html';
    const event = { senderFrame: { url: app, parent: null } } as unknown as IpcMainInvokeEvent;
    const call = (name: 'conversation:page', arg: { peer: string; before?: number; limit: number }) => dispatch(name, core.messenger.handlers as Handlers, event, arg, app); // (the shell adds its own handlers to the messenger's)
    try {
      // The newest messages, on sound pages, are shown; scrolling back into the damaged part is refused in words.
      expect(must(await call('conversation:page', { peer: bob, limit: 50 }))).toHaveLength(50);
      expect(await call('conversation:page', { peer: bob, before: 1_500, limit: 50 })).toEqual({
        ok: false,
        error: { code: 'E_DAMAGED', message: `Part of the message history (${path}) is damaged, so this could not be done. Parley leaves it as it is: restore it from a backup, or move it away to start with an empty history.` },
      });
    } finally {
      await core.close();
    }
  });
});

describe('drafts', () => {
  const draftOf = (history: History, id: string) => history.summaries([id])[0]?.draft;

  it('keeps what was written to each person across a restart, replaced as it changes, and removed when only white space is left', () => {
    const { history, path } = fresh();
    history.seePeer(peer('ann'));
    history.seePeer(peer('bob'));
    expect(history.setDraft('ann', 'Half a thought about the\nbudget')).toBe(true);
    expect(history.setDraft('ann', 'Half a thought about the\nbudget')).toBe(false); // the same: nothing to tell
    expect(history.setDraft('bob', 'see you at 3')).toBe(true);
    expect(history.setDraft('carol', 'nobody we know')).toBe(false);
    history.close();
    open.splice(open.indexOf(history), 1);
    const again = openHistory(path);
    open.push(again);
    expect(Object.fromEntries(again.summaries().map((s) => [s.peer.id, s.draft]))).toEqual({ ann: 'Half a thought about the\nbudget', bob: 'see you at 3' });
    expect(again.setDraft('ann', 'A whole thought')).toBe(true);
    expect(draftOf(again, 'ann')).toBe('A whole thought');
    expect(again.setDraft('ann', ' \n\t ')).toBe(true);
    expect(draftOf(again, 'ann')).toBeNull();
    expect(again.setDraft('ann', '')).toBe(false);
    expect(draftOf(again, 'bob')).toBe('see you at 3');
    expect(again.peer('carol')).toBeUndefined();
  });

  it('ends with the message that sends it: in the same step, for that conversation only, and not when the message was not stored', () => {
    const { history } = fresh();
    history.seePeer(peer('ann'));
    history.seePeer(peer('bob'));
    history.setDraft('ann', 'on its way');
    history.setDraft('bob', 'for later');
    expect(() => history.addOutgoing({ id: 'too-long-xxxxxx', peer: 'ann', text: 'on its way' }, () => {
      throw new Error('sealed body over the relay limit');
    })).toThrow(/over the relay limit/);
    expect(draftOf(history, 'ann')).toBe('on its way');
    history.addOutgoing({ id: 'sent-xxxxxxxxxx', peer: 'ann', text: 'on its way' });
    expect(draftOf(history, 'ann')).toBeNull();
    expect(draftOf(history, 'bob')).toBe('for later');
  });
});

describe('deleting a message', () => {
  const texts = (history: History, id: string) => history.page(id, null, 50).map((m) => m.text);

  it('takes it out of the conversation, the search, the unread count and the people list, and answers undefined the second time', () => {
    const { history } = fresh();
    history.seePeer(peer('ann'));
    const [first, second] = history.addIncoming([incoming('ann', 'the quarterly figures'), incoming('ann', 'lunch at noon?')]);
    const mine = history.addOutgoing({ id: 'out-1-xxxxxxxxx', peer: 'ann', text: 'figures attached' });
    expect(history.unreadCounts().get('ann')).toBe(2);
    expect(history.remove(mine.n)).toMatchObject({ message: { n: mine.n, direction: 'out', state: 'queued', text: 'figures attached' }, attempted: false });
    expect(history.summaries(['ann'])[0]?.last?.text).toBe('lunch at noon?');
    expect(history.remove(second!.n)).toMatchObject({ message: { n: second!.n, direction: 'in', readAt: null } });
    expect(texts(history, 'ann')).toEqual(['the quarterly figures']);
    expect(history.unreadCounts().get('ann')).toBe(1);
    expect(history.summaries(['ann'])[0]).toMatchObject({ unread: 1, last: { text: 'the quarterly figures' } });
    expect(history.search('figures').map((h) => h.message.n)).toEqual([first!.n]);
    expect(history.search('lunch')).toEqual([]);
    expect(history.remove(second!.n)).toBeUndefined();
    expect(history.remove(first!.n)).toBeDefined();
    expect(history.summaries(['ann'])[0]).toMatchObject({ unread: 0, last: null });
  });

  it('never gives its n to a later message, across a restart too: the window takes n as only growing', () => {
    const { history, path } = fresh();
    history.seePeer(peer('ann'));
    const a = history.addOutgoing({ id: 'out-a-xxxxxxxxx', peer: 'ann', text: 'one' });
    const b = history.addOutgoing({ id: 'out-b-xxxxxxxxx', peer: 'ann', text: 'two' });
    history.remove(b.n);
    const [c] = history.addIncoming([incoming('ann', 'three')]);
    expect(c!.n).toBeGreaterThan(b.n);
    history.remove(c!.n);
    history.close();
    open.splice(open.indexOf(history), 1);
    const again = openHistory(path);
    open.push(again);
    const d = again.addOutgoing({ id: 'out-d-xxxxxxxxx', peer: 'ann', text: 'four' });
    expect(d.n).toBeGreaterThan(c!.n);
    expect(again.page('ann', null, 50).map((m) => [m.n, m.text])).toEqual([[a.n, 'one'], [d.n, 'four']]);
  });

  it('does not bring back an incoming message the relay delivers again, even after a restart', () => {
    const { history, path } = fresh();
    history.seePeer(peer('ann'));
    const message = incoming('ann', 'delete me');
    const [stored] = history.addIncoming([message]);
    history.remove(stored!.n);
    expect(history.addIncoming([message])).toEqual([]);
    history.close();
    open.splice(open.indexOf(history), 1);
    const again = openHistory(path);
    open.push(again);
    const later = incoming('ann', 'keep me');
    expect(again.addIncoming([message, later]).map((m) => m.text)).toEqual(['keep me']);
    expect(texts(again, 'ann')).toEqual(['keep me']);
    expect(again.unreadCounts().get('ann')).toBe(1);
  });

  it('takes a queued message out of the outbox, and the relay’s answer or receipts for a deleted one change nothing', () => {
    const { history } = fresh();
    history.seePeer(peer('ann'));
    const kept = history.addOutgoing({ id: 'out-k-xxxxxxxxx', peer: 'ann', text: 'kept' });
    const gone = history.addOutgoing({ id: 'out-g-xxxxxxxxx', peer: 'ann', text: 'gone' });
    const sent = history.addOutgoing({ id: 'out-s-xxxxxxxxx', peer: 'ann', text: 'sent, then deleted' });
    history.markSent(sent.n, 7);
    history.remove(gone.n);
    history.remove(sent.n);
    expect(history.outbox(50).map((m) => m.text)).toEqual(['kept']);
    expect(history.markSent(gone.n, 8)).toBeUndefined();
    expect(history.markFailed(gone.n, 'no')).toBeUndefined();
    expect(history.requeue(gone.n)).toBeUndefined();
    expect(history.applyReceipt('ann', [sent.id, gone.id], 'read')).toEqual([]);
    expect(history.markSentDelivered(gone, 9)).toEqual([]);
    expect(texts(history, 'ann')).toEqual(['kept']);
    expect(history.outgoing(kept.id)?.state).toBe('queued');
  });
});

describe('clearing a conversation', () => {
  it('deletes it a part at a time up to a message, leaving what came after and everyone else’s, for good', () => {
    const { history, path } = fresh();
    history.seePeer(peer('ann'));
    history.seePeer(peer('bob'));
    const received = history.addIncoming([incoming('ann', 'one'), incoming('ann', 'two'), incoming('ann', 'three')]);
    history.addOutgoing({ id: 'out-1-xxxxxxxxx', peer: 'ann', text: 'four' });
    history.addIncoming([incoming('bob', 'for bob')]);
    const upTo = history.newest('ann');
    history.addOutgoing({ id: 'out-2-xxxxxxxxx', peer: 'ann', text: 'written while it was being cleared' });
    expect([history.clear('ann', upTo!, 2), history.clear('ann', upTo!, 2), history.clear('ann', upTo!, 2)]).toEqual([
      { count: 2, through: received[1]!.n },
      { count: 2, through: upTo },
      { count: 0, through: 0 },
    ]);
    expect(history.page('ann', null, 50).map((m) => m.text)).toEqual(['written while it was being cleared']);
    expect(history.outbox(50).map((m) => m.text)).toEqual(['written while it was being cleared']);
    expect(history.summaries(['ann'])[0]).toMatchObject({ unread: 0, last: { text: 'written while it was being cleared' } });
    expect(history.page('bob', null, 50).map((m) => m.text)).toEqual(['for bob']);
    expect(history.search('two')).toEqual([]);
    expect(history.newest('carol')).toBeNull();
    history.close();
    open.splice(open.indexOf(history), 1);
    const again = openHistory(path);
    open.push(again);
    expect(again.addIncoming(received.map((m) => ({ id: m.id, peer: 'ann', text: m.text, sentAt: 1, seq: 1, flagged: false, error: null })))).toEqual([]);
    expect(again.page('ann', null, 50).map((m) => m.text)).toEqual(['written while it was being cleared']);
  });
});

describe('history', () => {
  it('keeps conversations across a restart, paged newest first', () => {
    const { history, path } = fresh();
    history.seePeer(peer('bob', 'Bob'));
    for (let i = 0; i < 120; i++) {
      if (i % 2) history.addIncoming([incoming('bob', `from bob ${i}`)]);
      else history.addOutgoing({ id: `out-${i}-xxxxxxxx`, peer: 'bob', text: `to bob ${i}` });
    }
    history.close();
    open.pop();
    const again = openHistory(path);
    open.push(again);
    const newest = again.page('bob', null, 50);
    expect(newest).toHaveLength(50);
    expect(newest.at(-1)?.text).toBe('from bob 119');
    const older = again.page('bob', newest[0]!.n, 50);
    expect(older.at(-1)?.n).toBe(newest[0]!.n - 1);
    const oldest = again.page('bob', older[0]!.n, 50);
    expect(oldest).toHaveLength(20);
    expect(oldest[0]?.text).toBe('to bob 0');
  });

  it('commits to disk before a write returns, power cut included: what the inbox stores is then acknowledged, and the relay forgets it', () => {
    // The pragma is per connection: the history's own is found by watching what calls pragma().
    const pragma = vi.spyOn(Database.prototype, 'pragma');
    const { path } = fresh();
    const connections = new Set(pragma.mock.contexts.filter((db): db is Database.Database => db instanceof Database && db.name === path));
    pragma.mockRestore();
    expect(connections.size).toBe(1);
    const [db] = [...connections];
    // FULL (2): in WAL mode each commit syncs the log; NORMAL (1) only at checkpoints.
    expect(db?.pragma('synchronous', { simple: true })).toBe(2);
    expect(db?.pragma('journal_mode', { simple: true })).toBe('wal');
  });

  it('stores a redelivered message once', () => {
    const { history } = fresh();
    history.seePeer(peer('bob'));
    const message = incoming('bob', 'hello');
    expect(history.addIncoming([message])).toHaveLength(1);
    expect(history.addIncoming([message, message])).toHaveLength(0);
    expect(history.page('bob', null, 10)).toHaveLength(1);
    expect(history.unreadCounts().get('bob')).toBe(1);
  });

  it('moves outgoing states forward only, and only for receipts from the recipient', () => {
    const { history } = fresh();
    history.seePeer(peer('bob'));
    history.seePeer(peer('eve'));
    const m = history.addOutgoing({ id: 'abcdefgh1', peer: 'bob', text: 'hi' });
    expect(m.state).toBe('queued');
    expect(history.outbox(10).map((x) => x.id)).toEqual(['abcdefgh1']);
    history.markSent(m.n, 7);
    expect(history.outbox(10)).toHaveLength(0);
    expect(history.applyReceipt('eve', ['abcdefgh1'], 'read')).toHaveLength(0);
    expect(history.applyReceipt('bob', ['abcdefgh1'], 'read')[0]?.state).toBe('read');
    expect(history.applyReceipt('bob', ['abcdefgh1'], 'delivered')).toHaveLength(0);
    expect(history.outgoing('abcdefgh1')?.state).toBe('read');
  });

  it('never moves a message back when its receipt arrives before the relay’s answer', () => {
    const { history } = fresh();
    history.seePeer(peer('bob'));
    const m = history.addOutgoing({ id: 'abcdefgh3', peer: 'bob', text: 'hi' });
    expect(history.applyReceipt('bob', ['abcdefgh3'], 'delivered')[0]?.state).toBe('delivered');
    expect(history.markSent(m.n, 9)).toBeUndefined();
    expect(history.outgoing('abcdefgh3')?.state).toBe('delivered');
    expect(history.outbox(10)).toHaveLength(0);
  });

  it('keeps a failed message with its reason and requeues it under the same id', () => {
    const { history } = fresh();
    history.seePeer(peer('bob'));
    const m = history.addOutgoing({ id: 'abcdefgh2', peer: 'bob', text: 'hi' });
    expect(history.markFailed(m.n, 'E_QUEUE_FULL')).toMatchObject({ state: 'failed', error: 'E_QUEUE_FULL' });
    expect(history.requeue(m.n)).toMatchObject({ state: 'queued', id: 'abcdefgh2', error: null });
  });

  it('counts unread per peer and marks read up to a point, keeping the read receipts to send until they are sent', () => {
    const { history, path } = fresh();
    history.seePeer(peer('bob'));
    history.seePeer(peer('carol'));
    const added = history.addIncoming([incoming('bob', 'a'), incoming('bob', 'b'), incoming('carol', 'c'), incoming('bob', 'd'), { ...incoming('carol', 'forged?'), flagged: true }]);
    expect(Object.fromEntries(history.unreadCounts())).toEqual({ bob: 3, carol: 2 });
    expect(history.firstUnread('bob')).toBe(added[0]!.n);
    expect(history.markRead('bob', added[1]!.n)).toBe(2);
    expect(Object.fromEntries(history.unreadCounts())).toEqual({ bob: 1, carol: 2 });
    // Where the conversation opens: the oldest incoming message still unread.
    expect(history.firstUnread('bob')).toBe(added[3]!.n);
    expect(history.firstUnread('nobody')).toBeNull();
    expect(history.markRead('bob', added[1]!.n)).toBe(0);
    // An unverified message is read like any other, but its claimed sender gets no receipt.
    expect(history.markRead('carol', added[4]!.n)).toBe(2);
    const unsent = new Map([['bob', [added[0]!.id, added[1]!.id].sort()], ['carol', [added[2]!.id]]]);
    expect(history.unsentReads()).toEqual(unsent);
    history.close();
    // They wait across a restart, until the relay has them.
    const again = openHistory(path);
    expect(again.unsentReads()).toEqual(unsent);
    again.readsSent('bob', [added[0]!.id, added[1]!.id]);
    expect(again.unsentReads()).toEqual(new Map([['carol', [added[2]!.id]]]));
    expect(again.summaries().find((s) => s.peer.id === 'bob')).toMatchObject({ unread: 1, last: { text: 'd', direction: 'in' } });
    again.close();
  });

  it('summarises chosen peers as the full list does, and lists every name', () => {
    const { history } = fresh();
    for (const id of ['bob', 'carol', 'dave']) history.seePeer(peer(id, id.toUpperCase()));
    history.addIncoming([incoming('bob', 'a'), incoming('carol', 'b'), incoming('bob', 'c')]);
    history.addOutgoing({ id: 'abcdefgh4', peer: 'carol', text: 'd' });
    const all = history.summaries();
    const chosen = history.summaries(['carol', 'dave', 'nobody']);
    expect(chosen.sort((a, b) => a.peer.id.localeCompare(b.peer.id))).toEqual(all.filter((s) => s.peer.id !== 'bob').sort((a, b) => a.peer.id.localeCompare(b.peer.id)));
    expect(chosen.find((s) => s.peer.id === 'carol')).toMatchObject({ unread: 1, last: { text: 'd', direction: 'out' } });
    expect(history.summaries([])).toEqual([]);
    expect(history.peerNames().map((p) => p.name).sort()).toEqual(['BOB', 'CAROL', 'DAVE']);
  });

  it('finds messages by words, ranked, with marked snippets, and survives odd queries', () => {
    const { history } = fresh();
    history.seePeer(peer('bob', 'Bob'));
    history.addIncoming([incoming('bob', 'the quarterly report is attached'), incoming('bob', 'lunch?'), incoming('bob', 'Report: café opens at nine')]);
    const hits = history.search('report');
    expect(hits.map((h) => h.message.text).sort()).toEqual(['Report: café opens at nine', 'the quarterly report is attached']);
    expect(['\u0002report\u0003', '\u0002Report\u0003'].some((marked) => hits[0]?.snippet.includes(marked))).toBe(true);
    expect(hits[0]?.peerName).toBe('Bob');
    const unmarked = (snippet: string) => snippet.split('\u0002').join('').split('\u0003').join('');
    for (const hit of hits) expect(unmarked(hit.snippet)).toBe(hit.message.text);
    expect(history.search('cafe')).toHaveLength(1);
    expect(history.search('repo')).toHaveLength(2);
    for (const odd of ['"', 'AND', '*', 'NEAR(', '', '   ', "'; DROP TABLE messages; --"]) expect(() => history.search(odd)).not.toThrow();
    expect(ftsQuery('a"b c*')).toBe('"a""b"* "c*"*');
  });

  it('matches a word as written: whole with its combining marks, and with its dots and dashes', () => {
    const { history } = fresh();
    history.seePeer(peer('bob', 'Bob'));
    history.addIncoming(['नमस्कार, तुम कैसे हो', 'नमस्ते दोस्त', 'สวย สดใส', 'สวัสดีครับ', 'room 35, floor 5', 'version 3.5 is out', 'mail it to me', 'my e-mail changed'].map((text) => incoming('bob', text)));
    const found = (query: string) => history.search(query).map((h) => h.message.text);
    expect(found('नमस्ते')).toEqual(['नमस्ते दोस्त']);
    expect(found('สวัสดี')).toEqual(['สวัสดีครับ']);
    expect(found('3.5')).toEqual(['version 3.5 is out']);
    expect(found('e-mail')).toEqual(['my e-mail changed']);
  });

  it('finds a word inside Chinese and Japanese text, written without spaces, and marks it', () => {
    const { history } = fresh();
    history.seePeer(peer('bob', 'Bob'));
    history.addIncoming(['2024年 明', '我们明天下午三点开会', '明日の会議は三時からです', '今天很好', '100%_done 明'].map((text) => incoming('bob', text)));
    const unmarked = (snippet: string) => snippet.split('\u0002').join('').split('\u0003').join('');
    const [meeting] = history.search('明天');
    expect(meeting?.message.text).toBe('我们明天下午三点开会');
    expect(meeting?.snippet).toBe('我们\u0002明天\u0003下午三点开会');
    expect(history.search('会議').map((h) => h.message.text)).toEqual(['明日の会議は三時からです']);
    expect(history.search('明 开').map((h) => unmarked(h.snippet))).toEqual(['我们明天下午三点开会']);
    // Newest first; LIKE's wildcards in a query are plain characters.
    expect(history.search('明').map((h) => h.message.text)).toEqual(['100%_done 明', '明日の会議は三時からです', '我们明天下午三点开会', '2024年 明']);
    expect(history.search('0%_ 明').map((h) => h.message.text)).toEqual(['100%_done 明']);
    expect(history.search('0%_d 明').map((h) => h.snippet)).toEqual(['10\u00020%_d\u0003one \u0002明\u0003']);
    // A snippet cut from a long text never splits an emoji.
    for (const pad of [0, 1]) {
      history.addIncoming([incoming('bob', `${'x'.repeat(pad)}${'😀'.repeat(40)}y会議${'😀'.repeat(40)}`)]);
      const [hit] = history.search('会議');
      // A lone half would come back from UTF-8 as U+FFFD.
      expect(Buffer.from(hit?.snippet ?? '', 'utf8').toString('utf8')).toBe(hit?.snippet);
      expect(hit?.snippet).toContain('\u0002会議\u0003');
    }
  });

  it('returns the newest of equally good matches first, each with its own snippet, never a flagged one', () => {
    const { history } = fresh();
    history.seePeer(peer('bob', 'Bob'));
    history.seePeer(peer('carol', 'Carol'));
    // Same length, same one match each: equal ranks, so the newest come first.
    history.addIncoming(Array.from({ length: 80 }, (_, i) => incoming(i % 2 ? 'bob' : 'carol', `kiwi number ${String(i).padStart(3, '0')}`)));
    history.addIncoming(Array.from({ length: 5 }, (_, i) => ({ ...incoming('bob', `kiwi forged ${i}`), flagged: true, error: 'bad signature' })));
    const hits = history.search('kiwi');
    expect(hits).toHaveLength(50);
    expect(hits.map((h) => h.message.text)).toEqual(Array.from({ length: 50 }, (_, i) => `kiwi number ${String(79 - i).padStart(3, '0')}`));
    for (const hit of hits) {
      expect(hit.snippet).toBe(`\u0002kiwi\u0003 number ${hit.message.text.slice(-3)}`);
      expect(hit.peerName).toBe(hit.message.peer === 'bob' ? 'Bob' : 'Carol');
      expect(hit.message.flagged).toBe(false);
    }
    expect(history.search('forged')).toEqual([]);
    expect(history.search('kiwi', 10).map((h) => h.message.n)).toEqual(hits.slice(0, 10).map((h) => h.message.n));
  });

  it('finds old matches behind many newer messages, and ranks the better match first', () => {
    const { history } = fresh();
    history.seePeer(peer('bob', 'Bob'));
    const old = history.addIncoming([incoming('bob', 'the mango arrived'), incoming('bob', 'mango mango, and more mango for everyone at the party tonight')]);
    for (let i = 0; i < 20; i++) history.addIncoming(Array.from({ length: 100 }, (_, k) => incoming('bob', `unrelated chatter ${i}-${k} about apples`)));
    history.addIncoming([incoming('bob', 'one more mango')]);
    const hits = history.search('mang');
    // Three matches beat one; equally short single matches come newest first.
    expect(hits.map((h) => h.message.text)).toEqual([old[1]!.text, 'one more mango', old[0]!.text]);
    const unmarked = (snippet: string) => snippet.split('\u0002').join('').split('\u0003').join('');
    for (const hit of hits) {
      expect(hit.snippet).toContain('\u0002mango\u0003');
      expect(unmarked(hit.snippet).replace(/^…/, '').replace(/…$/, '')).toSatisfy((s: string) => hit.message.text.includes(s));
    }
    expect(history.search('mango apples')).toEqual([]);
    expect(history.search('chatter 7-42').map((h) => h.message.text)).toEqual(['unrelated chatter 7-42 about apples']);
  });

  it('pins keys on first sight and holds a changed key until the user accepts it', () => {
    const { history } = fresh();
    expect(history.seePeer(peer('bob', 'Bob', 'A'.repeat(43))).change).toBe('new');
    expect(history.seePeer(peer('bob', 'Bob', 'A'.repeat(43))).change).toBe('unchanged');
    history.setVerified('bob', true);
    const changed = history.seePeer(peer('bob', 'Bob', 'B'.repeat(43)));
    expect(changed.change).toBe('key-changed');
    expect(changed.peer).toMatchObject({ kaKey: 'A'.repeat(43), pendingKaKey: 'B'.repeat(43) });
    expect(history.seePeer(peer('bob', 'Bob', 'B'.repeat(43))).change).toBe('unchanged');
    expect(history.acceptKeyChange('bob')).toBe(true);
    expect(history.peer('bob')).toMatchObject({ kaKey: 'B'.repeat(43), pendingKaKey: null, verified: false });
    expect(history.seePeer(peer('bob', 'Robert', 'B'.repeat(43))).change).toBe('renamed');
  });
});
