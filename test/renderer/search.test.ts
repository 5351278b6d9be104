import { describe, expect, it } from 'vitest';
import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { FakeParley, message, person } from './fake-parley.ts';
import { openChat, renderApp } from './render-app.ts';

const grace = person('Grace');
const alan = person('Alan');

function searchable(): FakeParley {
  const fake = new FakeParley();
  fake.people = [grace, alan];
  fake.history.set(grace.id, Array.from({ length: 400 }, (_, i) => message(grace.id, i + 1, { text: i + 1 === 120 ? 'the deploy key is in the vault' : `chat ${i + 1}` })));
  fake.history.set(alan.id, [message(alan.id, 500, { text: 'the spare key is under the flowerpot' })]);
  fake.on('search', ({ query }) => ({
    ok: true,
    value:
      query === 'vault'
        ? [{ message: fake.history.get(grace.id)![119]!, peerName: 'Grace', snippet: 'the deploy key is in the \u0002vault\u0003' }]
        : query === 'flowerpot'
          ? [{ message: fake.history.get(alan.id)!.find((m) => m.text.includes('flowerpot'))!, peerName: 'Alan', snippet: 'the spare key is under the \u0002flowerpot\u0003' }]
          : [],
  }));
  return fake;
}

const highlighted = () => screen.queryAllByTestId('message').filter((row) => row.classList.contains('highlight'));

describe('search', () => {
  it('searches once after typing stops and highlights the hits', async () => {
    const { fake, user } = await renderApp(searchable());
    await user.click(screen.getByTestId('open-search'));
    await user.type(await screen.findByTestId('search-input'), 'vault');
    const result = await screen.findByTestId('search-result');
    // Debounced: one query for the whole word, not one per key.
    expect(fake.callsOf('search')).toEqual([{ query: 'vault' }]);
    expect(within(result).getByText('vault').tagName).toBe('MARK');
    expect(result.textContent).toContain('Grace');
  });

  it('says when nothing matches', async () => {
    const { user } = await renderApp(searchable());
    await user.keyboard('{Control>}f{/Control}');
    await user.type(await screen.findByTestId('search-input'), 'nothing');
    expect(await screen.findByText('No messages match “nothing”.')).toBeTruthy();
  });

  it('opens a result at that message, loading its page with pageFrom', async () => {
    const { fake, user } = await renderApp(searchable());
    await user.keyboard('{Control>}f{/Control}');
    await user.type(await screen.findByTestId('search-input'), 'vault');
    await screen.findByTestId('search-result');
    await user.keyboard('{Enter}');
    expect(screen.queryByTestId('search-dialog')).toBeNull();
    expect(fake.callsOf('pageFrom')).toEqual([{ peer: grace.id, n: 120, limit: 100 }]);
    await waitFor(() => {
      const hit = screen.getAllByTestId('message').find((row) => row.dataset.n === '120');
      expect(hit?.classList.contains('highlight')).toBe(true);
    });
    expect(screen.getByTestId('peer-name').textContent).toBe('Grace');
    // The window no longer ends at the newest message, so there is a way back.
    expect(screen.getByTestId('jump-latest')).toBeTruthy();
  });

  it('Enter right after typing over the query opens a hit of what is typed now, not of the query before', async () => {
    const { fake, user } = await renderApp(searchable());
    await user.keyboard('{Control>}f{/Control}');
    const input = await screen.findByTestId('search-input');
    await user.type(input, 'vault');
    await screen.findByTestId('search-result');
    // Grace's hit is still listed when Enter follows the new word faster than the debounce.
    await user.tripleClick(input);
    await user.keyboard('flowerpot{Enter}');
    await waitFor(() => expect(screen.queryByTestId('search-dialog')).toBeNull());
    await waitFor(() => expect(screen.getByTestId('peer-name').textContent).toBe('Alan'));
    await waitFor(() => expect(highlighted().map((row) => row.dataset.n)).toEqual(['500']));
    expect(fake.callsOf('search')).toEqual([{ query: 'vault' }, { query: 'flowerpot' }]);
  });

  it('shows what arrives or changes while a result is opening', async () => {
    const fake = searchable();
    const history = Array.from({ length: 9 }, (_, i) => message(alan.id, i + 491, { direction: 'out', state: 'delivered', readAt: null }));
    fake.history.set(alan.id, [...history, message(alan.id, 500, { text: 'the spare key is under the flowerpot' })]);
    const { user } = await renderApp(fake);
    await user.keyboard('{Control>}f{/Control}');
    await user.type(await screen.findByTestId('search-input'), 'flowerpot');
    await screen.findByTestId('search-result');
    const release = fake.hold('page');
    await user.keyboard('{Enter}');
    await waitFor(() => expect(fake.callsOf('page')).toHaveLength(1));
    // Main read the pages, then Alan read a message and wrote a new one.
    fake.emit('onMessageUpdated', { ...history[5]!, state: 'read' });
    fake.emit('onMessageAdded', message(alan.id, 501, { text: 'found it?', readAt: null }));
    release();
    await waitFor(() => expect(highlighted().map((row) => row.dataset.n)).toEqual(['500']));
    const row = (n: number) => screen.getAllByTestId('message').find((el) => el.dataset.n === String(n));
    await waitFor(() => expect(row(501)?.textContent).toContain('found it?'));
    expect(row(496)?.dataset.state).toBe('read');
  });

  it('shows what arrives or changes while the way back to the newest messages loads', async () => {
    const fake = searchable();
    const history = fake.history.get(grace.id)!;
    history[389] = { ...history[389]!, direction: 'out', state: 'delivered' };
    const { user } = await renderApp(fake);
    await user.keyboard('{Control>}f{/Control}');
    await user.type(await screen.findByTestId('search-input'), 'vault');
    await screen.findByTestId('search-result');
    await user.keyboard('{Enter}');
    await waitFor(() => expect(highlighted()).toHaveLength(1));
    const release = fake.hold('page');
    await user.click(screen.getByTestId('jump-latest'));
    await waitFor(() => expect(fake.callsOf('page')).toHaveLength(2));
    // Both outside what the conversation shows (around the result) while the newest page is on its way.
    fake.emit('onMessageUpdated', { ...history[389]!, state: 'read' });
    fake.emit('onMessageAdded', message(grace.id, 401, { text: 'still there?', readAt: null }));
    release();
    const row = (n: number) => screen.queryAllByTestId('message').find((el) => el.dataset.n === String(n));
    await waitFor(() => expect(row(401)?.textContent).toContain('still there?'));
    expect(row(390)?.dataset.state).toBe('read');
  });

  it('shows what arrives or changes while more of the conversation loads around a result', async () => {
    const fake = searchable();
    const history = fake.history.get(grace.id)!.slice(0, 250).map((m) => ({ ...m, direction: 'out' as const, state: 'delivered' as const }));
    fake.history.set(grace.id, history);
    const { app, user } = await renderApp(fake);
    await user.keyboard('{Control>}f{/Control}');
    await user.type(await screen.findByTestId('search-input'), 'vault');
    await screen.findByTestId('search-result');
    await user.keyboard('{Enter}');
    await waitFor(() => expect(highlighted()).toHaveLength(1));
    const conversation = app.chats.current!;
    const row = (n: number) => screen.queryAllByTestId('message').find((el) => el.dataset.n === String(n));
    // Scrolling down to the end: the last page is read, then Grace reads one of it and writes.
    let release = fake.hold('pageFrom');
    const newer = conversation.loadNewer();
    fake.emit('onMessageUpdated', { ...history[239]!, state: 'read' });
    fake.emit('onMessageAdded', message(grace.id, 251, { text: 'still there?', readAt: null }));
    release();
    await newer;
    conversation.view.follow();
    await waitFor(() => expect(row(251)?.textContent).toContain('still there?'));
    expect(row(240)?.dataset.state).toBe('read');
    // Scrolling up: the page above is read, then Grace reads one of it.
    release = fake.hold('page');
    const older = conversation.loadOlder();
    fake.emit('onMessageUpdated', { ...history[59]!, state: 'read' });
    release();
    await older;
    conversation.view.reveal(60);
    await waitFor(() => expect(row(60)?.dataset.state).toBe('read'));
  });

  it('flashes the result once: not again when its row is shown anew or the conversation reopened', async () => {
    const setup = await renderApp(searchable());
    const { user } = setup;
    const open = async () => {
      await user.keyboard('{Control>}f{/Control}');
      await user.type(await screen.findByTestId('search-input'), '{Control>}a{/Control}vault');
      await screen.findByTestId('search-result');
      await user.keyboard('{Enter}');
      await waitFor(() => expect(highlighted().map((row) => row.dataset.n)).toEqual(['120']));
    };
    await open();
    fireEvent.animationEnd(highlighted()[0]!.querySelector('.bubble')!, { animationName: 'flash' });
    await waitFor(() => expect(highlighted()).toEqual([]));
    // Leaving before it has played: coming back shows the conversation without it.
    await open();
    await openChat(setup, 'Alan');
    await openChat(setup, 'Grace');
    await waitFor(() => expect(screen.queryAllByTestId('message').length).toBeGreaterThan(0));
    expect(highlighted()).toEqual([]);
  });
});
