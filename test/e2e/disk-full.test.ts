// RELIABILITY.md B8 disk-full, in the window (the relay's half is in
// test/relay/storage-faults.test.ts, the core's in test/core/disk-full.test.ts): the person
// types a message and presses Enter while history.db cannot grow. The window says why in
// words, nothing shows in the conversation, and the draft stays in the composer exactly as
// typed. Once there is room again (while the app keeps running), Enter sends it, once.
//
// The disk: the core's history.db is capped at CAP pages (SQLite's max_page_count, as in
// the core's test), and a second connection fills it up to the cap with a table of its own,
// which it drops to make room again, as a person freeing space would.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { useSession, type Person } from './bridge.ts';
import { exactly, expectHealthy, firstRun, joinRelay, openChat, personRow, readConversation, send, useServerRelay } from './flows.ts';

/** 4 MB: far more than the app needs here, little to fill. */
const CAP = 1000;

/**
 * Fills `dataDir`'s history.db up to CAP pages with no free page left; returns what makes
 * room again (and closes the connection).
 */
function fillDisk(dataDir: string): () => void {
  const db = new Database(join(dataDir, 'history.db'));
  try {
    db.pragma('busy_timeout = 5000');
    const pages = () => db.pragma('page_count', { simple: true }) as number;
    const free = () => db.pragma('freelist_count', { simple: true }) as number;
    expect(pages()).toBeLessThan(CAP / 4);
    db.exec('CREATE TABLE e2e_disk_full (filler BLOB)');
    const add = db.prepare('INSERT INTO e2e_disk_full VALUES (zeroblob(?))');
    while (pages() < CAP || free() > 0) add.run(64 * 1024);
  } catch (error) {
    db.close();
    throw error;
  }
  return () => {
    try {
      db.exec('DROP TABLE e2e_disk_full');
      expect(db.pragma('freelist_count', { simple: true })).toBeGreaterThan(CAP / 2);
    } finally {
      db.close();
    }
  };
}

/** The composer's text, exactly (not trimmed). */
const composerText = (page: Page) => page.getByTestId('composer').inputValue();

/** Rows in the window whose text is exactly `text` (compared in the page: it has newlines). */
const rowsWith = (page: Page, text: string) =>
  page.evaluate((text) => [...document.querySelectorAll('[data-testid="message"]')].filter((row) => row.querySelector('[data-testid="message-text"]')?.textContent === text).length, text);

/** How many messages (with exactly `text`, if given) the person's core has with `peer`. */
async function stored(person: Person, peer: string, text?: string): Promise<number> {
  const page = await person.invoke('conversation:page', { peer, limit: 500 });
  if (!page.ok) throw new Error(`${page.error.code}: ${page.error.message}`);
  return page.value.filter((m) => text === undefined || m.text === text).length;
}

/**
 * What a person might type: several lines, a little over one database page (4 KB) even
 * without its sealed copy. A full disk refuses what needs a new page; a short line can still
 * fit in a page that is partly used, on a real disk as here.
 */
const draft = [
  'Notes from the planning meeting, so nobody has to remember them:',
  ...Array.from({ length: 64 }, (_, i) => `${i + 1}. Item ${i + 1} is agreed — owner, date and “details” in the shared doc (v${i}).`),
  'Tell me if I missed anything!',
].join('\n');

const session = useSession();
const relay = useServerRelay({ name: 'Lab relay' });

describe('sending while the disk is full', () => {
  it('keeps the exact draft and says why; once there is room, Enter sends it once', async () => {
    expect(Buffer.byteLength(draft)).toBeGreaterThan(4_500);
    const ada = await session.current.person({ historyMaxPageCount: CAP });
    const grace = await session.current.person();
    await Promise.all([firstRun(ada, 'Ada Lovelace'), firstRun(grace, 'Grace Hopper')]);
    await Promise.all([joinRelay(ada, relay.current.address), joinRelay(grace, relay.current.address)]);
    await Promise.all([personRow(ada.page, 'Grace Hopper').waitFor(), personRow(grace.page, 'Ada Lovelace').waitFor()]);
    await openChat(ada, 'Grace Hopper');
    const graceId = grace.core.id;
    const adaId = ada.core.id;

    // The conversation works before the disk fills.
    const hello = 'Hello Grace, notes coming in a minute.';
    await send(ada, hello);
    await ada.page.locator('[data-testid="message"][data-state="delivered"]').filter({ has: ada.page.getByTestId('message-text').filter({ hasText: exactly(hello) }) }).waitFor();
    await ada.delivered();

    const makeRoom = fillDisk(ada.core.dataDir);
    try {
      const composer = ada.page.getByTestId('composer');
      await composer.fill(draft);
      await composer.press('Enter');

      const error = ada.page.getByTestId('send-error');
      await error.waitFor();
      expect(await error.textContent()).toBe('Your disk is full, so the message was not saved. Free some space and send it again.');
      expect(await error.getAttribute('role')).toBe('alert');
      expect(await composerText(ada.page)).toBe(draft);
      expect(await ada.page.getByTestId('send').isEnabled()).toBe(true);
      // Not saved, so not shown, not queued and not sent: the draft is the only copy.
      await ada.delivered();
      expect(await rowsWith(ada.page, draft)).toBe(0);
      expect(await ada.page.getByTestId('message').count()).toBe(1);
      expect(await stored(ada, graceId, draft)).toBe(0);

      // Still full: pressing Enter again fails the same way and changes nothing.
      await composer.press('Enter');
      await ada.page.waitForTimeout(300);
      await error.waitFor();
      expect(await composerText(ada.page)).toBe(draft);
      expect(await stored(ada, graceId, draft)).toBe(0);
      expect(await stored(ada, graceId)).toBe(1);
    } finally {
      makeRoom();
    }

    // Room again, the app still running: the same Enter sends the draft, once.
    await ada.page.getByTestId('composer').press('Enter');
    await ada.page.locator('[data-testid="message"][data-state="delivered"]').filter({ has: ada.page.getByTestId('message-text').filter({ hasText: draft.split('\n')[0]! }) }).waitFor();
    expect(await composerText(ada.page)).toBe('');
    expect(await ada.page.getByTestId('send-error').count()).toBe(0);
    await openChat(grace, 'Ada Lovelace');
    await expect.poll(() => stored(grace, adaId, draft), { timeout: 10_000 }).toBe(1);
    // Late duplicates would have arrived by now (the relay and the outbox answer in milliseconds).
    await ada.page.waitForTimeout(1_000);
    await Promise.all([ada.delivered(), grace.delivered()]);
    // Each window, read from top to bottom (the list is virtual: its tall rows are not all rendered at once).
    expect((await readConversation(ada.page)).map((m) => [m.direction, m.text])).toEqual([['out', hello], ['out', draft]]);
    expect((await readConversation(grace.page)).map((m) => [m.direction, m.text])).toEqual([['in', hello], ['in', draft]]);
    expect(await stored(ada, graceId, draft)).toBe(1);
    expect(await stored(grace, adaId, draft)).toBe(1);
    expect(await stored(ada, graceId)).toBe(2);
    expect(await stored(grace, adaId)).toBe(2);

    await expectHealthy(ada);
    await expectHealthy(grace);
  });
});
