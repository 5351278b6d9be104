// RELIABILITY.md C1, notification strings: a desktop notification shows a message exactly as
// typed. On Linux the notification server reads the body as markup, so hostile text there
// must arrive escaped, or `<a href>` and `<img>` in a message would become a link and an image.
import { describe, expect, it } from 'vitest';
import { createNotifier, messageNotification, type NotificationText } from '../../main/notify.ts';

const HOSTILE = [
  '<img src="file:///etc/passwd">',
  '<a href="file:///home">click me</a>',
  '<b>bold</b> & <i>co</i>',
  'Tom & Jerry <3 "quotes" \'too\'',
  '&lt;already escaped&gt;',
];

/** What a markup-reading notification server shows for a body. */
const shown = (body: string) => body.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e] ?? '');

describe('message notifications', () => {
  it('escape markup on Linux so the text shows exactly as typed, and leave it alone elsewhere', () => {
    for (const text of HOSTILE) {
      const linux = messageNotification({ from: 'Ann', text, flagged: false }, 'linux');
      expect(linux.body).not.toMatch(/[<>"']/);
      expect(shown(linux.body)).toBe(text);
      for (const platform of ['darwin', 'win32'] as const) expect(messageNotification({ from: 'Ann', text, flagged: false }, platform).body).toBe(text);
    }
  });

  it('drop bidi overrides, cut long text without splitting a character, and never show an unverified text', () => {
    expect(messageNotification({ from: 'Eve', text: 'Invoice \u202Efdp.exe', flagged: false }, 'darwin').body).toBe('Invoice fdp.exe');
    const long = messageNotification({ from: 'Ann', text: '😀'.repeat(300), flagged: false }, 'linux').body;
    expect(long).toBe(`${'😀'.repeat(200)}…`);
    const marks = messageNotification({ from: 'Ann', text: 'Z' + '\u0301'.repeat(10_000), flagged: false }, 'win32').body;
    expect([...marks]).toHaveLength(201);
    expect(messageNotification({ from: 'Ann', text: '<b>forged</b>', flagged: true }, 'linux')).toEqual({ title: 'Ann', body: 'A message that could not be verified' });
    expect(messageNotification({ from: undefined, text: 'hi', flagged: false }, 'linux').title).toBe('New message');
  });
});

describe('notifications for a burst of messages', () => {
  const names = new Map([['ann', 'Ann'], ['bob', 'Bob <b>'], ['cy', 'Cy'], ['dee', 'Dee']]);
  const burst = async (messages: { peer: string; text: string }[]): Promise<NotificationText[]> => {
    const shown: NotificationText[] = [];
    const notifier = createNotifier({ platform: 'linux', names: async () => names, show: (n) => shown.push(n), gatherMs: 20 });
    for (const m of messages) notifier.add({ ...m, flagged: false });
    await new Promise((r) => setTimeout(r, 100));
    notifier.close();
    return shown;
  };

  it('show a backlog as one notification per sender with a count, and a lone message as itself', async () => {
    const backlog = [...Array.from({ length: 999 }, (_, i) => ({ peer: 'bob', text: `old ${i}` })), { peer: 'ann', text: 'lunch?' }];
    expect(await burst(backlog)).toEqual([
      { title: 'Bob <b>', body: '999 new messages' },
      { title: 'Ann', body: 'lunch?' },
    ]);
  });

  it('sum up many senders in one notification', async () => {
    const shown = await burst(['ann', 'bob', 'cy', 'dee', 'dee'].map((peer) => ({ peer, text: 'hi' })));
    expect(shown).toEqual([{ title: 'Parley', body: '5 new messages from 4 people' }]);
  });
});
