import { describe, expect, it } from 'vitest';
import { screen, waitFor } from '@testing-library/svelte';
import { flushSync } from 'svelte';
import type { Message } from '../../preload/contract.ts';
import { ListView, MIN_OVERSCAN_PX, OVERSCAN_PX } from '../../renderer/src/state/list-view.svelte.ts';
import { FakeParley, message, person } from './fake-parley.ts';
import { openChat, renderApp } from './render-app.ts';

const peer = person('Grace').id;
const many = (from: number, count: number): Message[] => Array.from({ length: count }, (_, i) => message(peer, from + i));

/** A ListView over a plain list, as a conversation would give it. */
function viewOf(initial: Message[]) {
  const box = $state({ messages: initial });
  const view = new ListView(() => box.messages);
  return { view, box };
}

/** Grace's conversation of 100,000 messages, loaded and opened. */
async function openLongConversation(reachedStart: boolean) {
  const fake = new FakeParley();
  fake.people = [person('Grace')];
  fake.history.set(peer, many(1, 100_000));
  const setup = await renderApp(fake);
  const conversation = setup.app.chats.get(peer);
  conversation.messages = fake.history.get(peer)!;
  conversation.load = 'ready';
  if (reachedStart) conversation.reachedStart = true;
  await openChat(setup, 'Grace');
  return { fake, setup };
}

describe('the virtualized history', () => {
  it('renders only the rows near the viewport, even with 100,000 messages', async () => {
    const { fake } = await openLongConversation(true);
    await waitFor(() => expect(screen.getAllByTestId('message').length).toBeGreaterThan(5));
    const rendered = screen.getAllByTestId('message');
    expect(rendered.length).toBeLessThan(80);
    expect(rendered.at(-1)?.dataset.n).toBe('100000');
    expect(fake.callsOf('page')).toEqual([]);
  });

  it('asks for the older page while three screens of history are still above, so a fast scroll does not stop at the edge', async () => {
    const fake = new FakeParley();
    fake.people = [person('Grace')];
    fake.history.set(peer, many(1, 1_000));
    const setup = await renderApp(fake);
    const conversation = setup.app.chats.get(peer);
    conversation.messages = fake.history.get(peer)!.slice(-100);
    conversation.load = 'ready';
    await openChat(setup, 'Grace');
    conversation.view.viewport = 600; // what the window's size observer reports
    const list = screen.getByTestId('message-list');
    list.scrollTop = 2_000; // three screens from the top is 1,800 px: not yet
    list.dispatchEvent(new Event('scroll'));
    expect(fake.callsOf('page')).toEqual([]);
    list.scrollTop = 1_500; // over one screen left above, but under three
    list.dispatchEvent(new Event('scroll'));
    await waitFor(() => expect(fake.callsOf('page')).toHaveLength(1));
  });

  it('opens a long conversation showing the newest rows first, then fills in around them', async () => {
    await openLongConversation(false);
    const first = screen.getAllByTestId('message');
    expect(first.at(-1)?.dataset.n).toBe('100000');
    // What fits on screen (600 px here, without layout) and a row or two more.
    expect(first.length).toBeGreaterThan(5);
    expect(first.length).toBeLessThan(25);
    await waitFor(() => expect(screen.getAllByTestId('message').length).toBeGreaterThan(first.length + 5));
    const settled = screen.getAllByTestId('message');
    expect(settled.at(-1)?.dataset.n).toBe('100000');
    expect(Number(settled[0]?.dataset.n)).toBeLessThan(Number(first[0]?.dataset.n));
  });

  it('separates days, and groups a run of messages from one side', async () => {
    const day = 24 * 60 * 60_000;
    const base = Date.UTC(2025, 0, 6, 12);
    const at = (t: number) => ({ createdAt: t, sentAt: t, readAt: t });
    const fake = new FakeParley();
    fake.people = [person('Grace')];
    fake.history.set(peer, [
      message(peer, 1, { text: 'monday one', ...at(base) }),
      message(peer, 2, { text: 'monday two', ...at(base + 60_000) }),
      message(peer, 3, { text: 'monday reply', direction: 'out', state: 'read', ...at(base + 120_000) }),
      message(peer, 4, { text: 'thursday', ...at(base + 3 * day) }),
    ]);
    const setup = await renderApp(fake);
    await openChat(setup, 'Grace');
    await waitFor(() => expect(screen.getAllByTestId('message')).toHaveLength(4));
    const labels = screen.getAllByRole('separator').map((el) => el.textContent);
    expect(labels).toHaveLength(2);
    expect(new Set(labels).size).toBe(2);
    const grouped = screen.getAllByTestId('message').map((row) => row.classList.contains('grouped'));
    expect(grouped).toEqual([false, true, false, false]);
  });

  it('after a jump renders the rows on screen, and the rows around them once idle', () => {
    const cleanup = $effect.root(() => {
      const { view } = viewOf(many(1, 2000));
      view.resized(800, 500);
      view.scrolled(20_000);
      while (view.reach < OVERSCAN_PX) view.grow();
      const near = view.end - view.start;
      // Scrolling within what is rendered keeps it.
      view.scrolled(20_000 - OVERSCAN_PX / 2);
      expect(view.end - view.start).toBe(near);
      expect(view.reach).toBe(OVERSCAN_PX);
      // A jump past it renders the viewport and a little more...
      view.scrolled(40_000);
      expect(view.reach).toBe(MIN_OVERSCAN_PX);
      const jumped = view.end - view.start;
      expect(jumped).toBeLessThan(near);
      expect(view.layout.offsetOf(view.start)).toBeLessThanOrEqual(40_000 - MIN_OVERSCAN_PX);
      expect(view.layout.offsetOf(view.end)).toBeGreaterThanOrEqual(40_000 + 500 + MIN_OVERSCAN_PX);
      // ...until the window is idle.
      view.grow();
      expect(view.end - view.start).toBeGreaterThan(jumped);
    });
    cleanup();
  });

  it('keeps the row being read in place when an older page is prepended', () => {
    const cleanup = $effect.root(() => {
      const { view, box } = viewOf(many(1001, 100));
      view.resized(800, 500);
      view.scrolled(1500);
      const anchor = view.anchor!;
      const before = view.top;
      const onScreen = view.layout.offsetOf(box.messages.findIndex((m) => m.n === anchor.n)) - before;
      flushSync(() => {
        box.messages = [...many(901, 100), ...box.messages];
      });
      // Same message at the same place on screen: the list scrolled by what was added above it.
      expect(view.anchor).toEqual(anchor);
      const index = box.messages.findIndex((m) => m.n === anchor.n);
      expect(view.top).toBe(view.layout.offsetOf(index) + anchor.delta);
      expect(view.layout.offsetOf(index) - view.top).toBeCloseTo(onScreen, 6);
    });
    cleanup();
  });

  it('measured rows above the viewport do not move what is on screen', () => {
    const cleanup = $effect.root(() => {
      const { view, box } = viewOf(many(1, 200));
      view.resized(800, 500);
      view.scrolled(5000);
      const { n, delta } = view.anchor!;
      view.measured(5, 400);
      const index = box.messages.findIndex((m) => m.n === n);
      expect(view.top).toBe(view.layout.offsetOf(index) + delta);
    });
    cleanup();
  });

  it('follows new messages at the bottom, and stops following when scrolled up', () => {
    const cleanup = $effect.root(() => {
      const { view, box } = viewOf(many(1, 50));
      view.resized(800, 400);
      expect(view.stuck).toBe(true);
      box.messages = [...box.messages, message(peer, 51)];
      expect(view.top).toBe(view.total - 400);
      view.scrolled(100);
      expect(view.stuck).toBe(false);
      box.messages = [...box.messages, message(peer, 52)];
      expect(view.top).toBe(100);
    });
    cleanup();
  });
});
