// Hostile text, in the real browser: messages and display names full of markup, script URLs,
// bidi overrides, invisible and combining characters are shown as the exact text they are,
// and nothing runs, opens, navigates or pops up.
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { useSession } from './bridge.ts';
import { exactly, expectUntouched, firstRun, freePort, joinRelay, messageRow, openChat, personRow, readConversation, send, startHosting } from './flows.ts';

const session = useSession();

const HOST_NAME = '<img src=x onerror="window.__pwned=1">';
const GUEST_NAME = '<iframe srcdoc="<script>parent.__pwned=1</script>">';
const LINK = 'https://example.org/parley/notes?v=1';
/** Combining marks: one grapheme 10,000 accents high, and Zalgo as people send it (marks above and below each letter). */
const ZALGO = ['Z' + '\u0301'.repeat(10_000), [...'he comes'].map((c) => c + '\u0300\u0316'.repeat(15)).join('')];
const CORPUS = [
  ...ZALGO,
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

/**
 * Where the message `text` changes the conversation's pixels outside its bubble: the list
 * around the bubble (above, below, left, right) with the text shown and with it hidden. Hiding
 * changes no layout, so whatever differs is ink the text paints over the rows and separators
 * around it. (The list clips what is in it, so the header and composer are safe either way.)
 * The pixel around the bubble is left out: its edges lie between pixels and are antialiased.
 */
async function paintsOutsideBubble(page: Page, text: string): Promise<string[]> {
  const bubble = messageRow(page, text).locator('.bubble');
  const [list, box] = await Promise.all([page.getByTestId('message-list').boundingBox(), bubble.boundingBox()]);
  if (!list || !box) throw new Error('the message is not shown');
  const [top, bottom] = [Math.floor(box.y) - 1, Math.ceil(box.y + box.height) + 1];
  const [left, right] = [Math.floor(box.x) - 1, Math.ceil(box.x + box.width) + 1];
  const [listTop, listBottom, listLeft, listRight] = [Math.ceil(list.y), Math.floor(list.y + list.height), Math.ceil(list.x), Math.floor(list.x + list.width)];
  const regions = Object.entries({
    above: { x: listLeft, y: listTop, width: listRight - listLeft, height: top - listTop },
    below: { x: listLeft, y: bottom, width: listRight - listLeft, height: listBottom - bottom },
    left: { x: listLeft, y: top, width: left - listLeft, height: bottom - top },
    right: { x: right, y: top, width: listRight - right, height: bottom - top },
  }).filter(([, clip]) => clip.width > 0 && clip.height > 0);
  const shots = () => Promise.all(regions.map(([, clip]) => page.screenshot({ clip, animations: 'disabled' })));
  const setHidden = (hidden: boolean) => bubble.getByTestId('message-text').evaluate((el, hidden) => void (el.style.visibility = hidden ? 'hidden' : ''), hidden);
  for (let attempt = 0; attempt < 5; attempt++) {
    const shown = await shots();
    await setHidden(true);
    const hidden = await shots();
    await setHidden(false);
    // Only a window that held still in between (the same with the text back) tells anything.
    const again = await shots();
    if (again.every((shot, i) => shot.equals(shown[i]!))) return regions.filter((_, i) => !hidden[i]!.equals(shown[i]!)).map(([name]) => name);
  }
  throw new Error('the window kept changing between screenshots');
}

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
    // The recipient's list holds no image, vector, frame or script at all, but the icons of the app's own row buttons.
    const media = guest.page.getByTestId('message-list').locator('img, svg, iframe, script, object, embed');
    expect(await media.evaluateAll((found) => found.filter((el) => el.tagName !== 'svg' || !el.parentElement?.matches('button.row-action[data-testid="delete-message"]')).length)).toBe(0);
    expect(await media.count()).toBe(await guest.page.getByTestId('message').count());
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
    // Nor does it paint outside it: stacked combining marks reach far above and below their
    // line, and the bubble cuts them off instead of letting them cover the messages around it.
    const outside: Record<string, string[]> = {};
    for (const [who, person] of [['guest', guest], ['host', host]] as const) {
      // The pointer away from the list: a row it is over shows its delete button.
      await person.page.mouse.move(0, 0);
      await person.page.getByTestId('message-list').evaluate((list) => void (list.scrollTop = 0));
      await person.page.locator('.history-start').waitFor();
      for (const [i, text] of ZALGO.entries()) {
        await messageRow(person.page, text).waitFor();
        outside[`${who}, Zalgo ${i}`] = await paintsOutsideBubble(person.page, text);
      }
    }
    expect(outside).toEqual({ 'guest, Zalgo 0': [], 'guest, Zalgo 1': [], 'host, Zalgo 0': [], 'host, Zalgo 1': [] });

    await expectUntouched(guest, session.current.server.origin);
    await expectUntouched(host, session.current.server.origin);
  });
});
