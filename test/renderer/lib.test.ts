import { describe, expect, it } from 'vitest';
import { HeightLayout } from '../../renderer/src/lib/layout.ts';
import { linkify } from '../../renderer/src/lib/links.ts';
import { snippetParts } from '../../renderer/src/lib/snippet.ts';
import { merge, upsert } from '../../renderer/src/lib/messages.ts';
import { TypingNotifier } from '../../renderer/src/lib/typing.ts';
import { lastSeen } from '../../renderer/src/lib/time.ts';
import { cutText } from '../../renderer/src/lib/text-room.ts';
import { message } from './fake-parley.ts';

describe('HeightLayout', () => {
  it('finds offsets and rows in a list of 100,000 variable heights', () => {
    const heights = Array.from({ length: 100_000 }, (_, i) => 20 + (i % 7) * 10);
    const layout = new HeightLayout(heights);
    let sum = 0;
    for (let i = 0; i < 100_000; i += 9_999) {
      expect(layout.offsetOf(i)).toBe(heights.slice(0, i).reduce((a, b) => a + b, 0));
    }
    for (const h of heights) sum += h;
    expect(layout.total).toBe(sum);
    expect(layout.indexAt(0)).toBe(0);
    expect(layout.indexAt(layout.offsetOf(5000) + 1)).toBe(5000);
    expect(layout.indexAt(sum + 100)).toBe(99_999);
    layout.set(10, 1000);
    expect(layout.offsetOf(11)).toBe(heights.slice(0, 10).reduce((a, b) => a + b, 0) + 1000);
  });
});

describe('linkify', () => {
  it('finds http(s) links and leaves the rest as text', () => {
    expect(linkify('see https://a.example/x?y=1, then (http://b.example/p_(q)) ok')).toEqual([
      { kind: 'text', at: 0, text: 'see ' },
      { kind: 'link', at: 4, text: 'https://a.example/x?y=1', url: 'https://a.example/x?y=1' },
      { kind: 'text', at: 27, text: ', then (' },
      { kind: 'link', at: 35, text: 'http://b.example/p_(q)', url: 'http://b.example/p_(q)' },
      { kind: 'text', at: 57, text: ') ok' },
    ]);
  });

  it('never links other schemes: such text has no link', () => {
    for (const text of ['javascript:alert(1)', 'file:///etc/passwd', 'data:text/html,<b>', 'ftp://x.example', 'plain words']) {
      expect(linkify(text)).toBeNull();
    }
  });
});

describe('snippetParts', () => {
  it('splits on U+0002/U+0003', () => {
    expect(snippetParts('a \u0002b\u0003 c \u0002d\u0003')).toEqual([
      { at: 0, text: 'a ', hit: false },
      { at: 1, text: 'b', hit: true },
      { at: 2, text: ' c ', hit: false },
      { at: 3, text: 'd', hit: true },
    ]);
  });
});

describe('message lists', () => {
  it('merges pages and events by n, newest copy winning', () => {
    const a = [message('p', 1), message('p', 3)];
    const b = [message('p', 2), message('p', 3, { text: 'new' })];
    expect(merge(a, b).map((m) => [m.n, m.text])).toEqual([[1, 'message 1'], [2, 'message 2'], [3, 'new']]);
    expect(upsert(a, message('p', 2)).map((m) => m.n)).toEqual([1, 2, 3]);
    expect(upsert(a, message('p', 3, { state: 'read' }))[1]?.state).toBe('read');
  });
});

describe('TypingNotifier', () => {
  it('sends typing at most every 3 s and stops after 4 s idle', () => {
    const sent: boolean[] = [];
    let now = 0;
    const timers: { at: number; fn: () => void }[] = [];
    const notifier = new TypingNotifier((t) => sent.push(t), {
      now: () => now,
      setTimeout: (fn, ms) => timers.push({ at: now + ms, fn }) - 1,
      clearTimeout: (handle) => timers.splice(handle as number, 1, { at: Infinity, fn: () => {} }),
    });
    for (now = 0; now < 3_000; now += 100) notifier.input();
    expect(sent).toEqual([true]);
    notifier.input();
    expect(sent).toEqual([true, true]);
    now += 4_000;
    for (const t of timers) if (t.at <= now) t.fn();
    expect(sent).toEqual([true, true, false]);
  });
});

describe('lastSeen', () => {
  it('speaks in minutes, then times and days', () => {
    const now = new Date(2025, 5, 10, 15, 0).getTime();
    expect(lastSeen(now - 30_000, now)).toBe('last seen just now');
    expect(lastSeen(now - 12 * 60_000, now)).toBe('last seen 12 min ago');
    expect(lastSeen(0, now)).toBe('not seen yet');
  });
});

describe('cutText', () => {
  it('keeps a text within the limit as it is, and cuts a longer one never between the halves of an emoji', () => {
    expect(cutText('hello', 5)).toBe('hello');
    expect(cutText('hello!', 5)).toBe('hello');
    expect(cutText('abcd😀', 5)).toBe('abcd'); // the cut would fall inside the emoji: it goes whole
    expect(cutText('abc😀d', 5)).toBe('abc😀');
  });
});
