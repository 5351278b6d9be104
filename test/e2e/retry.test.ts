// A message that cannot be delivered says why and offers Retry; once the reason is gone,
// Retry delivers it. Here: the sender switched to a relay the recipient never joined.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSession, type Session } from './bridge.ts';
import { expectHealthy, joinRelay, meetAt, messageRow, openChat, personRow, send, serverRelay, showConnect } from './flows.ts';

let session: Session;
let lab: Awaited<ReturnType<typeof serverRelay>>;
let office: Awaited<ReturnType<typeof serverRelay>>;
beforeAll(async () => {
  [session, lab, office] = await Promise.all([startSession(), serverRelay({ name: 'Lab relay' }), serverRelay({ name: 'Office relay' })]);
});
afterEach(async () => {
  await session.closePeople();
});
afterAll(async () => {
  await session?.close();
  await Promise.all([lab?.stop(), office?.stop()]);
});

describe('retrying a failed message', () => {
  it('shows why it failed, and Retry delivers it once the recipient is there', async () => {
    const [ada, grace] = await meetAt(session, lab.address, ['Ada Lovelace', 'Grace Hopper']);

    // Grace moves to the office relay, where Ada has never been.
    await showConnect(grace);
    await joinRelay(grace, office.address);
    expect(await grace.page.getByTestId('status-text').textContent()).toContain('Connected to Office relay');
    await openChat(grace, 'Ada Lovelace');
    const text = 'Are you coming to the demo at three?';
    const row = await send(grace, text);
    await messageRow(grace.page, text).and(grace.page.locator('[data-state="failed"]')).waitFor();
    expect(await row.getByTestId('failure-reason').textContent()).toBe('Not sent: This relay does not know the recipient.');
    expect(await row.getByTestId('message-state').getAttribute('title')).toBe('Not sent');

    // Ada joins the office relay too; Grace sees her arrive.
    await showConnect(ada);
    await joinRelay(ada, office.address);
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
