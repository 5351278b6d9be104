// Ctrl/Cmd+F finds an old message far above what the conversation shows; opening the result
// shows it, highlighted, in the conversation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSession, type Person, type Session } from './bridge.ts';
import { expectHealthy, meetAt, messageRow, openChat, personRow, sendMany, serverRelay } from './flows.ts';

let session: Session;
let relay: Awaited<ReturnType<typeof serverRelay>>;
let grace: Person;
beforeAll(async () => {
  [session, relay] = await Promise.all([startSession(), serverRelay({ name: 'Lab relay' })]);
});
afterAll(async () => {
  await session?.close();
  await relay?.stop();
});

// The tests below continue one story, in order.
describe('search', () => {
  it('finds an old message and opens the conversation at it, highlighted', async () => {
    let ada: Person;
    [ada, grace] = await meetAt(session, relay.address, ['Ada Lovelace', 'Grace Hopper']);
    const old = 'The spare key to the lab is under the blue flowerpot.';
    // The message, then a long conversation after it: more than a page (100) of history.
    await sendMany(ada, grace.core.id, [old]);
    for (let round = 0; round < 5; round++) {
      await sendMany(ada, grace.core.id, Array.from({ length: 11 }, (_, i) => `Ada's status update ${round * 11 + i + 1}`));
      await sendMany(grace, ada.core.id, Array.from({ length: 11 }, (_, i) => `Grace's reply ${round * 11 + i + 1}`));
    }
    // All of Ada's have arrived (Grace has not read them yet).
    await personRow(grace.page, 'Ada Lovelace').getByTestId('unread-badge').filter({ hasText: /^56$/ }).waitFor();
    await openChat(grace, 'Ada Lovelace');
    await grace.page.getByTestId('jump-latest').click();
    await grace.page.getByTestId('jump-latest').waitFor({ state: 'detached' });
    await personRow(grace.page, 'Ada Lovelace').getByTestId('unread-badge').waitFor({ state: 'detached' });
    expect(await messageRow(grace.page, old).count()).toBe(0);

    await grace.page.keyboard.press('Control+f');
    const dialog = grace.page.getByTestId('search-dialog');
    await dialog.waitFor();
    await grace.page.getByTestId('search-input').fill('flowerpot');
    const result = grace.page.getByTestId('search-result');
    await result.first().waitFor();
    expect(await result.count()).toBe(1);
    expect(await result.locator('.result-name').textContent()).toBe('Ada Lovelace');
    expect(await result.getByTestId('search-snippet').textContent()).toContain('flowerpot');
    expect(await result.locator('mark').allTextContents()).toEqual(['flowerpot']);

    await grace.page.getByTestId('search-input').press('Enter');
    await dialog.waitFor({ state: 'detached' });
    const row = messageRow(grace.page, old);
    await row.and(grace.page.locator('.highlight')).waitFor();
    expect(await row.getAttribute('class')).toMatch(/\bin\b/);
    // On screen, inside the conversation's scrolled area.
    const onScreen = await row.evaluate((element) => {
      const list = element.closest('[data-testid="message-list"]');
      if (!list) return false;
      const box = element.getBoundingClientRect();
      const view = list.getBoundingClientRect();
      return box.height > 0 && box.top >= view.top && box.bottom <= view.bottom;
    });
    expect(onScreen).toBe(true);

    // Cmd+F (macOS) opens it too.
    await grace.page.keyboard.press('Meta+f');
    await dialog.waitFor();
    await grace.page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });

    await expectHealthy(ada);
    await expectHealthy(grace);
  });

  // Regression: every hit used to show the snippet of the oldest match (rowid bound as a REAL).
  it('shows each result with the words of its own message', async () => {
    await grace.page.keyboard.press('Control+f');
    await grace.page.getByTestId('search-input').fill('reply');
    const snippets = grace.page.getByTestId('search-snippet');
    await snippets.nth(1).waitFor();
    const shown = await snippets.allTextContents();
    expect(new Set(shown).size).toBe(shown.length);
    for (const snippet of shown) expect(snippet).toMatch(/Grace's reply \d+/);
    await grace.page.keyboard.press('Escape');
  });
});
