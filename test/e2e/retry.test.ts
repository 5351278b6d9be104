// A message that cannot be delivered says why and offers Retry; once the reason is gone,
// Retry delivers it. Here: the sender switched to a relay the recipient never joined.
import { describe, expect, it } from 'vitest';
import { useSession } from './bridge.ts';
import { expectHealthy, joinRelay, meetAt, messageRow, openChat, personRow, send, showConnect, useServerRelay } from './flows.ts';

const session = useSession();
const lab = useServerRelay({ name: 'Lab relay' });
const office = useServerRelay({ name: 'Office relay' });

describe('retrying a failed message', () => {
  it('shows why it failed, and Retry delivers it once the recipient is there', async () => {
    const [ada, grace] = await meetAt(session.current, lab.current.address, ['Ada Lovelace', 'Grace Hopper']);

    // Grace moves to the office relay, where Ada has never been.
    await showConnect(grace);
    await joinRelay(grace, office.current.address);
    expect(await grace.page.getByTestId('status-text').textContent()).toContain('Connected to Office relay');
    await openChat(grace, 'Ada Lovelace');
    const text = 'Are you coming to the demo at three?';
    const row = await send(grace, text);
    await messageRow(grace.page, text).and(grace.page.locator('[data-state="failed"]')).waitFor();
    expect(await row.getByTestId('failure-reason').textContent()).toBe('Not sent: This relay does not know the recipient.');
    expect(await row.getByTestId('message-state').getAttribute('title')).toBe('Not sent');

    // Ada joins the office relay too; Grace sees her arrive.
    await showConnect(ada);
    await joinRelay(ada, office.current.address);
    await personRow(grace.page, 'Ada Lovelace').getByTestId('person-presence').filter({ hasText: /^online$/ }).waitFor();

    await row.getByTestId('retry').click();
    await messageRow(grace.page, text).and(grace.page.locator('[data-state="delivered"], [data-state="read"]')).waitFor();
    expect(await row.getByTestId('failure-reason').count()).toBe(0);
    expect(await row.getByTestId('retry').count()).toBe(0);

    await openChat(ada, 'Grace Hopper');
    await messageRow(ada.page, text).waitFor();
    expect(await ada.page.getByTestId('message-text').filter({ hasText: text }).count()).toBe(1);
    await messageRow(grace.page, text).and(grace.page.locator('[data-state="read"]')).waitFor();

    await expectHealthy(ada);
    await expectHealthy(grace);
  });
});
