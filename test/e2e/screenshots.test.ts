// Screenshots of the main screens in light and dark, into test-results/screenshots/ (and the
// light main view into test/e2e/screenshots/main-view.png, shown in the README). Everything
// that would vary between runs is pinned: keys come from fixed seeds (fingerprints, avatar
// colours, safety numbers), Node's and the page's clocks are fixed, and the hosting port is
// 47800 whenever it is free.
import { mkdirSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Page } from 'playwright-core';
import { must, startCore, type TestCore } from '../support/messenger.ts';
import { ROOT } from './build.ts';
import { seededIdentityFile, startSession, type Person, type Session } from './bridge.ts';
import { expectHealthy, firstRun, freePort, joinRelay, messageRow, openChat, personRow, startHosting } from './flows.ts';

const OUT = join(ROOT, 'test-results/screenshots');
const COMMITTED = join(ROOT, 'test/e2e/screenshots/main-view.png');
const TODAY = '2025-03-14';
const YESTERDAY = '2025-03-13';
const at = (day: string, time: string) => Date.parse(`${day}T${time}:00Z`);
/** What the windows' clocks say while the screenshots are taken. */
const PAGE_NOW = at(TODAY, '09:43');

let session: Session;
const extras: { core: TestCore; dir: string }[] = [];
beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  session = await startSession();
  // Only Date is faked (timers run): message times, last seen and receipts read this clock.
  vi.useFakeTimers({ toFake: ['Date'] });
});
afterAll(async () => {
  vi.useRealTimers();
  await session?.closePeople();
  for (const { core, dir } of extras.splice(0)) {
    await core.close();
    rmSync(dir, { recursive: true, force: true });
  }
  await session?.close();
});

async function port47800(): Promise<number> {
  const probe = await import('node:net').then(({ createServer }) => createServer());
  const free = await new Promise<boolean>((resolve) => {
    probe.once('error', () => resolve(false));
    probe.listen(47800, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
  return free ? 47800 : freePort();
}

/** Someone on the relay without a window in this test: a core driven directly. */
async function extra(name: string, address: string, code: string): Promise<TestCore> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-e2e-'));
  writeFileSync(join(dir, 'identity.json'), seededIdentityFile(name), { mode: 0o600 });
  const core = await startCore({ dataDir: dir, name });
  extras.push({ core, dir });
  must(await core.messenger.handlers['relay:join']({ address, accessCode: code }));
  return core;
}

async function shoot(page: Page, name: string): Promise<void> {
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.locator(`html[data-theme="${scheme}"]`).waitFor({ state: 'attached' });
    await page.screenshot({ path: join(OUT, `${name}-${scheme}.png`), animations: 'disabled', caret: 'hide' });
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

async function say(from: Person, to: Person, time: string, text: string): Promise<void> {
  vi.setSystemTime(at(TODAY, time));
  must(await from.invoke('message:send', { peer: to.core.id, text }));
  await messageRow(to.page, text).waitFor();
}

describe('screenshots', () => {
  it('of first run, the main view, search and verify, light and dark', async () => {
    vi.setSystemTime(at(YESTERDAY, '15:58'));
    const ada = await session.person({ host: true, settings: { hostPort: await port47800() }, identitySeed: 'Ada Lovelace', clock: PAGE_NOW });
    const grace = await session.person({ identitySeed: 'Grace Hopper', clock: PAGE_NOW });

    await grace.page.getByTestId('profile-name').fill('Grace Hopper');
    await shoot(grace.page, 'first-run');
    await firstRun(ada, 'Ada Lovelace');
    await firstRun(grace, 'Grace Hopper');
    vi.setSystemTime(at(YESTERDAY, '16:00'));
    const { address, code } = await startHosting(ada);
    await joinRelay(grace, address, code);

    // Yesterday: Alan wrote, Grace read it, Alan left.
    vi.setSystemTime(at(YESTERDAY, '16:18'));
    const alan = await extra('Alan Turing', address, code);
    await personRow(grace.page, 'Alan Turing').waitFor();
    vi.setSystemTime(at(YESTERDAY, '16:20'));
    must(await alan.messenger.handlers['message:send']({ peer: grace.core.id, text: 'Thanks for the review, see you on Monday!' }));
    await personRow(grace.page, 'Alan Turing').getByTestId('unread-badge').waitFor();
    const [fromAlan] = must(await grace.invoke('conversation:page', { peer: alan.id, limit: 1 }));
    must(await grace.invoke('conversation:markRead', { peer: alan.id, upTo: fromAlan!.n }));
    vi.setSystemTime(at(YESTERDAY, '16:31'));
    must(await alan.messenger.handlers['relay:leave'](null));
    await personRow(grace.page, 'Alan Turing').getByTestId('person-presence').filter({ hasText: /^last seen/ }).waitFor();

    // This morning.
    vi.setSystemTime(at(TODAY, '09:05'));
    const katherine = await extra('Katherine Johnson', address, code);
    await personRow(grace.page, 'Katherine Johnson').waitFor();
    await openChat(ada, 'Grace Hopper');
    await openChat(grace, 'Ada Lovelace');
    await say(ada, grace, '09:12', 'Morning Grace! Did last night’s run of the engine notes finish?');
    await say(grace, ada, '09:14', 'It did: 4,096 cards, not a single jam. The printout is on your desk.');
    await say(ada, grace, '09:15', 'Wonderful. I think I found a bug in note G: the loop over the Bernoulli numbers skips B7.');
    await say(grace, ada, '09:16', 'A bug? Let me guess, a moth in relay 70 again?');
    await say(ada, grace, '09:18', 'Ha! Only an off-by-one this time. I’ll send you the corrected table.');
    await say(ada, grace, '09:26', 'Here it is: https://example.org/notes/bernoulli-table');
    vi.setSystemTime(at(TODAY, '09:31'));
    must(await katherine.messenger.handlers['message:send']({ peer: grace.core.id, text: 'The trajectory numbers for Friday are in the shared folder.' }));
    vi.setSystemTime(at(TODAY, '09:32'));
    must(await katherine.messenger.handlers['message:send']({ peer: grace.core.id, text: 'Could you double-check the re-entry window?' }));
    await personRow(grace.page, 'Katherine Johnson').getByTestId('unread-badge').filter({ hasText: '2' }).waitFor();
    await say(grace, ada, '09:38', 'Thanks! I’ll run it through the compiler before lunch.');
    await say(ada, grace, '09:40', 'Perfect. Shall we compare safety numbers while we’re both here?');
    await say(grace, ada, '09:41', 'Sure, opening Verify now.');
    await grace.page.locator('[data-testid="message"][data-state="read"]').filter({ hasText: 'Sure, opening Verify now.' }).waitFor();
    await grace.delivered();

    await shoot(grace.page, 'main-view');
    copyFileSync(join(OUT, 'main-view-light.png'), COMMITTED);

    await grace.page.keyboard.press('Control+f');
    // One hit: with several, every snippet shows the oldest hit's words (see search.test.ts).
    await grace.page.getByTestId('search-input').fill('moth');
    await grace.page.getByTestId('search-snippet').filter({ hasText: 'a moth in relay 70' }).waitFor();
    await shoot(grace.page, 'search');
    await grace.page.keyboard.press('Escape');

    await grace.page.getByTestId('verify-button').click();
    await grace.page.getByTestId('safety-number').waitFor();
    expect(await grace.page.getByTestId('verify-dialog').getByRole('heading').textContent()).toBe('Verify Ada Lovelace');
    await shoot(grace.page, 'verify');
    await grace.page.keyboard.press('Escape');

    await expectHealthy(ada);
    await expectHealthy(grace);
  });
});
