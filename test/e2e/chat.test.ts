// Two people, two windows: first run, one hosts, the other joins with the code shown on the
// host's screen, they find each other and talk; the sender watches delivered, then read.
import { describe, expect, it } from 'vitest';
import { COMMANDS, EVENTS } from '../../preload/contract.ts';
import { useSession } from './bridge.ts';
import { expectHealthy, firstRun, freePort, joinRelay, messageRow, openChat, personRow, recordedStates, recordStates, send, setWindowFocus, startHosting } from './flows.ts';

const session = useSession();

describe('two people meet and chat', () => {
  it('goes from first run to delivered and read messages both ways', async () => {
    const port = await freePort();
    const ada = await session.current.person({ host: true, settings: { hostPort: port } });
    const grace = await session.current.person();

    for (const person of [ada, grace]) {
      await expect(person.page.getByRole('heading', { name: 'Welcome to Parley' }).textContent()).resolves.toBe('Welcome to Parley');
    }
    // The window's API has the preload's shape, and calls are checked as ipc.ts checks them.
    const api = await ada.page.evaluate(async () => ({
      methods: Object.keys(window.parley).sort(),
      frozen: Object.isFrozen(window.parley),
      unsubscribe: typeof window.parley.onStatus(() => undefined),
      badCall: await window.parley.send({ peer: 'nobody', text: '' }),
    }));
    expect(api).toEqual({
      methods: [...Object.keys(COMMANDS), ...Object.keys(EVENTS)].sort(),
      frozen: true,
      unsubscribe: 'function',
      badCall: { ok: false, error: { code: 'E_SCHEMA', message: expect.any(String) } },
    });
    await firstRun(ada, 'Ada Lovelace');
    await firstRun(grace, 'Grace Hopper');
    expect(await ada.page.getByTestId('connect-screen').textContent()).toContain('Signed in as Ada Lovelace');
    expect(await ada.page.getByTestId('host-port').inputValue()).toBe(String(port));

    const { address, code } = await startHosting(ada);
    expect(address).toBe(`127.0.0.1:${port}`);
    expect(await ada.page.getByTestId('status-text').textContent()).toContain(`Hosting at 127.0.0.1:${port}`);

    await joinRelay(grace, address, code);
    expect(await grace.page.getByTestId('status-text').textContent()).toContain("Connected to Ada Lovelace's Parley");

    // They find each other, online.
    await personRow(ada.page, 'Grace Hopper').getByTestId('person-presence').filter({ hasText: /^online$/ }).waitFor();
    await personRow(grace.page, 'Ada Lovelace').getByTestId('person-presence').filter({ hasText: /^online$/ }).waitFor();
    await openChat(ada, 'Grace Hopper');
    // Grace finds Ada by the filter: Enter opens her, ready to type, and types nothing itself.
    await grace.page.getByTestId('people-filter').fill('ada');
    await grace.page.getByTestId('people-filter').press('Enter');
    await grace.page.getByTestId('peer-name').filter({ hasText: 'Ada Lovelace' }).waitFor();
    await grace.page.getByTestId('history-empty').waitFor();
    await grace.page.waitForFunction(() => document.activeElement?.getAttribute('data-testid') === 'composer');
    expect(await grace.page.getByTestId('composer').inputValue()).toBe('');

    // Grace has the conversation open but is in another window: delivered, not read.
    await setWindowFocus(grace, false);
    await recordStates(ada.page);
    const hello = 'Hello Grace! Did the compiler run overnight?';
    const sent = await send(ada, hello);
    await messageRow(grace.page, hello).waitFor();
    await ada.page.locator('[data-testid="message"][data-state="delivered"]').filter({ has: ada.page.getByText(hello) }).waitFor();
    expect(await sent.getByTestId('message-state').getAttribute('title')).toBe('Delivered');
    await grace.delivered();
    expect(await sent.getAttribute('data-state')).toBe('delivered');

    // She comes back to the window: read.
    await setWindowFocus(grace, true);
    await ada.page.locator('[data-testid="message"][data-state="read"]').filter({ has: ada.page.getByText(hello) }).waitFor();
    expect(await sent.getByTestId('message-state').getAttribute('title')).toBe('Read');
    const states = await recordedStates(ada.page, hello);
    expect(states.slice(-2)).toEqual(['delivered', 'read']);
    expect(['queued', 'sent', 'delivered', 'read'].filter((s) => states.includes(s))).toEqual(states);

    // And the other way, both windows in focus.
    const reply = 'It did, and every test passed. Coffee at ten?';
    await recordStates(grace.page);
    const answer = await send(grace, reply);
    await messageRow(ada.page, reply).waitFor();
    expect(await messageRow(ada.page, reply).getAttribute('class')).toContain('in');
    await grace.page.locator('[data-testid="message"][data-state="read"]').filter({ has: grace.page.getByText(reply) }).waitFor();
    expect(await answer.getByTestId('message-state').getAttribute('title')).toBe('Read');
    const replyStates = await recordedStates(grace.page, reply);
    expect(['queued', 'sent', 'delivered', 'read'].filter((s) => replyStates.includes(s))).toEqual(replyStates);

    // The people list previews the last message on both sides.
    await personRow(ada.page, 'Grace Hopper').getByTestId('person-preview').filter({ hasText: reply }).waitFor();
    await personRow(grace.page, 'Ada Lovelace').getByTestId('person-preview').filter({ hasText: `You: ${reply}` }).waitFor();

    await expectHealthy(ada);
    await expectHealthy(grace);
  });
  it('marks nothing read in a window that opened without focus, until it gets focus', async () => {
    const ada = await session.current.person({ host: true, settings: { hostPort: await freePort() } });
    const grace = await session.current.person({ unfocused: true });
    await firstRun(ada, 'Ada Lovelace');
    await firstRun(grace, 'Grace Hopper');
    const { address, code } = await startHosting(ada);
    await joinRelay(grace, address, code);
    await openChat(ada, 'Grace Hopper');
    await openChat(grace, 'Ada Lovelace');

    const hello = 'Are you there?';
    const sent = await send(ada, hello);
    await messageRow(grace.page, hello).waitFor();
    await ada.page.locator('[data-testid="message"][data-state="delivered"]').filter({ has: ada.page.getByText(hello) }).waitFor();
    await grace.delivered();
    // Time enough for the window to have marked it read, had it thought it was seen.
    await new Promise((r) => setTimeout(r, 500));
    const people = await grace.invoke('people:list', null);
    expect(people.ok && people.value.find((p) => p.name === 'Ada Lovelace')?.unread).toBe(1);
    expect(await sent.getAttribute('data-state')).toBe('delivered');

    await setWindowFocus(grace, true);
    await ada.page.locator('[data-testid="message"][data-state="read"]').filter({ has: ada.page.getByText(hello) }).waitFor();
  });
});
