import { describe, expect, it } from 'vitest';
import { screen, waitFor, within } from '@testing-library/svelte';
import { FakeParley, ME, ONLINE, person } from './fake-parley.ts';
import { renderApp, renderStarting } from './render-app.ts';
import type { AppStatus } from '../../preload/contract.ts';

function online(): FakeParley {
  const fake = new FakeParley();
  fake.people = [person('Grace')];
  return fake;
}

const bar = () => screen.getByTestId('status-bar');

describe('the status bar', () => {
  it('says which relay we are connected to', async () => {
    await renderApp(online());
    expect(bar().dataset.state).toBe('online');
    expect(bar().textContent).toContain('Connected to Lab relay');
  });

  it('shows the hosting address and access code', async () => {
    const fake = online();
    fake.status = { connection: { state: 'online', relay: '127.0.0.1:47800', relayId: 'mine', relayName: 'Mine' }, hosting: { port: 47800, addresses: ['192.168.1.5:47800'], accessCode: 'ABCDE-12345', relayName: 'Mine', relayId: 'mine' }, sync: null };
    await renderApp(fake);
    expect(bar().textContent).toContain('Hosting at 192.168.1.5:47800');
    expect(bar().textContent).toContain('Access code ABCDE-12345');
    expect(screen.getByRole('button', { name: 'Copy access code' })).toBeTruthy();
  });

  it("names a colleague's relay joined while hosting, offers no copy of the own code, and lets Settings leave it", async () => {
    const fake = online();
    fake.status = { ...fake.status, hosting: { port: 47800, addresses: ['192.168.1.5:47800'], accessCode: 'ABCDE-12345', relayName: 'Mine', relayId: 'mine' } };
    const { user } = await renderApp(fake);
    expect(bar().textContent).toContain('Connected to Lab relay');
    expect(bar().textContent).toContain('also hosting on port 47800');
    expect(bar().textContent).not.toContain('ABCDE-12345');
    expect(screen.queryByRole('button', { name: 'Copy access code' })).toBeNull();
    await user.click(screen.getByTestId('open-settings'));
    await user.click(within(screen.getByTestId('settings-dialog')).getByRole('button', { name: 'Leave Lab relay' }));
    expect(fake.callsOf('leave')).toHaveLength(1);
  });

  it('shows reconnecting with its reason and a progress indicator, then offline', async () => {
    const fake = online();
    await renderApp(fake);
    const reconnecting: AppStatus = { connection: { state: 'reconnecting', relay: '10.0.0.2:47800', reason: 'The connection was lost.', attempt: 3 }, hosting: null, sync: null };
    fake.emit('onStatus', reconnecting);
    await waitFor(() => expect(bar().textContent).toContain('Reconnecting to 10.0.0.2:47800…'));
    expect(bar().textContent).toContain('The connection was lost. Attempt 3.');
    expect(screen.getByTestId('reconnect-progress').getAttribute('role')).toBe('progressbar');
    fake.emit('onStatus', { connection: { state: 'offline' }, hosting: null, sync: null });
    await waitFor(() => expect(bar().textContent).toContain('Offline'));
    expect(screen.queryByTestId('reconnect-progress')).toBeNull();
    expect(screen.getByTestId('connection-button').textContent.trim()).toBe('Connect…');
  });

  it('keeps what events said during start-up over the start-up answers read before them', async () => {
    const fake = online();
    const grace = fake.people[0]!;
    const alan = person('Alan', { online: true });
    fake.people.push(alan);
    fake.status = { connection: { state: 'reconnecting', relay: '10.0.0.2:47800', reason: 'The connection was lost.', attempt: 1 }, hosting: null, sync: null };
    const lists = [fake.hold('people'), fake.hold('status')];
    const info = fake.hold('appInfo');
    const { started } = renderStarting(fake);
    await waitFor(() => expect(fake.callsOf('people')).toHaveLength(1));
    // While the lists are on their way: connected, and Grace wrote.
    fake.emit('onStatus', ONLINE);
    fake.emit('onPerson', { ...grace, unread: 2 });
    for (const release of lists) release();
    await waitFor(() => expect(fake.callsOf('appInfo')).toHaveLength(1));
    await new Promise((resolve) => setTimeout(resolve, 0));
    // After the lists, before the last answer: Alan went away.
    fake.emit('onPerson', { ...alan, online: false });
    info();
    await started;
    await waitFor(() => expect(bar().textContent).toContain('Connected to Lab relay'));
    const row = (name: string) => screen.getAllByTestId('person').find((el) => el.textContent.includes(name))!;
    expect(row('Grace').querySelector('[data-testid="unread-badge"]')?.textContent).toBe('2');
    expect(row('Alan').querySelector('[data-testid="person-presence"]')?.textContent).not.toBe('online');
  });

  it('shows backlog sync progress while a backlog arrives', async () => {
    const fake = online();
    await renderApp(fake);
    fake.emit('onStatus', { ...fake.status, sync: { received: 1200 } });
    await waitFor(() => expect(screen.getByTestId('sync-progress').textContent).toContain('1,200 messages received'));
    fake.emit('onStatus', { ...fake.status, sync: null });
    await waitFor(() => expect(screen.queryByTestId('sync-progress')).toBeNull());
  });

  it('warns when keys are kept in a keyring without encryption', async () => {
    const fake = online();
    fake.profile = { ...ME, secretProtection: 'plain-text-keyring' };
    await renderApp(fake);
    expect(screen.getByTestId('secret-warning').textContent).toContain('Keys stored unencrypted');
  });

  it('applies the theme as data-theme and saves a new choice', async () => {
    const fake = online();
    fake.on('settings', () => ({ ok: true, value: { notifications: true, theme: 'dark', hostPort: 47800 } }));
    const { user } = await renderApp(fake);
    await waitFor(() => expect(document.documentElement.dataset.theme).toBe('dark'));
    await user.click(screen.getByTestId('open-settings'));
    await user.click(await screen.findByTestId('theme-light'));
    expect(fake.callsOf('updateSettings')).toEqual([{ theme: 'light' }]);
    await waitFor(() => expect(document.documentElement.dataset.theme).toBe('light'));
    await user.click(screen.getByTestId('settings-notifications'));
    expect(fake.callsOf('updateSettings')).toContainEqual({ notifications: false });
  });

  it('unsubscribes from every event on dispose', async () => {
    const fake = online();
    const { app } = await renderApp(fake);
    expect(fake.listening('onStatus')).toBe(1);
    app.dispose();
    for (const event of ['onStatus', 'onPerson', 'onMessageAdded', 'onMessageUpdated', 'onTyping', 'onRelaysFound'] as const) expect(fake.listening(event)).toBe(0);
  });
});
