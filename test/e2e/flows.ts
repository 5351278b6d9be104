// What a person does in the window, step by step, waiting for what they would wait for.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import { startRelay } from '../support/relay.ts';
import type { Person, Session } from './bridge.ts';

export interface ShownMessage {
  n: number;
  direction: 'in' | 'out';
  state: string;
  text: string;
}

/** A port free right now on loopback (for the hosting port in Settings). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
export const exactly = (text: string) => new RegExp(`^${escape(text)}$`, 'u');

/** The row of the message whose text is exactly `text` (rendered rows only: the list is virtual). */
export function messageRow(page: Page, text: string): Locator {
  return page.getByTestId('message').filter({ has: page.getByTestId('message-text').filter({ hasText: exactly(text) }) });
}

export function personRow(page: Page, name: string): Locator {
  return page.getByTestId('person').filter({ has: page.getByTestId('person-name').filter({ hasText: exactly(name) }) });
}

/** First run: type a display name and continue to the connect screen. */
export async function firstRun(person: Person, name: string): Promise<void> {
  const { page } = person;
  await page.getByTestId('profile-name').fill(name);
  await page.getByTestId('profile-continue').click();
  await page.getByTestId('connect-screen').waitFor();
}

/** Starts hosting from the connect screen; returns the address and access code as shown. */
export async function startHosting(person: Person): Promise<{ address: string; code: string }> {
  const { page } = person;
  await page.getByTestId('start-hosting').click();
  const code = (await page.getByTestId('access-code').textContent())?.trim() ?? '';
  const address = (await page.getByTestId('host-addresses').locator('code').first().textContent())?.trim() ?? '';
  expect(code).toMatch(/^[a-z2-9]{5}-[a-z2-9]{5}$/);
  expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
  await page.getByTestId('open-conversations').click();
  await waitOnline(page);
  return { address, code };
}

/** Joins a relay by typing its address (and code) on the connect screen. */
export async function joinRelay(person: Person, address: string, code = ''): Promise<void> {
  const { page } = person;
  await page.getByTestId('join-address').fill(address);
  await page.getByTestId('join-code').fill(code);
  await page.getByTestId('join-submit').click();
  await waitOnline(page);
}

/** The status bar (main view) says the connection is up. */
export async function waitOnline(page: Page): Promise<void> {
  await page.locator('[data-testid="status-bar"][data-state="online"]').waitFor();
}

/** From the main view to the connect screen, through the status bar. */
export async function showConnect(person: Person): Promise<void> {
  await person.page.getByTestId('connection-button').click();
  await person.page.getByTestId('connect-screen').waitFor();
}

/** Opens the conversation with `name` from the people list. */
export async function openChat(person: Person, name: string): Promise<void> {
  const { page } = person;
  await personRow(page, name).click();
  await page.getByTestId('peer-name').filter({ hasText: exactly(name) }).waitFor();
  await page.locator('[data-testid="message-list"]').waitFor();
}

/** Types a message in the open conversation and presses Enter; waits for it in the list. */
export async function send(person: Person, text: string): Promise<Locator> {
  const { page } = person;
  await page.getByTestId('composer').fill(text);
  await page.getByTestId('composer').press('Enter');
  const row = messageRow(page, text).last();
  await row.waitFor();
  return row;
}

/** Sends many messages in order, through the same checked dispatch the composer's calls take. */
export async function sendMany(person: Person, peer: string, texts: string[]): Promise<void> {
  for (const text of texts) {
    const result = await person.invoke('message:send', { peer, text });
    if (!result.ok) throw new Error(`sending "${text}" failed: ${result.error.code} ${result.error.message}`);
  }
}

/**
 * Two people meet: the first hosts (on a free port set in Settings before the window opens),
 * the second joins by address and the code read off the host's screen.
 */
export async function meet(session: Session, hostName: string, guestName: string) {
  const host = await session.person({ host: true, settings: { hostPort: await freePort() } });
  const guest = await session.person();
  await Promise.all([firstRun(host, hostName), firstRun(guest, guestName)]);
  const { address, code } = await startHosting(host);
  await showConnectIfNeeded(guest);
  await joinRelay(guest, address, code);
  await Promise.all([personRow(host.page, guestName).waitFor(), personRow(guest.page, hostName).waitFor()]);
  return { host, guest, address, code };
}

async function showConnectIfNeeded(person: Person): Promise<void> {
  if (!(await person.page.getByTestId('connect-screen').isVisible())) await showConnect(person);
}

/** The window's focus as the app sees it (headless pages never lose focus by themselves). */
export async function setWindowFocus(person: Person, focused: boolean): Promise<void> {
  await person.page.evaluate((focused) => window.dispatchEvent(new Event(focused ? 'focus' : 'blur')), focused);
}

/**
 * Reads the open conversation the way a person would: scrolls to its beginning (older pages
 * load on the way), then down to the end, noting every message row the list renders.
 */
export function readConversation(page: Page): Promise<ShownMessage[]> {
  return page.evaluate(async () => {
    const frames = (count: number) => new Promise<void>((resolve) => {
      const step = (left: number) => (left === 0 ? resolve() : requestAnimationFrame(() => step(left - 1)));
      step(count);
    });
    const list = document.querySelector<HTMLElement>('[data-testid="message-list"]');
    if (!list) throw new Error('no conversation is open');
    const deadline = performance.now() + 30_000;
    const seen = new Map<number, { n: number; direction: 'in' | 'out'; state: string; text: string }>();
    const note = () => {
      for (const row of list.querySelectorAll<HTMLElement>('[data-testid="message"]')) {
        const n = Number(row.dataset.n);
        seen.set(n, { n, direction: row.classList.contains('out') ? 'out' : 'in', state: row.dataset.state ?? '', text: row.querySelector('[data-testid="message-text"]')?.textContent ?? '' });
      }
    };
    while (!list.querySelector('.history-start')) {
      if (performance.now() > deadline) throw new Error('never reached the beginning of the conversation');
      list.scrollTop = 0;
      await frames(2);
    }
    for (;;) {
      if (performance.now() > deadline) throw new Error('never reached the end of the conversation');
      note();
      const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 2;
      if (atEnd && !document.querySelector('.history-loading')) break;
      // The list always renders the rows in the viewport (more only once it is idle): a step
      // of a little less than one viewport sees every row.
      list.scrollTop += list.clientHeight - 40;
      await frames(2);
    }
    return [...seen.values()].sort((a, b) => a.n - b.n);
  });
}

/** Fails on anything a healthy window never does: errors, CSP violations, dialogs, navigations, popups. */
export async function expectHealthy(person: Person): Promise<void> {
  if (person.page.isClosed()) return;
  expect(person.pageErrors).toEqual([]);
  expect(await person.violations()).toEqual([]);
  expect(person.dialogs).toEqual([]);
  expect(person.navigations).toBe(0);
  expect(person.popups).toBe(0);
}

/**
 * Elements that hostile text could have turned into, anywhere in the page (`origin`: where
 * the renderer is served, whose /assets/ scripts are its own).
 */
export function foreignElements(page: Page, origin: string) {
  return page.evaluate((origin) => ({
    embedded: document.querySelectorAll('img, iframe, frame, object, embed, video, audio, link[rel="import"]').length,
    scripts: [...document.scripts].filter((script) => !script.src.startsWith(`${origin}/assets/`)).length,
    svgs: [...document.querySelectorAll('svg')].filter((svg) => !svg.classList.contains('icon')).length,
    anchors: document.querySelectorAll('a[href]').length,
    handlers: [...document.querySelectorAll('*')].filter((element) => [...element.attributes].some((a) => a.name.startsWith('on'))).length,
    pwned: '__pwned' in window,
  }), origin);
}

/** Hostile text changed nothing: no foreign element, handler or frame, no `window.__pwned`, and the window is healthy. */
export async function expectUntouched(person: Person, origin: string): Promise<void> {
  expect(await foreignElements(person.page, origin)).toEqual({ embedded: 0, scripts: 0, svgs: 0, anchors: 0, handlers: 0, pwned: false });
  expect(person.page.frames()).toHaveLength(1);
  await expectHealthy(person);
}

interface StateLog {
  __stateLog?: Record<string, string[]>;
}

/** From now on, notes every state each message row shows (by text), as the DOM changes. */
export async function recordStates(page: Page): Promise<void> {
  await page.evaluate(() => {
    const log: Record<string, string[]> = {};
    (window as unknown as StateLog).__stateLog = log;
    const note = (row: Element) => {
      const text = row.querySelector('[data-testid="message-text"]')?.textContent ?? '';
      const state = row.getAttribute('data-state') ?? '';
      const states = (log[text] ??= []);
      if (states.at(-1) !== state) states.push(state);
    };
    document.querySelectorAll('[data-testid="message"]').forEach(note);
    new MutationObserver((records) => {
      for (const record of records) {
        const target = record.target as Element;
        if (record.type === 'attributes' && target.matches('[data-testid="message"]')) note(target);
        for (const node of record.addedNodes) {
          if (!(node instanceof Element)) continue;
          if (node.matches('[data-testid="message"]')) note(node);
          node.querySelectorAll('[data-testid="message"]').forEach(note);
        }
      }
    }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state'] });
  });
}

export function recordedStates(page: Page, text: string): Promise<string[]> {
  return page.evaluate((text) => (window as unknown as StateLog).__stateLog?.[text] ?? [], text);
}

/** A relay running headless on a server (here: loopback), in its own temp folder. */
export async function serverRelay(options: { name: string; fastBudget?: boolean }): Promise<{ address: string; port: number; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-e2e-relay-'));
  // The default per-socket budget (50 requests/s) paces a big burst of sends; a test about
  // the recipient's side may lift it.
  const relay = await startRelay({ dir, name: options.name, ...(options.fastBudget ? { rate: { capacity: 2000, perSecond: 2000, abuseMs: 10_000 } } : {}) });
  return {
    address: `127.0.0.1:${relay.port}`,
    port: relay.port,
    async stop() {
      await relay.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Two people who first run the app and join the same open relay by its address. */
export async function meetAt(session: Session, address: string, names: [string, string]): Promise<[Person, Person]> {
  const people = await Promise.all(names.map(() => session.person()));
  const [a, b] = people as [Person, Person];
  await Promise.all([firstRun(a, names[0]), firstRun(b, names[1])]);
  await Promise.all([joinRelay(a, address), joinRelay(b, address)]);
  await Promise.all([personRow(a.page, names[1]).waitFor(), personRow(b.page, names[0]).waitFor()]);
  return [a, b];
}

/** A relay for the whole test file, started before its tests and stopped after them. Read `.current` inside tests. */
export function useServerRelay(options: Parameters<typeof serverRelay>[0]): { readonly current: Awaited<ReturnType<typeof serverRelay>> } {
  let relay: Awaited<ReturnType<typeof serverRelay>> | undefined;
  beforeAll(async () => {
    relay = await serverRelay(options);
  });
  afterAll(async () => {
    await relay?.stop();
  });
  return {
    get current() {
      if (!relay) throw new Error('the relay starts in beforeAll');
      return relay;
    },
  };
}
