// A test-only stand-in for the preload: each page gets a window.parley of the same shape as
// preload/index.ts (built from the same COMMANDS/EVENTS tables) wired to a real messenger
// core in this Node process. Electron's IPC is replaced by the DevTools channel Playwright
// already holds: page -> Node calls go through page.exposeBinding, Node -> page events
// through page.evaluate. The page itself opens no socket (its CSP has connect-src 'none').
// Every call goes through main/ipc.ts `dispatch`, so arguments are validated as in the app.
import { createHash, createPrivateKey } from 'node:crypto';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IpcMainInvokeEvent } from 'electron';
import type { Browser, BrowserContext, Frame, Page } from 'playwright-core';
import { ARGUMENTS, dispatch, type Handlers } from '../../main/ipc.ts';
import { COMMANDS, EVENTS, type CommandName, type Commands, type EventName, type Events, type Result, type Settings } from '../../preload/contract.ts';
import { PROTOCOL_VERSION } from '../../relay/protocol.ts';
import { must, startCore, type TestCore } from '../support/messenger.ts';
import { launchChromium, VIEWPORT } from './chromium.ts';
import { serveRenderer, type StaticServer } from './server.ts';

/** Date as it was when this module loaded: before any test fakes it. */
const RealDate = Date;

export interface CspViolation {
  directive: string;
  blocked: string;
}

/** What the init script adds to the page besides window.parley. */
export interface BridgeWindow {
  parley: Window['parley'];
  __parleyInvoke(channel: string, arg: unknown): Promise<unknown>;
  __parleyDeliver(batch: [EventName, unknown][]): Promise<void>;
  __cspViolations: CspViolation[];
}

/** Runs in the page before its own scripts (so it must not close over anything). */
function installBridge(tables: { commands: Record<string, string>; events: Record<string, string> }): void {
  // As in the app, only the top frame gets the API (the preload does not run in subframes;
  // and ipc.ts refuses calls from them, as dispatch does here).
  if (window !== window.top) return;
  type Listener = (payload: unknown) => void;
  const page = window as unknown as BridgeWindow;
  const listeners = new Map<string, Set<Listener>>();
  const violations: CspViolation[] = [];
  addEventListener('securitypolicyviolation', (event) => violations.push({ directive: event.violatedDirective, blocked: event.blockedURI }));
  const api: Record<string, unknown> = {};
  for (const [method, channel] of Object.entries(tables.commands)) {
    // The binding is looked up per call: Playwright installs it alongside this script.
    api[method] = (arg?: unknown) => page.__parleyInvoke(channel, arg ?? null);
  }
  for (const [method, event] of Object.entries(tables.events)) {
    api[method] = (listener: Listener) => {
      const wrapped: Listener = (payload) => listener(payload);
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(wrapped);
      return () => void set.delete(wrapped);
    };
  }
  // Each IPC message reaches a window as a task of its own, so the UI updates between
  // events; here a batch is handed out one event per task, too.
  const channel = new MessageChannel();
  const nextTask = () => new Promise<void>((resolve) => {
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
  const deliver = async (batch: [string, unknown][]) => {
    for (const [event, payload] of batch) {
      for (const listener of [...(listeners.get(event) ?? [])]) {
        try {
          listener(payload);
        } catch (error) {
          reportError(error); // an uncaught error in a listener, as ipcRenderer would surface it
        }
      }
      await nextTask();
    }
  };
  Object.defineProperty(window, 'parley', { value: Object.freeze(api), enumerable: true });
  Object.defineProperty(window, '__parleyDeliver', { value: deliver });
  Object.defineProperty(window, '__cspViolations', { value: violations });
}

/** Keys made from a seed: the same fingerprint and avatar colour every run (for screenshots). */
export function seededIdentityFile(seed: string): string {
  const key = (kind: string, prefix: string) => {
    const raw = createHash('sha256').update(`parley-e2e:${seed}:${kind}`).digest();
    return createPrivateKey({ key: Buffer.concat([Buffer.from(prefix, 'hex'), raw]), format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
  };
  return JSON.stringify({ v: 1, idPrivate: key('id', '302e020100300506032b657004220420'), kaPrivate: key('ka', '302e020100300506032b656e04220420') });
}

export interface PersonOptions {
  /** The core may host a relay (on 127.0.0.1). */
  host?: boolean;
  /** Saved in the core before the window opens; the window reads them as it starts. */
  settings?: Partial<Settings>;
  identitySeed?: string;
  colorScheme?: 'light' | 'dark';
  /** Fixes the page's Date (timers keep running), for stable screenshots. */
  clock?: number;
  /** A cap on the core's history.db in pages (SQLite's max_page_count), for a disk that can fill. */
  historyMaxPageCount?: number;
  /** The window opens without focus (the OS kept it on another window), until setWindowFocus. */
  unfocused?: boolean;
}

export interface Person {
  core: TestCore;
  page: Page;
  context: BrowserContext;
  /** URLs the page asked main to open (link:open answers false: nothing opens). */
  readonly links: string[];
  readonly pageErrors: string[];
  readonly dialogs: string[];
  /** Popups and new pages. */
  readonly popups: number;
  /** Main-frame navigations after the first load. */
  readonly navigations: number;
  violations(): Promise<CspViolation[]>;
  /**
   * Calls a command from Node the way the window's own calls arrive (same dispatch, same
   * checks, sent from the page's main frame): for bulk work that would otherwise cost one
   * DevTools round trip per call.
   */
  invoke<K extends CommandName>(channel: K, arg: Commands[K][0]): Promise<Result<Commands[K][1]>>;
  /** Resolves once every core event so far has reached the page. */
  delivered(): Promise<void>;
  close(): Promise<void>;
}

export interface Session {
  browser: Browser;
  server: StaticServer;
  person(options?: PersonOptions): Promise<Person>;
  /** Closes every person opened so far (pages, contexts, cores, data folders). */
  closePeople(): Promise<void>;
  close(): Promise<void>;
}

const isCommand = (name: unknown): name is CommandName => typeof name === 'string' && Object.hasOwn(ARGUMENTS, name);

/** Stands in for Electron's IpcMainInvokeEvent: the frame that called, as Electron reports it. */
function invokeEvent(frame: Frame): Pick<IpcMainInvokeEvent, 'senderFrame'> {
  const senderFrame = { url: frame.url(), parent: frame.parentFrame() === null ? null : {} };
  return { senderFrame } as unknown as Pick<IpcMainInvokeEvent, 'senderFrame'>;
}

async function openPerson(browser: Browser, server: StaticServer, options: PersonOptions): Promise<Person> {
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-e2e-'));
  if (options.identitySeed) writeFileSync(join(dataDir, 'identity.json'), seededIdentityFile(options.identitySeed), { mode: 0o600 });
  const core = await startCore({
    dataDir,
    ...(options.host ? { host: true } : {}),
    ...(options.historyMaxPageCount === undefined ? {} : { historyMaxPageCount: options.historyMaxPageCount }),
  });
  if (options.settings) must(await core.messenger.handlers['settings:set'](options.settings));
  const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, locale: 'en-GB', timezoneId: 'UTC', colorScheme: options.colorScheme ?? 'light' });
  // Generous for a busy 2-core machine, far below the test timeout so a failure names its step.
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const links: string[] = [];
  const pageErrors: string[] = [];
  const dialogs: string[] = [];
  let popups = 0;
  let navigations = 0;
  let closed = false;
  page.on('pageerror', (error) => pageErrors.push(error.stack ?? error.message));
  page.on('dialog', (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss().catch(() => undefined);
  });
  context.on('page', () => popups++);

  const handlers: Handlers = {
    ...core.messenger.handlers,
    'app:info': async () => ({ ok: true, value: { version: '0.0.0-e2e', protocol: PROTOCOL_VERSION, platform: process.platform } }),
    'link:open': async ({ url }) => {
      links.push(url);
      return { ok: true, value: false };
    },
    // These cores keep their keys in a plain 0600 file, never sealed (main/core/startup.ts owns
    // the passphrase flow and is tested in test/core/secrets.test.ts).
    'identity:unlock': async () => ({ ok: true, value: null }),
    'identity:setPassphrase': async () => ({ ok: false, error: { code: 'E_UNAVAILABLE', message: 'not offered in these tests' } }),
    'identity:removePassphrase': async () => ({ ok: false, error: { code: 'E_UNAVAILABLE', message: 'not offered in these tests' } }),
  };
  await page.exposeBinding('__parleyInvoke', async ({ frame }, channel: unknown, arg: unknown) => {
    // ipcRenderer.invoke on a channel nobody handles rejects; so does this.
    if (!isCommand(channel)) throw new Error(`No handler registered for '${String(channel)}'`);
    return dispatch(channel, handlers, invokeEvent(frame), arg, server.appUrl);
  });
  await page.addInitScript(installBridge, { commands: COMMANDS, events: EVENTS });
  // Headless pages always have focus: this one says it has none until a focus event.
  if (options.unfocused) {
    await page.addInitScript(() => {
      let focused = false;
      window.addEventListener('focus', () => (focused = true));
      window.addEventListener('blur', () => (focused = false));
      Document.prototype.hasFocus = () => focused;
    });
  }

  // Core events reach the page in the order they were emitted: one delivery in flight per page.
  const queue: [EventName, unknown][] = [];
  let flushing: Promise<void> | null = null;
  const flush = async () => {
    while (queue.length > 0 && !closed) {
      const batch = queue.splice(0);
      try {
        await page.evaluate((events) => (window as unknown as Partial<BridgeWindow>).__parleyDeliver?.(events), batch);
      } catch (error) {
        // A page that is (re)loading is not listening yet: in Electron those events are lost too.
        const reloading = /Execution context was destroyed|navigat/i.test(String(error));
        if (!closed && !page.isClosed() && !reloading) pageErrors.push(`event delivery failed: ${String(error)}`);
      }
    }
    flushing = null;
  };
  const unsubscribe = (Object.values(EVENTS) as EventName[]).map((event) =>
    core.messenger.on(event, (payload: Events[typeof event]) => {
      queue.push([event, payload]);
      flushing ??= flush();
    }),
  );

  if (options.clock !== undefined) {
    // Playwright stamps a clock call with this process's Date.now(), and the page's fake timers
    // run from that stamp: under a test's faked Date (screenshots.test.ts) the page's setTimeout
    // never fired. The call is made with the real Date.
    const faked = globalThis.Date;
    globalThis.Date = RealDate;
    try {
      await page.clock.setFixedTime(options.clock);
    } finally {
      globalThis.Date = faked;
    }
  }
  await page.goto(server.appUrl, { waitUntil: 'load' });
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) navigations++;
  });

  return {
    core, page, context, links, pageErrors, dialogs,
    get popups() {
      return popups;
    },
    get navigations() {
      return navigations;
    },
    violations: () => page.evaluate(() => [...(window as unknown as BridgeWindow).__cspViolations]),
    invoke: async <K extends CommandName>(channel: K, arg: Commands[K][0]) => (await dispatch(channel, handlers, invokeEvent(page.mainFrame()), arg, server.appUrl)) as Result<Commands[K][1]>,
    delivered: async () => {
      while (flushing) await flushing;
    },
    async close() {
      if (closed) return;
      closed = true;
      unsubscribe.forEach((stop) => stop());
      await context.close().catch(() => undefined);
      await core.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The usual lifecycle of a test file: one session for the file, its people closed after each
 * test. Read `.current` inside tests (it is set once beforeAll has run).
 */
export function useSession(): { readonly current: Session } {
  let session: Session | undefined;
  beforeAll(async () => {
    session = await startSession();
  });
  afterEach(async () => {
    await session?.closePeople();
  });
  afterAll(async () => {
    await session?.close();
  });
  return {
    get current(): Session {
      if (!session) throw new Error('the session starts in beforeAll');
      return session;
    },
  };
}

/** A browser and the built renderer's server, shared by the people of one test file. */
export async function startSession(): Promise<Session> {
  const [server, browser] = await Promise.all([serveRenderer(), launchChromium()]);
  const people: Person[] = [];
  const closePeople = async () => {
    // Joiners first, then hosts: nobody reconnects to a relay that is going away.
    for (const person of people.splice(0).reverse()) await person.close();
  };
  return {
    browser,
    server,
    async person(options = {}) {
      const person = await openPerson(browser, server, options);
      people.push(person);
      return person;
    },
    closePeople,
    async close() {
      await closePeople();
      await browser.close();
      await server.close();
    },
  };
}
