import { describe, expect, it } from 'vitest';
import { screen, waitFor, within } from '@testing-library/svelte';
import { FakeParley, ONLINE } from './fake-parley.ts';
import { renderApp } from './render-app.ts';

function firstRun(): FakeParley {
  const fake = new FakeParley();
  fake.profile = null;
  fake.status = { connection: { state: 'offline' }, hosting: null, sync: null };
  return fake;
}

describe('first run', () => {
  it('asks for a display name, calls setupProfile, then offers host and join', async () => {
    const { fake, user } = await renderApp(firstRun());
    expect(screen.queryByTestId('connect-screen')).toBeNull();
    await user.type(screen.getByLabelText('Your display name'), '  Ada  ');
    await user.click(screen.getByRole('button', { name: 'Continue' }));
    expect(fake.callsOf('setupProfile')).toEqual([{ name: 'Ada' }]);
    expect(await screen.findByTestId('host-panel')).toBeTruthy();
    expect(screen.getByTestId('join-panel')).toBeTruthy();
    expect(screen.getByTestId('connect-screen').textContent).toContain('Ada');
  });

  it('shows why a name was refused', async () => {
    const fake = firstRun();
    fake.on('setupProfile', () => ({ ok: false, error: { code: 'E_SCHEMA', message: 'name: display name has control or bidi-override characters' } }));
    const { user } = await renderApp(fake);
    await user.type(screen.getByLabelText('Your display name'), 'x');
    await user.click(screen.getByRole('button', { name: 'Continue' }));
    expect((await screen.findByText(/control or bidi-override/)).textContent).toBe('Display name has control or bidi-override characters.');
  });

  it('hosts on the port from settings and shows the access code with a Copy button', async () => {
    const fake = firstRun();
    fake.profile = { userId: 'u'.repeat(32), name: 'Dana', fingerprint: 'ff', secretProtection: 'os-encrypted' };
    const { user } = await renderApp(fake);
    await user.click(screen.getByTestId('start-hosting'));
    expect(fake.callsOf('startHosting')).toEqual([{ port: 47800, open: false }]);
    expect((await screen.findByTestId('access-code')).textContent).toBe('ABCDE-12345');
    await user.click(screen.getByTestId('copy-code'));
    // user-event puts a clipboard stub on navigator.
    expect(await navigator.clipboard.readText()).toBe('ABCDE-12345');
    expect(await screen.findByText('Copied')).toBeTruthy();
  });

  it('hosts open to the network when the toggle is on, and says when the port is taken', async () => {
    const fake = firstRun();
    fake.on('startHosting', () => ({ ok: false, error: { code: 'E_PORT_IN_USE', message: 'Port 47800 is already in use on this computer. Choose another port in Settings.' } }));
    fake.profile = { userId: 'u'.repeat(32), name: 'Dana', fingerprint: 'ff', secretProtection: 'os-encrypted' };
    const { user } = await renderApp(fake);
    await user.click(screen.getByLabelText('Open to the network (no access code)'));
    await user.click(screen.getByTestId('start-hosting'));
    expect(fake.callsOf('startHosting')).toEqual([{ port: 47800, open: true }]);
    expect((await screen.findByTestId('host-error')).textContent).toContain('already in use');
  });

  it('lists relays found on the LAN as they appear and joins one', async () => {
    const fake = firstRun();
    fake.profile = { userId: 'u'.repeat(32), name: 'Dana', fingerprint: 'ff', secretProtection: 'os-encrypted' };
    const { user } = await renderApp(fake);
    const found = screen.getByTestId('found-relays');
    expect(found.textContent).toContain('Looking for relays');
    fake.emit('onRelaysFound', [{ relayId: 'r1', name: 'Office', address: '192.168.1.2:47800', accessCode: false, protocol: 1 }]);
    const office = await within(found).findByRole('button', { name: /Office/ });
    expect(office.textContent).toContain('192.168.1.2:47800');
    expect(office.textContent).toContain('Open');
    await user.click(office);
    expect(fake.callsOf('join')).toEqual([{ address: '192.168.1.2:47800' }]);
  });

  it('explains a refused join in words and moves on once online', async () => {
    const fake = firstRun();
    fake.profile = { userId: 'u'.repeat(32), name: 'Dana', fingerprint: 'ff', secretProtection: 'os-encrypted' };
    const { app, user } = await renderApp(fake);
    await user.type(screen.getByTestId('join-address'), '10.0.0.9:47800');
    await user.type(screen.getByTestId('join-code'), 'wrong');
    await user.click(screen.getByTestId('join-submit'));
    expect(fake.callsOf('join')).toEqual([{ address: '10.0.0.9:47800', accessCode: 'wrong' }]);
    fake.emit('onStatus', { connection: { state: 'connecting', relay: '10.0.0.9:47800' }, hosting: null, sync: null });
    expect(await screen.findByTestId('join-progress')).toBeTruthy();
    fake.emit('onStatus', { connection: { state: 'refused', relay: '10.0.0.9:47800', code: 'E_ACCESS_CODE', reason: 'The access code is wrong or missing.' }, hosting: null, sync: null });
    expect((await screen.findByTestId('join-error')).textContent).toBe('The access code is wrong or missing.');
    expect(screen.getByTestId('join-code').getAttribute('aria-invalid')).toBe('true');

    await user.clear(screen.getByTestId('join-code'));
    await user.type(screen.getByTestId('join-code'), 'right');
    await user.click(screen.getByTestId('join-submit'));
    fake.emit('onStatus', { connection: { state: 'online', relay: '10.0.0.9:47800', relayId: 'r', relayName: 'Lab' }, hosting: null, sync: null });
    await waitFor(() => expect(app.phase).toBe('chat'));
    expect((await screen.findByTestId('status-bar')).textContent).toContain('Connected to Lab');
  });

  it('reports an unreachable relay while it keeps trying', async () => {
    const fake = firstRun();
    fake.profile = { userId: 'u'.repeat(32), name: 'Dana', fingerprint: 'ff', secretProtection: 'os-encrypted' };
    const { user } = await renderApp(fake);
    await user.type(screen.getByTestId('join-address'), '10.0.0.9:1');
    await user.click(screen.getByTestId('join-submit'));
    fake.emit('onStatus', { connection: { state: 'reconnecting', relay: '10.0.0.9:1', reason: 'The relay cannot be reached.', attempt: 2 }, hosting: null, sync: null });
    expect((await screen.findByTestId('join-error')).textContent).toContain('The relay cannot be reached. Still trying (attempt 2)');
    await user.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(fake.callsOf('leave')).toHaveLength(1);
  });

  it('offers a way back to conversations from the connect screen of a relay nobody else has joined yet', async () => {
    // Online, nobody known, not hosting: the first person on a new relay.
    const fake = new FakeParley();
    const { user } = await renderApp(fake);
    await user.click(screen.getByTestId('connection-button'));
    await user.click(within(screen.getByTestId('connect-screen')).getByRole('button', { name: 'Back to conversations' }));
    expect(screen.queryByTestId('connect-screen')).toBeNull();
    expect(screen.getByTestId('status-bar').textContent).toContain('Connected to Lab relay');
  });

  it('lists a relay joined since start-up in Settings, under the relays joined before', async () => {
    const fake = firstRun();
    fake.profile = { userId: 'u'.repeat(32), name: 'Dana', fingerprint: 'ff', secretProtection: 'os-encrypted' };
    let joined = false;
    fake.on('rememberedRelays', () => ({ ok: true, value: joined ? [{ address: '10.0.0.2:47800', name: 'Lab relay', lastUsed: Date.now() }] : [] }));
    const { user } = await renderApp(fake);
    await user.type(screen.getByTestId('join-address'), '10.0.0.2:47800');
    await user.click(screen.getByTestId('join-submit'));
    // Main remembers a relay once it is online there.
    joined = true;
    fake.emit('onStatus', ONLINE);
    await user.click(await screen.findByTestId('open-settings'));
    const dialog = screen.getByTestId('settings-dialog');
    await waitFor(() => expect(within(dialog).getByText('10.0.0.2:47800')).toBeTruthy());
    expect(within(dialog).queryByText('None yet.')).toBeNull();
  });
});
