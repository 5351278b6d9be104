import { describe, expect, it } from 'vitest';
import { screen, waitFor } from '@testing-library/svelte';
import { flushSync } from 'svelte';
import type { Message } from '../../preload/contract.ts';
import { ListView } from '../../renderer/src/state/list-view.svelte.ts';
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

describe('the virtualized history', () => {
  it('renders only the rows near the viewport, even with 100,000 messages', async () => {
    const fake = new FakeParley();
    fake.people = [person('Grace')];
    fake.history.set(peer, many(1, 100_000));
    const setup = await renderApp(fake);
    const conversation = setup.app.chats.get(peer);
    conversation.messages = fake.history.get(peer)!;
    conversation.load = 'ready';
    conversation.reachedStart = true;
    await openChat(setup, 'Grace');
    await waitFor(() => expect(screen.getAllByTestId('message').length).toBeGreaterThan(5));
    const rendered = screen.getAllByTestId('message');
    expect(rendered.length).toBeLessThan(80);
    expect(rendered.at(-1)?.dataset.n).toBe('100000');
    expect(fake.callsOf('page')).toEqual([]);
  });

  it('keeps the row being read in place when an older page is prepended', () => {
    const cleanup = $effect.root(() => {
      const { view, box } = viewOf(many(1001, 100));
      view.resized(800, 500);
      view.scrolled(1500);
      const anchor = view.anchor!;
      const before = view.top;
      flushSync(() => {
        box.messages = [...many(901, 100), ...box.messages];
      });
      // Same message at the same place on screen: top moved by exactly the prepended height.
      expect(view.anchor).toEqual(anchor);
      const index = box.messages.findIndex((m) => m.n === anchor.n);
      expect(view.top).toBe(view.layout.offsetOf(index) + anchor.delta);
      expect(view.top - before).toBe(view.layout.offsetOf(100));
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
