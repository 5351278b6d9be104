import { describe, expect, it } from 'vitest';
import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import type { HostInfo } from '../../preload/contract.ts';
import { FakeParley } from './fake-parley.ts';
import { renderApp } from './render-app.ts';

const HOSTING: HostInfo = { port: 47800, addresses: ['192.168.1.5:47800'], accessCode: 'ABCDE-12345', relayName: 'Mine', relayId: 'own' };
const failed = { ok: false as const, error: { code: 'E_UNAVAILABLE', message: 'The relay could not be changed.' } };

describe('settings', () => {
  it('says when the hosting port is out of range, saves nothing then, and saves a port in range', async () => {
    const fake = new FakeParley();
    const { user } = await renderApp(fake);
    await user.click(screen.getByTestId('open-settings'));
    const port = screen.getByTestId('settings-port') as HTMLInputElement;
    await user.clear(port);
    await user.type(port, '80');
    await fireEvent.change(port);
    expect(within(screen.getByTestId('settings-dialog')).getByRole('alert').textContent).toContain('Choose a port from 1024 to 65535');
    expect(port.getAttribute('aria-invalid')).toBe('true');
    expect(fake.callsOf('updateSettings')).toEqual([]);

    await user.clear(port);
    await user.type(port, '47900');
    await fireEvent.change(port);
    expect(fake.callsOf('updateSettings')).toEqual([{ hostPort: 47900 }]);
    expect(screen.queryByTestId('settings-port-error')).toBeNull();
    expect(port.getAttribute('aria-invalid')).toBeNull();
  });

  it('shows a failed Stop hosting where it was asked for, and forgets it once stopping works', async () => {
    const fake = new FakeParley();
    fake.status = { connection: { state: 'online', relay: '127.0.0.1:47800', relayId: 'own', relayName: 'Mine' }, hosting: HOSTING, sync: null };
    const answers = [failed, { ok: true as const, value: null }];
    fake.on('stopHosting', () => answers.shift() ?? failed);
    const { user } = await renderApp(fake);
    await user.click(screen.getByTestId('open-settings'));
    const dialog = screen.getByTestId('settings-dialog');
    await user.click(within(dialog).getByRole('button', { name: 'Stop hosting' }));
    expect((await within(dialog).findByTestId('settings-connection-error')).textContent).toBe('The relay could not be changed.');
    await user.click(within(dialog).getByRole('button', { name: 'Stop hosting' }));
    await waitFor(() => expect(screen.queryByTestId('settings-connection-error')).toBeNull());
    expect(screen.getByTestId('status-bar').textContent).not.toContain('could not be changed');
  });

  it('shows a failed new access code on the connect screen, and forgets it once a new code is made', async () => {
    const fake = new FakeParley();
    fake.status = { connection: { state: 'online', relay: '127.0.0.1:47800', relayId: 'own', relayName: 'Mine' }, hosting: HOSTING, sync: null };
    let fail = true;
    fake.on('newAccessCode', () => (fail ? failed : { ok: true as const, value: { ...HOSTING, accessCode: 'NEWCO-DE123' } }));
    const { user } = await renderApp(fake);
    await user.click(screen.getByTestId('connection-button'));
    await user.click(screen.getByRole('button', { name: 'Make a new code' }));
    expect((await screen.findByTestId('host-error')).textContent).toBe('The relay could not be changed.');
    fail = false;
    await user.click(screen.getByRole('button', { name: 'Make a new code' }));
    await waitFor(() => expect(screen.getByTestId('access-code').textContent).toBe('NEWCO-DE123'));
    expect(screen.queryByTestId('host-error')).toBeNull();
  });
});
