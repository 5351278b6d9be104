// Deleting a message, or a whole conversation: asked first, gone from the conversation and the
// list here, still gone after the window reloads, and still with the other person.
import { describe, expect, it } from 'vitest';
import { useSession } from './bridge.ts';
import { expectHealthy, meet, messageRow, openChat, personRow, readConversation, send } from './flows.ts';

const session = useSession();

describe('deleting a message', () => {
  it('takes it from this computer only, for good, after asking, without changing how tall a row is; and so does clearing the conversation', async () => {
    const { host: ada, guest: grace } = await meet(session.current, 'Ada Lovelace', 'Grace Hopper');
    await openChat(ada, 'Grace Hopper');
    await send(ada, 'The engine notes are ready.');
    const sent = await send(ada, 'Note G has a mistake, ignore it.');
    await openChat(grace, 'Ada Lovelace');
    const row = messageRow(grace.page, 'Note G has a mistake, ignore it.');
    await row.waitFor();

    // The button shows on hover only, and sits beside the bubble without making the row taller.
    const button = row.getByRole('button', { name: 'Delete message' });
    expect(await button.evaluate((b) => getComputedStyle(b).opacity)).toBe('0');
    const bubble = await row.locator('.bubble').boundingBox();
    const line = await row.locator('.line').boundingBox();
    expect(line?.height).toBe(bubble?.height);
    await row.hover();
    await expect.poll(() => button.evaluate((b) => getComputedStyle(b).opacity)).toBe('1');

    await button.click();
    const dialog = grace.page.getByTestId('delete-dialog');
    expect(await dialog.textContent()).toContain('Ada Lovelace keeps the message they sent.');
    await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
    await row.waitFor({ state: 'detached' });
    await personRow(grace.page, 'Ada Lovelace').getByTestId('person-preview').filter({ hasText: 'The engine notes are ready.' }).waitFor();
    expect(await grace.page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('composer');
    await expectHealthy(grace);

    await grace.page.reload();
    await openChat(grace, 'Ada Lovelace');
    expect((await readConversation(grace.page)).map((m) => m.text)).toEqual(['The engine notes are ready.']);
    // Ada's copy is hers.
    await sent.waitFor();
    expect((await readConversation(ada.page)).map((m) => m.text)).toEqual(['The engine notes are ready.', 'Note G has a mistake, ignore it.']);

    // The whole conversation, from its header: empty here, after a reload too; Ada's stays.
    await grace.page.getByRole('button', { name: 'Delete conversation' }).click();
    await grace.page.getByTestId('confirm-delete').click();
    await grace.page.getByTestId('history-empty').waitFor();
    await personRow(grace.page, 'Ada Lovelace').getByTestId('person-preview').filter({ hasText: 'No messages yet' }).waitFor();
    await grace.page.reload();
    await openChat(grace, 'Ada Lovelace');
    await grace.page.getByTestId('history-empty').waitFor();
    expect(await ada.page.getByTestId('message').count()).toBe(2);
  });
});
