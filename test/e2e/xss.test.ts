// Hostile text, in the real browser: messages and display names full of markup, script URLs,
// bidi overrides, invisible and combining characters are shown as the exact text they are,
// and nothing runs, opens, navigates or pops up.
import { describe, expect, it } from 'vitest';
import { useSession } from './bridge.ts';
import { exactly, expectUntouched, firstRun, freePort, joinRelay, messageRow, openChat, personRow, readConversation, send, startHosting } from './flows.ts';

const session = useSession();

const HOST_NAME = '<img src=x onerror="window.__pwned=1">';
const GUEST_NAME = '<iframe srcdoc="<script>parent.__pwned=1</script>">';
const LINK = 'https://example.org/parley/notes?v=1';
const CORPUS = [
  'Z' + '\u0301'.repeat(10_000),
  'W'.repeat(3_000),
  '<img src=x onerror="window.__pwned=1">',
  '<svg onload=window.__pwned=1>',
  '<iframe srcdoc="<script>parent.__pwned=1</script>">',
  'Invoice for you: \u202Efdp.exe',
  'zero\u200Bwidth\u200Cnon\u200Djoiner\u2060and\uFEFFbom',
  '[x](javascript:window.__pwned=1)',
  '<a href="javascript:window.__pwned=1">x</a>',
  'javascript:window.__pwned=1',
  'data:text/html,<script>parent.__pwned=1</script>',
  '[x](data:text/html;base64,PHNjcmlwdD5wYXJlbnQuX19wd25lZD0xPC9zY3JpcHQ+)',
  // Rocket.Chat's nested-markdown vector: a link inside emphasis inside a link.
  '[**[x](javascript:window.__pwned=1)**](javascript:void(0))',
  // A quote of an HTML message (the CVE-2018-11101 shape).
  '> <img src=x onerror="window.__pwned=1">\n> quoted',
  `Release notes: ${LINK}`,
];
const SCRIPT_URLS = CORPUS.filter((text) => text.includes('javascript:') || text.includes('data:'));

describe('hostile names and messages', () => {
  it('are shown as exactly their text, and nothing runs, opens or navigates', async () => {
    const host = await session.current.person({ host: true, settings: { hostPort: await freePort() } });
    const guest = await session.current.person();

    // A name with a bidi override is refused, and the window says so.
    await host.page.getByTestId('profile-name').fill('Eve \u202Egnp.exe');
    await host.page.getByTestId('profile-continue').click();
    await host.page.getByTestId('profile-setup').locator('.hint.error').filter({ hasText: 'Display name has control or bidi-override characters.' }).waitFor();
    expect(await host.page.getByTestId('profile-name').getAttribute('aria-invalid')).toBe('true');

    await firstRun(host, HOST_NAME);
    await firstRun(guest, GUEST_NAME);
    expect(await host.page.getByTestId('connect-screen').locator('strong').first().textContent()).toBe(HOST_NAME);
    const { address, code } = await startHosting(host);
    await joinRelay(guest, address, code);
    expect(await guest.page.getByTestId('status-text').textContent()).toContain(`Connected to ${HOST_NAME}'s Parley`);

    await personRow(host.page, GUEST_NAME).waitFor();
    await personRow(guest.page, HOST_NAME).waitFor();
    await openChat(host, GUEST_NAME);
    await openChat(guest, HOST_NAME);
    expect(await guest.page.getByTestId('peer-name').textContent()).toBe(HOST_NAME);
    expect(await guest.page.getByTestId('composer').getAttribute('placeholder')).toBe(`Message ${HOST_NAME}`);

    for (const text of CORPUS) await send(host, text);
    await messageRow(guest.page, CORPUS.at(-1)!).waitFor();

    // Every row's text is the input, character for character, on both sides.
    for (const person of [guest, host]) {
      const shown = await readConversation(person.page);
      expect(shown.map((m) => m.text)).toEqual(CORPUS);
    }
    // The recipient's list holds no image, vector, frame or script at all (not even icons).
    expect(await guest.page.getByTestId('message-list').locator('img, svg, iframe, script, object, embed').count()).toBe(0);
    expect(await host.page.getByTestId('message-text').locator('img, svg, iframe, script, object, embed').count()).toBe(0);
    // An allow-list: inside message text there is nothing but text and the link buttons the app
    // makes (with only their own attributes, and only text inside).
    for (const person of [guest, host]) {
      const foreign = await person.page.evaluate(() =>
        [...document.querySelectorAll('[data-testid="message-text"] *')]
          .filter((el) => el.tagName !== 'BUTTON' || ![...el.classList].every((c) => c === 'inline-link' || c.startsWith('svelte-')) || el.children.length > 0 || el.getAttributeNames().some((name) => !['type', 'class', 'title'].includes(name)))
          .map((el) => el.outerHTML.slice(0, 120)),
      );
      expect(foreign).toEqual([]);
    }

    // Script URLs stay text: no link to click, and clicking them opens nothing.
    for (const text of SCRIPT_URLS) {
      const row = messageRow(guest.page, text);
      expect(await row.locator('.inline-link').count()).toBe(0);
      await row.getByTestId('message-text').click();
    }
    // A web link is a button that asks main to open it (main confirms; here it is recorded).
    const link = messageRow(guest.page, CORPUS.at(-1)!).getByRole('button', { name: exactly(LINK) });
    expect(await link.getAttribute('title')).toBe(`Open ${LINK}`);
    await link.click();
    await expect.poll(() => guest.links).toEqual([LINK]);
    expect(guest.links.some((url) => url.startsWith('javascript:'))).toBe(false);
    expect(host.links).toEqual([]);

    // Long and odd text stays inside its bubble.
    for (const person of [guest, host]) {
      const overflowing = await person.page.evaluate(() =>
        [...document.querySelectorAll('[data-testid="message-text"]')].filter((text) => {
          const bubble = text.closest('.bubble')?.getBoundingClientRect();
          const box = text.getBoundingClientRect();
          return !bubble || box.left < bubble.left - 1 || box.right > bubble.right + 1;
        }).length,
      );
      expect(overflowing).toBe(0);
    }

    await expectUntouched(guest, session.current.server.origin);
    await expectUntouched(host, session.current.server.origin);
  });
});
