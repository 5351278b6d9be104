import { describe, expect, it } from 'vitest';
import { screen, waitFor, within } from '@testing-library/svelte';
import { tick } from 'svelte';
import { FakeParley, message, person } from './fake-parley.ts';
import { openChat, renderApp, renderStarting } from './render-app.ts';
import { DRAFT_SAVE_MS } from '../../renderer/src/state/conversation.svelte.ts';

const grace = person('Grace', { online: true });
const alan = person('Alan');

function withPeople(): FakeParley {
  const fake = new FakeParley();
  fake.people = [grace, alan];
  fake.history.set(grace.id, [message(grace.id, 1, { text: 'hello Dana' }), message(grace.id, 2, { direction: 'out', state: 'read', text: 'hi Grace' })]);
  return fake;
}

const rows = () => screen.queryAllByTestId('message');
const rowWith = (text: string) => rows().find((row) => row.textContent.includes(text));
const composer = () => screen.getByTestId('composer') as HTMLTextAreaElement;
/** The preview line of a person's row in the list. */
const previewOf = (name: string) => screen.getAllByTestId('person').find((row) => row.querySelector('[data-testid="person-name"]')?.textContent === name)?.querySelector('[data-testid="person-preview"]')?.textContent;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The window over `fake` with Grace's conversation open and `draft` back in its composer (kept for her by main). */
async function openWithDraft(fake: FakeParley, draft: string) {
  fake.people = [{ ...grace, draft }, alan];
  const setup = await renderApp(fake);
  await openChat(setup, 'Grace');
  expect(composer().value).toBe(draft);
  return setup;
}

describe('a conversation', () => {
  it('shows the history with each own message’s state', async () => {
    const setup = await renderApp(withPeople());
    await openChat(setup, 'Grace');
    await waitFor(() => expect(rows()).toHaveLength(2));
    expect(rowWith('hello Dana')?.dataset.state).toBe('received');
    expect(rowWith('hi Grace')?.dataset.state).toBe('read');
    expect(within(rowWith('hi Grace')!).getByLabelText('Read')).toBeTruthy();
    expect(screen.getByTestId('peer-name').textContent).toBe('Grace');
    expect(screen.getByTestId('peer-fingerprint').textContent).toBe('abcd 1234');
  });

  it('sends with Enter: the message shows as queued and follows its state updates', async () => {
    const setup = await renderApp(withPeople());
    const { fake, user } = setup;
    await openChat(setup, 'Grace');
    await user.type(screen.getByTestId('composer'), 'See you at 3{Enter}');
    expect(fake.callsOf('send')).toEqual([{ peer: grace.id, text: 'See you at 3' }]);
    const sent = await waitFor(() => {
      const row = rowWith('See you at 3');
      expect(row).toBeTruthy();
      return row!;
    });
    expect(sent.dataset.state).toBe('queued');
    expect((screen.getByTestId('composer') as HTMLTextAreaElement).value).toBe('');
    const n = Number(sent.dataset.n);
    const base = message(grace.id, n, { direction: 'out', text: 'See you at 3', readAt: null });
    for (const state of ['sent', 'delivered', 'read'] as const) {
      fake.emit('onMessageUpdated', { ...base, state });
      await waitFor(() => expect(rowWith('See you at 3')?.dataset.state).toBe(state));
    }
    expect(rows().filter((row) => row.textContent.includes('See you at 3'))).toHaveLength(1);
  });

  it('puts a refused message back in the composer, before what was typed while it was being sent', async () => {
    const setup = await renderApp(withPeople());
    const { fake, user } = setup;
    let answer!: () => void;
    fake.on('send', () => new Promise((resolve) => {
      answer = () => resolve({ ok: false, error: { code: 'E_STORAGE', message: 'disk full' } });
    }));
    await openChat(setup, 'Grace');
    const composer = screen.getByTestId('composer') as HTMLTextAreaElement;
    await user.type(composer, 'first thought{Enter}');
    await waitFor(() => expect(fake.callsOf('send')).toHaveLength(1));
    expect(composer.value).toBe('');
    await user.type(composer, 'second thought');
    answer();
    await waitFor(() => expect(screen.getByTestId('send-error')).toBeTruthy());
    expect(composer.value).toBe('first thought\nsecond thought');
  });

  it('keeps all of a paste that is too long, says how much is over, and sends once it fits', async () => {
    const setup = await renderApp(withPeople());
    const { fake, user } = setup;
    await openChat(setup, 'Grace');
    const composer = screen.getByTestId('composer') as HTMLTextAreaElement;
    const send = screen.getByTestId('send') as HTMLButtonElement;
    await user.click(composer);
    await user.paste('a'.repeat(15_500));
    expect(screen.getByTestId('composer-count').textContent).toContain('884 characters left');
    await user.paste('b'.repeat(894));
    expect(composer.value).toBe(`${'a'.repeat(15_500)}${'b'.repeat(894)}`);
    expect(screen.getByTestId('composer-count').textContent).toContain('10 characters too many');
    expect(composer.getAttribute('aria-invalid')).toBe('true');
    expect(send.disabled).toBe(true);
    await user.keyboard('{Enter}');
    expect(screen.getByTestId('send-error').textContent).toContain('10 characters over the limit of 16,384');
    expect(fake.callsOf('send')).toEqual([]);
    expect(composer.value).toHaveLength(16_394);

    await user.keyboard('{Backspace>10/}');
    expect(screen.getByTestId('composer-count').textContent).toContain('0 characters left');
    expect(screen.queryByTestId('send-error')).toBeNull();
    expect(send.disabled).toBe(false);
    await user.keyboard('{Enter}');
    expect(fake.callsOf('send')).toEqual([{ peer: grace.id, text: `${'a'.repeat(15_500)}${'b'.repeat(884)}` }]);
    await waitFor(() => expect(screen.queryByTestId('composer-count')).toBeNull());
  });

  it('counts the room a long text in another script really has: encrypted, its letters take more bytes', async () => {
    const setup = await renderApp(withPeople());
    const { fake, user } = setup;
    await openChat(setup, 'Grace');
    const send = screen.getByTestId('send') as HTMLButtonElement;
    await user.click(screen.getByTestId('composer'));
    // 15,500 Cyrillic letters: under the 16,384 characters, but about 3,300 over once sealed.
    await user.paste('ж'.repeat(15_500));
    expect(screen.getByTestId('composer-count').textContent).toMatch(/^\s*3,29\d characters too many to send as one message/);
    expect(send.disabled).toBe(true);
    await user.keyboard('{Enter}');
    expect(screen.getByTestId('send-error').textContent).toContain('letters outside the Latin alphabet and emoji take more room');
    expect(fake.callsOf('send')).toEqual([]);
  });

  it('Shift+Enter starts a new line instead of sending', async () => {
    const setup = await renderApp(withPeople());
    await openChat(setup, 'Grace');
    const composer = screen.getByTestId('composer') as HTMLTextAreaElement;
    await setup.user.type(composer, 'one{Shift>}{Enter}{/Shift}two');
    expect(composer.value).toBe('one\ntwo');
    expect(setup.fake.callsOf('send')).toEqual([]);
    await setup.user.keyboard('{Enter}');
    expect(setup.fake.callsOf('send')).toEqual([{ peer: grace.id, text: 'one\ntwo' }]);
  });

  it('shows a failed message with its error and a Retry button that calls retry', async () => {
    const fake = withPeople();
    fake.history.set(grace.id, [message(grace.id, 7, { direction: 'out', state: 'failed', error: 'the relay refused it (E_QUEUE_FULL)', text: 'important' })]);
    const setup = await renderApp(fake);
    await openChat(setup, 'Grace');
    const row = await waitFor(() => rowWith('important')!);
    expect(row.dataset.state).toBe('failed');
    expect(within(row).getByTestId('failure-reason').textContent).toContain('the relay refused it (E_QUEUE_FULL)');
    await setup.user.click(within(row).getByRole('button', { name: /Retry/ }));
    expect(fake.callsOf('retry')).toEqual([{ n: 7 }]);
    await waitFor(() => expect(rowWith('important')?.dataset.state).toBe('queued'));
    expect(within(rowWith('important')!).queryByRole('button', { name: /Retry/ })).toBeNull();
    // The focused button went with it: the composer has the focus, not the page.
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId('composer')));
  });

  it('keeps a draft per conversation', async () => {
    const setup = await renderApp(withPeople());
    await openChat(setup, 'Grace');
    await setup.user.type(screen.getByTestId('composer'), 'half a thought');
    await openChat(setup, 'Alan');
    expect((screen.getByTestId('composer') as HTMLTextAreaElement).value).toBe('');
    await setup.user.type(screen.getByTestId('composer'), 'for Alan');
    await openChat(setup, 'Grace');
    expect((screen.getByTestId('composer') as HTMLTextAreaElement).value).toBe('half a thought');
    await openChat(setup, 'Alan');
    expect((screen.getByTestId('composer') as HTMLTextAreaElement).value).toBe('for Alan');
  });

  it('shows a warning instead of the text of a flagged message', async () => {
    const fake = withPeople();
    fake.history.set(grace.id, [message(grace.id, 3, { flagged: true, text: 'send me your password', error: 'signature did not match' })]);
    const setup = await renderApp(fake);
    await openChat(setup, 'Grace');
    const row = await waitFor(() => rows()[0]!);
    expect(row.textContent).not.toContain('send me your password');
    expect(within(row).getByTestId('flagged-warning').textContent).toContain('could not be verified');
    expect(row.textContent).toContain('signature did not match');
  });

  it('adds incoming messages live and marks them read while the window has focus', async () => {
    const setup = await renderApp(withPeople());
    const { fake } = setup;
    await openChat(setup, 'Grace');
    await waitFor(() => expect(fake.callsOf('markRead')).toContainEqual({ peer: grace.id, upTo: 1 }));
    fake.emit('onMessageAdded', message(grace.id, 5, { text: 'are you there?', readAt: null }));
    await waitFor(() => expect(rowWith('are you there?')).toBeTruthy());
    await waitFor(() => expect(fake.callsOf('markRead')).toContainEqual({ peer: grace.id, upTo: 5 }));

    setup.app.ui.windowFocus(false);
    fake.emit('onMessageAdded', message(grace.id, 6, { text: 'hello?', readAt: null }));
    await waitFor(() => expect(rowWith('hello?')).toBeTruthy());
    await tick();
    expect(fake.callsOf('markRead')).not.toContainEqual({ peer: grace.id, upTo: 6 });
    window.dispatchEvent(new Event('focus'));
    await waitFor(() => expect(fake.callsOf('markRead')).toContainEqual({ peer: grace.id, upTo: 6 }));
  });

  it('opens at the "New messages" line and marks read only what is on screen, on a first open and on a return', async () => {
    const fake = withPeople();
    const from = (first: number, last: number, unread: boolean) =>
      Array.from({ length: last - first + 1 }, (_, i) => message(grace.id, first + i, { text: `line ${first + i}`, ...(unread ? { readAt: null } : {}) }));
    fake.history.set(grace.id, [...from(1, 10, false), ...from(11, 70, true)]);
    const setup = await renderApp(fake);
    const newestMarked = () => Math.max(0, ...(fake.callsOf('markRead') as { upTo: number }[]).map((m) => m.upTo));
    const dividerBefore = async (n: number) => {
      const divider = await screen.findByTestId('unread-mark');
      expect((divider.nextElementSibling as HTMLElement | null)?.dataset.n).toBe(String(n));
    };
    await openChat(setup, 'Grace');
    await dividerBefore(11);
    await waitFor(() => expect(newestMarked()).toBeGreaterThanOrEqual(11));
    expect(newestMarked()).toBeLessThan(70);

    // Read to the end, then away to Alan while 30 more arrive: back at Grace, the same.
    setup.app.chats.current?.view.follow();
    await waitFor(() => expect(newestMarked()).toBe(70));
    await openChat(setup, 'Alan');
    for (const m of from(71, 100, true)) fake.emit('onMessageAdded', m);
    await tick();
    await openChat(setup, 'Grace');
    await dividerBefore(71);
    await tick();
    expect(newestMarked()).toBeLessThan(100);
  });

  it('opens at the first of more unread messages than a page holds, and marks read none that were never on screen', async () => {
    const fake = withPeople();
    const lines = (first: number, count: number, unread: boolean) =>
      Array.from({ length: count }, (_, i) => message(grace.id, first + i, { text: `line ${first + i}`, ...(unread ? { readAt: null } : {}) }));
    fake.history.set(grace.id, [...lines(1, 20, false), ...lines(21, 150, true)]);
    const setup = await renderApp(fake);
    await openChat(setup, 'Grace');
    const divider = await screen.findByTestId('unread-mark');
    expect((divider.nextElementSibling as HTMLElement | null)?.dataset.n).toBe('21');
    await waitFor(() => expect(fake.callsOf('markRead').length).toBeGreaterThan(0));
    // What fits on screen below the line, far short of the newest (170).
    expect(Math.max(...(fake.callsOf('markRead') as { upTo: number }[]).map((m) => m.upTo))).toBeLessThan(60);
    // The newest messages follow as the list is scrolled down: the window starts at the line, not at the latest page.
    expect(setup.app.chats.current?.atLatest).toBe(false);
  });

  it('shows the peer typing and tells the peer while composing', async () => {
    const setup = await renderApp(withPeople());
    const { fake, user } = setup;
    await openChat(setup, 'Grace');
    fake.emit('onTyping', { peer: grace.id, typing: true });
    await waitFor(() => expect(screen.getByTestId('typing-indicator').textContent).toContain('Grace is typing'));
    expect(within(screen.getByTestId('people-list')).getByText('typing…')).toBeTruthy();
    fake.emit('onTyping', { peer: grace.id, typing: false });
    await waitFor(() => expect(screen.getByTestId('typing-indicator').textContent?.trim()).toBe(''));

    await user.type(screen.getByTestId('composer'), 'abcdef');
    // Throttled: one "typing" for a burst of keys, not one per key.
    expect(fake.callsOf('setTyping')).toEqual([{ peer: grace.id, typing: true }]);
    await user.keyboard('{Enter}');
    expect(fake.callsOf('setTyping')).toEqual([{ peer: grace.id, typing: true }, { peer: grace.id, typing: false }]);
  });

  it('turns web links into buttons that ask main to open them, never navigating', async () => {
    const fake = withPeople();
    fake.history.set(grace.id, [message(grace.id, 1, { text: 'docs at https://example.com/a?b=1. and javascript:alert(1)' })]);
    const setup = await renderApp(fake);
    await openChat(setup, 'Grace');
    const link = await screen.findByRole('button', { name: 'https://example.com/a?b=1' });
    expect(document.querySelectorAll('a[href]')).toHaveLength(0);
    await setup.user.click(link);
    expect(fake.callsOf('openLink')).toEqual([{ url: 'https://example.com/a?b=1' }]);
    expect(screen.queryByRole('button', { name: /javascript/ })).toBeNull();
  });
});

describe('a draft', () => {
  it('is kept a moment after typing stops and at once on switching away, shown as a draft in the list, and back in the composer after a restart', async () => {
    const fake = withPeople();
    fake.people = [grace, { ...alan, draft: 'Remember the slides' }];
    const setup = await renderApp(fake);
    expect(previewOf('Alan')).toBe('Draft: Remember the slides');
    await openChat(setup, 'Grace');
    await setup.user.type(composer(), 'Lunch at');
    expect(fake.callsOf('saveDraft')).toEqual([]);
    await waitFor(() => expect(fake.callsOf('saveDraft')).toEqual([{ peer: grace.id, text: 'Lunch at' }]));
    // Typed, then straight to another conversation: kept then, not half a second later.
    await setup.user.type(composer(), ' noon?');
    await openChat(setup, 'Alan');
    expect(fake.callsOf('saveDraft')).toEqual([{ peer: grace.id, text: 'Lunch at' }, { peer: grace.id, text: 'Lunch at noon?' }]);
    await waitFor(() => expect(previewOf('Grace')).toBe('Draft: Lunch at noon?'));
    expect(composer().value).toBe('Remember the slides');
    expect(previewOf('Alan')).toBe('No messages yet'); // open: the draft is in the composer
    await pause(DRAFT_SAVE_MS + 100);
    expect(fake.callsOf('saveDraft')).toHaveLength(2); // opening Alan's changed nothing to keep

    setup.unmount();
    const again = await renderApp(fake);
    expect(previewOf('Grace')).toBe('Draft: Lunch at noon?');
    await openChat(again, 'Grace');
    expect(composer().value).toBe('Lunch at noon?');
  });

  it('ends when it is sent: no save still waiting brings it back', async () => {
    const fake = withPeople();
    const setup = await openWithDraft(fake, 'See you');
    await setup.user.type(composer(), ' at 3{Enter}');
    expect(fake.callsOf('send')).toEqual([{ peer: grace.id, text: 'See you at 3' }]);
    await pause(DRAFT_SAVE_MS + 100);
    expect(fake.callsOf('saveDraft')).toEqual([]);
    await openChat(setup, 'Alan');
    expect(fake.callsOf('saveDraft')).toEqual([]);
    expect(previewOf('Grace')).not.toContain('Draft');
  });

  it('is kept when the message is refused, and removed when only spaces are left', async () => {
    const fake = withPeople();
    fake.on('send', () => ({ ok: false, error: { code: 'E_STORAGE', message: 'disk full' } }));
    const setup = await renderApp(fake);
    await openChat(setup, 'Grace');
    await setup.user.type(composer(), 'Important{Enter}');
    await waitFor(() => expect(screen.getByTestId('send-error')).toBeTruthy());
    expect(fake.callsOf('saveDraft')).toEqual([{ peer: grace.id, text: 'Important' }]);
    await setup.user.clear(composer());
    await setup.user.type(composer(), '   ');
    await openChat(setup, 'Alan');
    expect(fake.callsOf('saveDraft')).toEqual([{ peer: grace.id, text: 'Important' }, { peer: grace.id, text: '' }]);
  });

  it('is kept at once when the window goes away', async () => {
    const fake = withPeople();
    const setup = await renderApp(fake);
    await openChat(setup, 'Grace');
    await setup.user.type(composer(), 'last words');
    dispatchEvent(new PageTransitionEvent('pagehide'));
    expect(fake.callsOf('saveDraft')).toEqual([{ peer: grace.id, text: 'last words' }]);
  });
});

/** Grace with 300 messages, one of them found by searching for "vault". */
function withSearch(): FakeParley {
  const fake = new FakeParley();
  fake.people = [grace, alan];
  const history = Array.from({ length: 300 }, (_, i) => message(grace.id, i + 1, { text: i + 1 === 50 ? 'the deploy key is in the vault' : `chat ${i + 1}` }));
  fake.history.set(grace.id, history);
  const hit = history[49];
  fake.on('search', ({ query }) => ({
    ok: true,
    value: query === 'vault' && hit ? [{ message: hit, peerName: 'Grace', snippet: 'the deploy key is in the \u0002vault\u0003' }] : [],
  }));
  return fake;
}


/** Main announces a person some 50-250 ms after the change (main/core/announcer.ts), not in the send's answer. */
function announceLater(fake: FakeParley): () => void {
  const pending: (() => void)[] = [];
  fake.on('send', ({ peer, text }) => {
    const sent = message(peer, 9_000 + pending.length, { id: `s${pending.length}`, direction: 'out', text, state: 'queued', readAt: null });
    fake.emit('onMessageAdded', sent);
    const i = fake.people.findIndex((p) => p.id === peer);
    const known = fake.people[i];
    if (!known) throw new Error('unknown peer');
    const after = (fake.people[i] = { ...known, draft: null });
    pending.push(() => fake.emit('onPerson', after));
    return { ok: true, value: sent };
  });
  return () => pending.splice(0).forEach((f) => f());
}

describe('a draft, in harder cases', () => {
  it('is shown when its conversation, made by a typing notice before the list came, is opened from a search result', async () => {
    const fake = withSearch();
    fake.people = [{ ...grace, draft: 'Remember the slides' }, alan];
    const release = fake.hold('people');
    const setup = renderStarting(fake);
    await pause(0);
    // Grace starts typing while the list is on its way: her conversation is made now.
    fake.emit('onTyping', { peer: grace.id, typing: true });
    release();
    await setup.started;
    await tick();
    fake.emit('onTyping', { peer: grace.id, typing: false });
    await tick();
    expect(previewOf('Grace')).toBe('Draft: Remember the slides');
    await setup.user.keyboard('{Control>}f{/Control}');
    await setup.user.type(await screen.findByTestId('search-input'), 'vault');
    await screen.findByTestId('search-result');
    await setup.user.keyboard('{Enter}');
    await waitFor(() => expect(screen.getByTestId('peer-name').textContent).toBe('Grace'));
    // The row hides the draft (open), so the composer is the only place it can be.
    expect(composer().value).toBe('Remember the slides');
  });

  it('sent as it was (Enter alone) does not come back on reopening before main’s update of the row', async () => {
    const fake = withSearch();
    const announce = announceLater(fake);
    const setup = await openWithDraft(fake, 'See you at 3');
    await setup.user.keyboard('{Enter}');
    expect(fake.callsOf('send')).toEqual([{ peer: grace.id, text: 'See you at 3' }]);
    expect(composer().value).toBe('');
    // Quickly to Alan and back (Alt+Down, Alt+Up), within main's 50-250 ms.
    await openChat(setup, 'Alan');
    await openChat(setup, 'Grace');
    announce();
    await tick();
    await pause(DRAFT_SAVE_MS + 100);
    // The message was sent: nothing of it belongs in the composer any more.
    expect(composer().value).toBe('');
  });

  it('typed while the newest page loads for a send (after a search jump) is kept: the message goes to main first', async () => {
    const fake = withSearch();
    const setup = await renderApp(fake);
    await setup.user.keyboard('{Control>}f{/Control}');
    await setup.user.type(await screen.findByTestId('search-input'), 'vault');
    await screen.findByTestId('search-result');
    await setup.user.keyboard('{Enter}');
    await waitFor(() => expect(screen.getByTestId('jump-latest')).toBeTruthy());
    await setup.user.click(composer());
    const release = fake.hold('page');
    await setup.user.type(composer(), 'Found it{Enter}');
    // The newest page is on its way (slow disk): the person goes on writing, and moves on.
    await setup.user.type(composer(), 'and another thing');
    await pause(DRAFT_SAVE_MS + 100);
    release();
    await waitFor(() => expect(fake.callsOf('send')).toEqual([{ peer: grace.id, text: 'Found it' }]));
    const order = fake.calls.filter((c) => c.method === 'send' || c.method === 'saveDraft').map((c) => c.method);
    expect(order).toEqual(['send', 'saveDraft']); // main stores the message (removing the draft it sends) before the next draft
    await openChat(setup, 'Alan');
    expect(fake.people.find((p) => p.id === grace.id)?.draft).toBe('and another thing');
  });

  it('over 65,536 characters is kept from its beginning, never leaving an older draft in its place', async () => {
    const fake = withSearch();
    const setup = await openWithDraft(fake, 'Old note, since thrown away');
    composer().select();
    await setup.user.paste('x'.repeat(70_000));
    expect(composer().value).toHaveLength(70_000);
    await openChat(setup, 'Alan');
    await pause(DRAFT_SAVE_MS + 100);
    expect(previewOf('Grace')).not.toContain('Old note');
    setup.unmount();
    const again = await renderApp(fake);
    await openChat(again, 'Grace');
    expect(composer().value).toBe('x'.repeat(65_536));
  });

  it('is never changed by a person event while it is being typed, even one with an older draft', async () => {
    const fake = withSearch();
    fake.people = [{ ...grace, draft: 'first' }, alan];
    const setup = await renderApp(fake);
    await openChat(setup, 'Grace');
    await setup.user.type(composer(), ' second');
    fake.emit('onPerson', { ...grace, draft: 'first', online: false });
    fake.emit('onPerson', { ...grace, draft: null });
    await tick();
    await setup.user.type(composer(), ' third');
    expect(composer().value).toBe('first second third');
    await openChat(setup, 'Alan');
    await openChat(setup, 'Grace');
    expect(composer().value).toBe('first second third');
  });
});

describe('deleting a message', () => {
  /** Opens the deletion of the message showing `text`, as a click on its row's button does. */
  async function askToDelete(setup: Awaited<ReturnType<typeof renderApp>>, text: string) {
    const row = await waitFor(() => rowWith(text)!);
    await setup.user.click(within(row).getByRole('button', { name: 'Delete message' }));
    return screen.findByTestId('delete-dialog');
  }

  it('asks first, says that the other person keeps their copy, and then takes it out of the conversation', async () => {
    const setup = await renderApp(withPeople());
    await openChat(setup, 'Grace');
    let dialog = await askToDelete(setup, 'hello Dana');
    expect(dialog.textContent).toContain('Grace keeps the message they sent');
    await setup.user.click(within(dialog).getByRole('button', { name: 'Cancel' }));
    expect(screen.queryByTestId('delete-dialog')).toBeNull();
    expect(setup.fake.callsOf('deleteMessage')).toEqual([]);
    expect(rows()).toHaveLength(2);

    dialog = await askToDelete(setup, 'hi Grace');
    expect(dialog.textContent).toContain('Grace keeps the copy you sent them');
    await setup.user.click(within(dialog).getByRole('button', { name: 'Delete' }));
    expect(setup.fake.callsOf('deleteMessage')).toEqual([{ n: 2 }]);
    await waitFor(() => expect(rows().map((row) => row.textContent)).toEqual([expect.stringContaining('hello Dana')]));
    await waitFor(() => expect(document.activeElement).toBe(composer()));
  });

  it('says a queued message will not be sent, and offers Delete beside Retry on a failed one', async () => {
    const fake = withPeople();
    fake.history.set(grace.id, [
      message(grace.id, 7, { direction: 'out', state: 'failed', error: 'the relay refused it', text: 'not taken' }),
      message(grace.id, 8, { direction: 'out', state: 'queued', readAt: null, text: 'waiting to go' }),
    ]);
    const setup = await renderApp(fake);
    await openChat(setup, 'Grace');
    const dialog = await askToDelete(setup, 'waiting to go');
    expect(dialog.textContent).toContain('It has not been sent yet, so it will not be.');
    await setup.user.keyboard('{Escape}');
    await setup.user.click(within(rowWith('not taken')!).getByTestId('delete-failed'));
    expect((await screen.findByTestId('delete-dialog')).textContent).toContain('It was not sent.');
    await setup.user.click(screen.getByTestId('confirm-delete'));
    await waitFor(() => expect(rows().map((row) => row.dataset.n)).toEqual(['8']));
    expect(screen.queryByTestId('send-error')).toBeNull();
  });

  it('tells the person when a queued message may have reached the relay', async () => {
    const fake = withPeople();
    fake.history.set(grace.id, [message(grace.id, 8, { direction: 'out', state: 'queued', readAt: null, text: 'on its way' })]);
    fake.on('deleteMessage', ({ n }) => {
      fake.emit('onMessageRemoved', { peer: grace.id, n });
      return { ok: true, value: { state: 'queued', withdrawn: false } };
    });
    const setup = await renderApp(fake);
    await openChat(setup, 'Grace');
    await askToDelete(setup, 'on its way');
    await setup.user.click(screen.getByTestId('confirm-delete'));
    expect((await screen.findByTestId('send-error')).textContent).toContain('may have reached the relay before you deleted it');
    expect(rows()).toHaveLength(0);
  });

  it('stays deleted when it is removed while an older page holding it is on its way', async () => {
    const must = <T,>(result: { ok: true; value: T } | { ok: false }) => (result.ok ? result.value : expect.unreachable('deleteMessage failed'));
    const fake = withPeople();
    fake.history.set(grace.id, Array.from({ length: 150 }, (_, i) => message(grace.id, i + 1)));
    const setup = await renderApp(fake);
    const conversation = setup.app.chats.get(grace.id);
    await conversation.loadLatest();
    expect(conversation.messages[0]?.n).toBe(51);
    const release = fake.hold('page');
    const older = conversation.loadOlder(); // main reads the page (with message 20) now, and answers later
    must(await fake.api.deleteMessage({ n: 20 }));
    release();
    await older;
    expect(conversation.messages).toHaveLength(149);
    expect(conversation.messages.some((m) => m.n === 20)).toBe(false);
  });

  it('clears a whole conversation from its header, after asking, keeping what is being written', async () => {
    const setup = await renderApp(withPeople());
    await openChat(setup, 'Grace');
    await waitFor(() => expect(rows()).toHaveLength(2));
    await setup.user.type(composer(), 'one more thing');
    await setup.user.click(screen.getByRole('button', { name: 'Delete conversation' }));
    const dialog = await screen.findByTestId('delete-dialog');
    expect(within(dialog).getByRole('heading').textContent).toBe('Delete your conversation with Grace?');
    expect(dialog.textContent).toContain('Grace keeps theirs. Messages still waiting in your outbox are not sent.');
    await setup.user.click(within(dialog).getByRole('button', { name: 'Delete' }));
    expect(setup.fake.callsOf('clearConversation')).toEqual([{ peer: grace.id }]);
    await screen.findByTestId('history-empty');
    expect(rows()).toHaveLength(0);
    expect(composer().value).toBe('one more thing');
  });

  it('stays cleared when it is cleared while an older page is on its way, keeping what came after', async () => {
    const fake = withPeople();
    fake.history.set(grace.id, Array.from({ length: 150 }, (_, i) => message(grace.id, i + 1)));
    const setup = await renderApp(fake);
    const conversation = setup.app.chats.get(grace.id);
    await conversation.loadLatest();
    const release = fake.hold('page');
    const older = conversation.loadOlder();
    conversation.cleared(150);
    conversation.added(message(grace.id, 151, { text: 'after the clear' }));
    release();
    await older;
    expect(conversation.messages.map((m) => m.n)).toEqual([151]);
    expect(conversation.reachedStart).toBe(true);
  });

  it('moves the "new messages" line to the next new message when the first is deleted', async () => {
    const fake = new FakeParley();
    fake.people = [{ ...grace, unread: 3 }];
    fake.history.set(grace.id, Array.from({ length: 6 }, (_, i) => message(grace.id, i + 1, { readAt: i < 3 ? 1 : null })));
    const setup = await renderApp(fake);
    await openChat(setup, 'Grace');
    const conversation = setup.app.chats.get(grace.id);
    await waitFor(() => expect(conversation.firstUnread).toBe(4));
    await waitFor(() => expect(fake.callsOf('markRead').length).toBeGreaterThan(0));
    await conversation.remove(4);
    expect(conversation.messages.map((m) => m.n)).toEqual([1, 2, 3, 5, 6]);
    expect(conversation.firstUnread).toBe(5);
  });

  it('takes a deleted message out of the search results kept for the next search', async () => {
    const fake = withPeople();
    fake.on('search', ({ query }) => ({
      ok: true,
      value: [...fake.history.values()].flat().filter((m) => m.text.includes(query)).map((m) => ({ message: m, peerName: 'Grace', snippet: m.text })),
    }));
    const setup = await renderApp(fake);
    await setup.user.keyboard('{Control>}f{/Control}');
    await setup.user.type(await screen.findByTestId('search-input'), 'Dana');
    await screen.findByTestId('search-result');
    await setup.user.keyboard('{Escape}');
    await setup.app.chats.get(grace.id).remove(1);
    await setup.user.keyboard('{Control>}f{/Control}');
    const dialog = await screen.findByTestId('search-dialog');
    expect(within(dialog).queryAllByTestId('search-result')).toEqual([]);
  });
});

