// After an action whose button goes away, the focus lands where a keyboard user can go on,
// never on the page itself (from where Tab would leave a dialog for the window behind it).
import { describe, expect, it } from 'vitest';
import { screen, waitFor, within } from '@testing-library/svelte';
import { FakeParley, person } from './fake-parley.ts';
import { openChat, renderApp } from './render-app.ts';

const grace = person('Grace');

describe('the focus', () => {
  it('stays on the verify button as it turns into "Remove verification", and inside the dialog on Tab', async () => {
    const fake = new FakeParley();
    fake.people = [grace];
    const setup = await renderApp(fake);
    await openChat(setup, 'Grace');
    await setup.user.click(screen.getByTestId('verify-button'));
    const dialog = screen.getByTestId('verify-dialog');
    await within(dialog).findByTestId('safety-number');
    within(dialog).getByRole('button', { name: 'Mark as verified' }).focus();
    await setup.user.keyboard('{Enter}');
    await waitFor(() => expect(document.activeElement?.textContent).toBe('Remove verification'));
    await setup.user.tab();
    expect(dialog.contains(document.activeElement)).toBe(true);
  });

  it('goes to the composer once the accepted key’s banner is gone', async () => {
    const fake = new FakeParley();
    fake.people = [person('Grace', { keyChanged: true })];
    const setup = await renderApp(fake);
    await openChat(setup, 'Grace');
    screen.getByTestId('accept-key').focus();
    await setup.user.keyboard('{Enter}');
    await waitFor(() => expect(screen.queryByTestId('key-changed-banner')).toBeNull());
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId('composer')));
  });

  it('moves from Join to Cancel while connecting, and back when cancelled', async () => {
    const fake = new FakeParley();
    fake.status = { connection: { state: 'offline' }, hosting: null, sync: null };
    const setup = await renderApp(fake);
    await setup.user.type(screen.getByTestId('join-address'), '10.0.0.9:47800');
    screen.getByTestId('join-submit').focus();
    await setup.user.keyboard('{Enter}');
    await screen.findByTestId('join-progress');
    await waitFor(() => expect(document.activeElement?.textContent).toBe('Cancel'));
    await setup.user.keyboard('{Enter}');
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId('join-submit')));
    expect(fake.callsOf('leave')).toHaveLength(1);
  });
});

describe('the verify dialog', () => {
  it('shows a failed "Mark as verified" in the dialog, beside the safety number', async () => {
    const fake = new FakeParley();
    fake.people = [grace];
    fake.on('verify', () => ({ ok: false, error: { code: 'E_STORAGE', message: 'The history could not be written.' } }));
    const setup = await renderApp(fake);
    await openChat(setup, 'Grace');
    await setup.user.click(screen.getByTestId('verify-button'));
    const dialog = screen.getByTestId('verify-dialog');
    await within(dialog).findByTestId('safety-number');
    await setup.user.click(within(dialog).getByRole('button', { name: 'Mark as verified' }));
    expect((await within(dialog).findByTestId('verify-error')).getAttribute('role')).toBe('alert');
  });
});
