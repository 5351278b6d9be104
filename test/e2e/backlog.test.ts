// One person leaves; the other writes hundreds of messages; on return the status bar shows
// the backlog arriving and every message is there, once, in order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startSession, type Person, type Session } from './bridge.ts';
import { expectHealthy, joinRelay, meetAt, messageRow, openChat, personRow, readConversation, send, sendMany, serverRelay, setWindowFocus, showConnect } from './flows.ts';

const COUNT = 600;
const note = (i: number) => `Backlog note ${i} of ${COUNT}`;

let session: Session;
let relay: Awaited<ReturnType<typeof serverRelay>>;
let ada: Person;
let grace: Person;
beforeAll(async () => {
  [session, relay] = await Promise.all([startSession(), serverRelay({ name: 'Lab relay', fastBudget: true })]);
});
afterAll(async () => {
  await session?.close();
  await relay?.stop();
});

interface SyncLog {
  __syncLog?: string[];
}

/** Notes every text the status bar's sync indicator shows, from now on. */
async function recordSync(page: Page): Promise<void> {
  await page.evaluate(() => {
    const log: string[] = [];
    (window as unknown as SyncLog).__syncLog = log;
    const noteShown = () => {
      const shown = document.querySelector('[data-testid="sync-progress"]')?.textContent?.replace(/\s+/g, ' ').trim() ?? '';
      if (shown && log.at(-1) !== shown) log.push(shown);
    };
    new MutationObserver(noteShown).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
}

// The tests below continue one story, in order.
describe('a backlog while away', () => {
  it('arrives on return with progress shown, every message once and in order', async () => {
    [ada, grace] = await meetAt(session, relay.address, ['Ada Lovelace', 'Grace Hopper']);
    await openChat(grace, 'Ada Lovelace');

    // Grace leaves the relay from Settings and turns to another window.
    await grace.page.getByTestId('open-settings').click();
    await grace.page.getByTestId('settings-dialog').getByRole('button', { name: 'Leave Lab relay' }).click();
    await grace.page.locator('[data-testid="status-bar"][data-state="offline"]').waitFor();
    await grace.page.keyboard.press('Escape');
    await setWindowFocus(grace, false);
    await personRow(ada.page, 'Grace Hopper').getByTestId('person-presence').filter({ hasText: /^last seen/ }).waitFor();

    // Ada writes: all but the last two through the same checked dispatch the composer uses,
    // then opens the conversation and types the last two.
    await sendMany(ada, grace.core.id, Array.from({ length: COUNT - 2 }, (_, i) => note(i + 1)));
    await openChat(ada, 'Grace Hopper');
    await messageRow(ada.page, note(COUNT - 2)).waitFor();
    await send(ada, note(COUNT - 1));
    await send(ada, note(COUNT));
    // The outbox sends in order, so the last one at the relay means all are.
    await ada.page.locator('[data-testid="message"][data-state="sent"]').filter({ has: ada.page.getByText(note(COUNT), { exact: true }) }).waitFor();

    await recordSync(grace.page);
    await showConnect(grace);
    await grace.page.getByTestId('remembered-relays').getByText(relay.address).waitFor();
    await joinRelay(grace, relay.address);

    await messageRow(grace.page, note(COUNT)).waitFor();
    const shown = await grace.page.evaluate(() => (window as unknown as SyncLog).__syncLog ?? []);
    expect(shown.length).toBeGreaterThan(0);
    for (const line of shown) expect(line).toMatch(/^Catching up: [\d,]+ messages? received$/);
    const row = personRow(grace.page, 'Ada Lovelace');
    await row.getByTestId('person-preview').filter({ hasText: note(COUNT) }).waitFor();
    await row.getByTestId('unread-badge').filter({ hasText: String(COUNT) }).waitFor();

    const conversation = await readConversation(grace.page);
    expect(conversation.map((m) => m.text)).toEqual(Array.from({ length: COUNT }, (_, i) => note(i + 1)));
    expect(conversation.every((m) => m.direction === 'in')).toBe(true);

    // Back in the window, at the newest note: all read.
    await setWindowFocus(grace, true);
    await row.getByTestId('unread-badge').waitFor({ state: 'detached' });

    await expectHealthy(ada);
    await expectHealthy(grace);
  });

  // Regression: progress used to clear only after a batch of fewer than 100 envelopes.
  it('then clears the catching-up indicator', async () => {
    await grace.page.getByTestId('sync-progress').waitFor({ state: 'detached', timeout: 1000 });
  });

  // Regression: only the first 500 read receipts used to be sent.
  it('shows the sender every note read', async () => {
    // The first receipt has arrived at Ada's core (500 ids) and reached her window...
    await expect.poll(() => ada.core.updated.filter((m) => m.state === 'read').length, { timeout: 10_000 }).toBeGreaterThanOrEqual(500);
    await ada.delivered();
    // ...and the newest note, on her screen, says Read.
    await ada.page.locator('[data-testid="message"][data-state="read"]').filter({ has: ada.page.getByText(note(COUNT), { exact: true }) }).waitFor({ timeout: 1000 });
  });
});
