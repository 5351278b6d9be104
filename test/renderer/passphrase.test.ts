// RELIABILITY C8 in the window: a keyring without encryption is shown as a warning with the
// offer of a passphrase; sealed keys bring an unlock screen at start.
import { describe, expect, it } from 'vitest';
import { cleanup, screen, waitFor, within } from '@testing-library/svelte';
import { tick } from 'svelte';
import type { Profile } from '../../preload/contract.ts';
import { FakeParley, ME } from './fake-parley.ts';
import { renderApp } from './render-app.ts';

function keysKept(protection: Profile['secretProtection']): FakeParley {
  const fake = new FakeParley();
  fake.profile = { ...ME, secretProtection: protection };
  return fake;
}

describe('the passphrase offer', () => {
  it('warns, and offers a passphrase, only when the keys are stored without encryption', async () => {
    for (const protection of ['os-encrypted', 'passphrase'] as const) {
      const { app } = await renderApp(keysKept(protection));
      expect(screen.queryByTestId('key-warning'), protection).toBeNull();
      app.openSettings();
      await tick();
      expect(screen.getByTestId('settings-dialog'), protection).toBeTruthy();
      expect(screen.queryByRole('button', { name: 'Protect with a passphrase' }), protection).toBeNull();
      cleanup();
    }

    // A keyring that only obscures them (basic_text), or no keyring at all (a plain file).
    for (const protection of ['plain-text-keyring', 'file-0600'] as const) {
      const { app } = await renderApp(keysKept(protection));
      const warning = screen.getByTestId('key-warning');
      expect(warning.textContent, protection).toContain('Your keys are stored without encryption.');
      expect(within(warning).getByRole('button', { name: 'Protect with a passphrase' }), protection).toBeTruthy();
      app.openSettings();
      await tick();
      expect(within(screen.getByTestId('settings-dialog')).getByRole('button', { name: 'Protect with a passphrase' }), protection).toBeTruthy();
      cleanup();
    }
  });

  it('checks the passphrase is long enough and typed the same twice, then protects the keys', async () => {
    const { fake, user } = await renderApp(keysKept('plain-text-keyring'));
    await user.click(screen.getByRole('button', { name: 'Protect with a passphrase' }));
    const dialog = await screen.findByTestId('passphrase-dialog');
    const fresh = within(dialog).getByLabelText('New passphrase');
    const again = within(dialog).getByLabelText('Type it again');
    expect(document.activeElement).toBe(fresh);
    const protect = within(dialog).getByRole('button', { name: 'Protect' });

    await user.type(fresh, 'short');
    await user.type(again, 'short');
    await user.click(protect);
    expect(within(dialog).getByRole('alert').textContent).toBe('Use at least 8 characters.');

    await user.clear(fresh);
    await user.type(fresh, 'three unrelated words');
    await user.clear(again);
    await user.type(again, 'three unrelated word');
    await user.click(protect);
    expect(within(dialog).getByRole('alert').textContent).toBe('The two passphrases do not match.');
    expect(fake.callsOf('setPassphrase')).toEqual([]);

    await user.type(again, 's');
    await user.click(protect);
    expect(fake.callsOf('setPassphrase')).toEqual([{ passphrase: 'three unrelated words' }]);
    await waitFor(() => expect(screen.queryByTestId('passphrase-dialog')).toBeNull());
    expect(screen.queryByTestId('key-warning')).toBeNull();
  });

  it('shows why main refused to protect the keys, and keeps the dialog open', async () => {
    const fake = keysKept('plain-text-keyring');
    fake.on('setPassphrase', () => ({ ok: false, error: { code: 'E_INTERNAL', message: 'disk' } }));
    const { user } = await renderApp(fake);
    await user.click(screen.getByRole('button', { name: 'Protect with a passphrase' }));
    const dialog = await screen.findByTestId('passphrase-dialog');
    await user.type(within(dialog).getByLabelText('New passphrase'), 'three unrelated words');
    await user.type(within(dialog).getByLabelText('Type it again'), 'three unrelated words');
    await user.click(within(dialog).getByRole('button', { name: 'Protect' }));
    expect((await within(dialog).findByRole('alert')).textContent).toBe('Something went wrong inside Parley; the details are in its log.');
    expect(screen.getByTestId('key-warning')).toBeTruthy();
  });
});

describe('changing or removing the passphrase', () => {
  it('changes it only with the current one, then removes it, and the warning comes back', async () => {
    const { fake, app, user } = await renderApp(keysKept('plain-text-keyring'));
    await user.click(screen.getByRole('button', { name: 'Protect with a passphrase' }));
    let dialog = await screen.findByTestId('passphrase-dialog');
    expect(within(dialog).queryByLabelText('Current passphrase')).toBeNull();
    await user.type(within(dialog).getByLabelText('New passphrase'), 'three unrelated words');
    await user.type(within(dialog).getByLabelText('Type it again'), 'three unrelated words{Enter}');
    await waitFor(() => expect(screen.queryByTestId('passphrase-dialog')).toBeNull());

    app.openSettings();
    await tick();
    const settings = screen.getByTestId('settings-dialog');
    expect(within(settings).getByTestId('settings-protection').textContent).toContain('Your keys are protected by your passphrase.');
    expect(within(settings).queryByRole('button', { name: 'Protect with a passphrase' })).toBeNull();
    await user.click(within(settings).getByRole('button', { name: 'Change passphrase' }));
    dialog = await screen.findByTestId('passphrase-dialog');
    expect(within(dialog).getByRole('heading').textContent).toBe('Change your passphrase');
    const current = within(dialog).getByLabelText('Current passphrase');
    expect(document.activeElement).toBe(current);
    const change = within(dialog).getByRole('button', { name: 'Change' });

    await user.type(within(dialog).getByLabelText('New passphrase'), 'four other unrelated words');
    await user.type(within(dialog).getByLabelText('Type it again'), 'four other unrelated words');
    await user.click(change);
    expect(within(dialog).getByRole('alert').textContent).toBe('Enter your current passphrase.');
    expect(fake.callsOf('setPassphrase')).toHaveLength(1);

    await user.type(current, 'three unrelated word');
    await user.click(change);
    expect((await within(dialog).findByRole('alert')).textContent).toBe('The current passphrase is not right.');
    await user.type(current, 's');
    await user.click(change);
    await waitFor(() => expect(screen.queryByTestId('passphrase-dialog')).toBeNull());
    expect(fake.callsOf('setPassphrase').at(-1)).toEqual({ passphrase: 'four other unrelated words', current: 'three unrelated words' });
    expect(app.profile?.secretProtection).toBe('passphrase');

    app.openSettings();
    await tick();
    await user.click(within(screen.getByTestId('settings-dialog')).getByRole('button', { name: 'Remove passphrase' }));
    dialog = await screen.findByTestId('passphrase-dialog');
    expect(within(dialog).getByRole('heading').textContent).toBe('Remove your passphrase');
    expect(within(dialog).queryByLabelText('New passphrase')).toBeNull();
    // The fields start empty: nothing typed for the change is offered again.
    expect((within(dialog).getByLabelText('Current passphrase') as HTMLInputElement).value).toBe('');
    await user.type(within(dialog).getByLabelText('Current passphrase'), 'three unrelated words{Enter}');
    expect((await within(dialog).findByRole('alert')).textContent).toBe('The current passphrase is not right.');
    await user.clear(within(dialog).getByLabelText('Current passphrase'));
    await user.type(within(dialog).getByLabelText('Current passphrase'), 'four other unrelated words{Enter}');
    await waitFor(() => expect(screen.queryByTestId('passphrase-dialog')).toBeNull());
    expect(fake.callsOf('removePassphrase')).toEqual([{ current: 'three unrelated words' }, { current: 'four other unrelated words' }]);
    expect(app.profile?.secretProtection).toBe('plain-text-keyring');
    expect(screen.getByTestId('key-warning')).toBeTruthy();
  });
});

describe('the unlock screen', () => {
  it('asks for the passphrase at start, says when it is wrong, and opens Parley with the right one', async () => {
    const fake = new FakeParley();
    fake.passphrase = 'open sesame please';
    const { app, user } = await renderApp(fake);
    const screenForm = screen.getByTestId('unlock-screen');
    expect(screen.queryByTestId('status-bar')).toBeNull();
    const field = within(screenForm).getByLabelText('Passphrase');
    expect(field.getAttribute('type')).toBe('password');

    await user.click(within(screenForm).getByRole('button', { name: 'Unlock' }));
    expect(within(screenForm).getByRole('alert').textContent).toBe('Enter your passphrase.');
    expect(fake.callsOf('unlock')).toEqual([]);

    await user.type(field, 'open sesame');
    await user.click(within(screenForm).getByRole('button', { name: 'Unlock' }));
    expect((await within(screenForm).findByRole('alert')).textContent).toBe('That passphrase is not right.');
    expect(field.getAttribute('aria-invalid')).toBe('true');
    expect(app.phase).toBe('locked');

    await user.clear(field);
    await user.type(field, 'open sesame please{Enter}');
    expect(fake.callsOf('unlock')).toEqual([{ passphrase: 'open sesame' }, { passphrase: 'open sesame please' }]);
    expect(await screen.findByTestId('status-bar')).toBeTruthy();
    expect(screen.queryByTestId('unlock-screen')).toBeNull();
    expect(app.profile).toEqual(ME);
  });
});
