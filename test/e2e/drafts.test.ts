// What someone has written and not sent stays with the conversation: in the list as a draft,
// and back in the composer when the window opens again.
import { describe, expect, it } from 'vitest';
import { useSession } from './bridge.ts';
import { meet, openChat, personRow, send } from './flows.ts';

const session = useSession();

describe('drafts', () => {
  it('keeps an unsent message through a window reload, shows it in the list, and lets it go once sent', async () => {
    const { host: ada, guest: grace } = await meet(session.current, 'Ada Lovelace', 'Grace Hopper');
    const { page } = grace;
    await openChat(grace, 'Ada Lovelace');
    const draft = 'About the engine notes:\nthe table in note G';
    await page.getByTestId('composer').fill(draft);
    // Kept a moment after the last keystroke (a call made as the page unloads may never arrive).
    const kept = async () => {
      const people = await grace.invoke('people:list', null);
      return people.ok ? people.value[0]?.draft : undefined;
    };
    await expect.poll(kept).toBe(draft);
    await page.reload();
    await personRow(page, 'Ada Lovelace').getByTestId('person-preview').filter({ hasText: 'Draft: About the engine notes: the table in note G' }).waitFor();
    await openChat(grace, 'Ada Lovelace');
    expect(await page.getByTestId('composer').inputValue()).toBe(draft);
    // Open, the conversation shows it in its composer, not in its row.
    expect(await personRow(page, 'Ada Lovelace').getByTestId('person-preview').textContent()).toBe('No messages yet');

    await page.getByTestId('composer').press('ControlOrMeta+End');
    await page.getByTestId('composer').pressSequentially(' skips B7.');
    await page.getByTestId('composer').press('Enter');
    expect(await page.getByTestId('message-text').filter({ hasText: 'skips B7.' }).textContent()).toBe(`${draft} skips B7.`);
    await send(grace, 'And one more thing.');
    await page.reload();
    await personRow(page, 'Ada Lovelace').getByTestId('person-preview').filter({ hasText: 'You: And one more thing.' }).waitFor();
    await openChat(grace, 'Ada Lovelace');
    expect(await page.getByTestId('composer').inputValue()).toBe('');
    // The draft never left Grace's computer.
    expect(await ada.invoke('people:list', null)).toMatchObject({ ok: true, value: [{ name: 'Grace Hopper', draft: null }] });
  });
});
