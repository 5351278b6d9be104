// A hostile relay's own words, in the real browser: the error text it answers a send with
// (shown as the failed message's reason when the app has no wording for the code) and the
// text of a handshake refusal stay plain text, and nothing runs, opens or navigates.
import type { Locator, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { StorageError, type RelayStore } from '../../relay/mailbox/store.ts';
import { PROTOCOL_VERSION } from '../../relay/protocol.ts';
import { tempDir, useRelay } from '../support/relay.ts';
import { refusingRelay } from '../support/scripted-relay.ts';
import { useSession } from './bridge.ts';
import { expectUntouched, firstRun, joinRelay, openChat, personRow, send } from './flows.ts';

// Registered first, so its afterEach runs last: people leave before their relays go away.
const scope = useRelay();
const session = useSession();

/** What the relay answers the sends with: codes the app has no words for, text of its own. */
const REFUSED_SENDS = [
  { code: 'E_SCHEMA', message: '<img src=x onerror="window.__pwned=1">' },
  { code: 'E_UNKNOWN_EVENT', message: '<svg onload=window.__pwned=1>' },
  // A code from some later protocol: final too (main/core/outbox.ts), in the relay's words.
  { code: 'E_FROM_THE_FUTURE', message: '<iframe srcdoc="<script>parent.__pwned=1</script>">' },
  { code: 'E_SCHEMA', message: '<script>window.__pwned=1</script> [x](javascript:window.__pwned=1) <a href="javascript:window.__pwned=1">x</a> https://example.org' },
];

/** How the join screen and the status say a refused handshake, in the app's own words. */
const UNREACHABLE = /^The relay cannot be reached\. Still trying( \(attempt \d+\))?…$/u;
const REFUSED_NAME = 'The relay did not accept this display name.';

/** Everything the page shows as text, form fields included. */
function pageText(page: Page): Promise<string> {
  return page.evaluate(() => document.body.textContent + [...document.querySelectorAll('input, textarea')].map((f) => (f as HTMLInputElement).value).join('\n'));
}

describe('a hostile relay', () => {
  it('answers sends with its own error text: each failed message shows exactly that text as its reason, and nothing runs', async () => {
    // A compromised relay: whatever its store throws reaches the sender as the answer
    // (relay/handlers.ts failure()), here with codes and words the relay chose.
    const answers = [...REFUSED_SENDS, { code: 'E_SCHEMA', message: '<body onload=window.__pwned=1>retried' }];
    const answered: string[] = [];
    const folder = tempDir('parley-e2e-relay-');
    scope.track(() => folder.remove());
    const relay = await scope.start({
      dir: folder.path,
      name: 'Hostile relay',
      wrapStore: (store): RelayStore => ({
        ...store,
        accept: async () => {
          const answer = answers.shift();
          if (!answer) throw new Error('the test sent more than it planned');
          answered.push(answer.message);
          throw new StorageError(answer.code as StorageError['code'], answer.message);
        },
      }),
    });
    await scope.join({ name: 'Grace Hopper' });

    const ada = await session.current.person();
    await firstRun(ada, 'Ada Lovelace');
    await joinRelay(ada, `127.0.0.1:${relay.port}`);
    await personRow(ada.page, 'Grace Hopper').waitFor();
    await openChat(ada, 'Grace Hopper');

    const rows: Locator[] = [];
    for (const [i, { message }] of REFUSED_SENDS.entries()) {
      const row = await send(ada, `Message ${i + 1}`);
      await row.and(ada.page.locator('[data-state="failed"]')).waitFor();
      expect(await row.getByTestId('failure-reason').textContent()).toBe(`Not sent: ${message}`);
      expect(await row.getByTestId('message-state').getAttribute('title')).toBe('Not sent');
      rows.push(row);
    }
    expect(answered).toEqual(REFUSED_SENDS.map((a) => a.message));

    // Retry: refused again, and the new reason replaces the old one, as text.
    await rows[0]!.getByTestId('retry').click();
    await rows[0]!.getByTestId('failure-reason').filter({ hasText: 'retried' }).waitFor();
    expect(await rows[0]!.getByTestId('failure-reason').textContent()).toBe('Not sent: <body onload=window.__pwned=1>retried');
    expect(await ada.page.getByTestId('failure-reason').allTextContents()).toEqual([
      'Not sent: <body onload=window.__pwned=1>retried',
      ...REFUSED_SENDS.slice(1).map((a) => `Not sent: ${a.message}`),
    ]);
    // The reasons are text, with no link (or link button) to follow.
    expect(await ada.page.locator('.failure').getByRole('link').count()).toBe(0);
    expect(await ada.page.locator('.failure button:not([data-testid="retry"]):not([data-testid="delete-failed"])').count()).toBe(0);
    expect(ada.links).toEqual([]);

    await expectUntouched(ada, session.current.server.origin);
  });

  it('refuses the handshake with codes and words of its own: the app says it in its words, and nothing runs', async () => {
    // (main/core/connection.ts has its own words for every final code, so the relay's
    // `data.message` is never shown: this pins that, as well as what the page does with it.)
    const relay = scope.track(await refusingRelay());
    const ada = await session.current.person();
    await firstRun(ada, 'Ada Lovelace');
    const { page } = ada;
    await page.getByTestId('join-address').fill(relay.address);
    await page.getByTestId('join-submit').click();

    // A code the app does not know, with markup for code and text: not final, so it retries.
    const joinError = page.getByTestId('join-error');
    await joinError.filter({ hasText: UNREACHABLE }).waitFor();
    expect(await joinError.textContent()).toMatch(UNREACHABLE);
    expect(await joinError.getAttribute('class')).toContain('warn');
    expect(relay.refused[0]).toBe(relay.refusal.code);
    // The app got the Hello and proved its key over it: a real handshake, refused.
    expect(relay.auths[0]).toMatchObject({ v: PROTOCOL_VERSION, name: 'Ada Lovelace', challenge: expect.any(String), sig: expect.any(String) });

    // A final refusal (E_SCHEMA) with markup for text: the app's wording, not the relay's.
    relay.refusal.code = 'E_SCHEMA';
    relay.refusal.message = '<img src=x onerror="window.__pwned=1"><iframe srcdoc="<script>parent.__pwned=1</script>">';
    await joinError.filter({ hasText: REFUSED_NAME }).waitFor();
    expect(await joinError.textContent()).toBe(REFUSED_NAME);
    expect(await joinError.getAttribute('class')).toContain('error');
    expect(await page.getByTestId('join-submit').isEnabled()).toBe(true);
    expect(relay.refused.at(-1)).toBe('E_SCHEMA');

    // None of the relay's words are on the page, as text or otherwise.
    const shown = await pageText(page);
    for (const word of ['onerror', 'onload', 'srcdoc', '__pwned']) expect(shown).not.toContain(word);
    await expectUntouched(ada, session.current.server.origin);
  });
});
