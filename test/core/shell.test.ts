// The shell's security posture, checked without Electron.
import { describe, expect, it } from 'vitest';
import type { IpcMainInvokeEvent, MessageBoxOptions, Session, WebContents } from 'electron';
import { CSP, harden, windowOptions } from '../../main/window.ts';
import { OVERLAY_SIZE, overlayDescription, overlayDot } from '../../main/badge.ts';
import { APP_ID } from '../../main/notify.ts';
import { ARGUMENTS, TEXT_LIMIT, bindIpc, trustedSender, type Handlers } from '../../main/ipc.ts';
import { PASSPHRASE_MAX } from '../../main/core/passphrase.ts';
import type { CommandName, Commands } from '../../preload/contract.ts';
import { linkPolicy, openLink, type LinkOpener } from '../../main/links.ts';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const APP = 'file:///opt/Parley/resources/app/out/renderer/index.html';
const frame = (url: string, parent: object | null = null) => ({ senderFrame: { url, parent } }) as unknown as IpcMainInvokeEvent;

type Permission = Parameters<NonNullable<Parameters<Session['setPermissionRequestHandler']>[0]>>[1];
// Every permission Electron can ask about (a Record, so an Electron upgrade that adds one fails tsc here).
const PERMISSIONS: Record<Permission, true> = {
  ar: true, 'automatic-fullscreen': true, 'background-fetch': true, 'background-sync': true, 'captured-surface-control': true,
  'clipboard-read': true, 'clipboard-sanitized-write': true, 'deprecated-sync-clipboard-read': true, 'display-capture': true,
  fileSystem: true, fullscreen: true, geolocation: true, 'geolocation-approximate': true, 'hand-tracking': true, hid: true,
  'idle-detection': true, keyboardLock: true, 'local-fonts': true, 'local-network': true, 'local-network-access': true,
  'loopback-network': true, media: true, mediaKeySystem: true, midi: true, midiSysex: true, nfc: true, notifications: true,
  openExternal: true, 'payment-handler': true, 'periodic-background-sync': true, 'persistent-storage': true, pointerLock: true,
  'screen-wake-lock': true, sensors: true, serial: true, 'smart-card': true, 'speaker-selection': true, 'storage-access': true,
  'system-wake-lock': true, 'top-level-storage-access': true, usb: true, vr: true, 'web-app-installation': true,
  'web-printing': true, 'window-management': true, unknown: true,
};

/** bindIpc over handlers that only record that they were entered (and answer ok). */
function boundSpies() {
  const entered: string[] = [];
  const handlers = new Proxy({} as Handlers, {
    get: (_target, name: string) => async () => {
      entered.push(name);
      return { ok: true, value: null };
    },
  });
  const registered = new Map<string, (event: IpcMainInvokeEvent, arg: unknown) => Promise<unknown>>();
  bindIpc({ handle: (name, fn) => registered.set(name, fn as never) }, handlers, () => APP);
  return { entered, registered };
}

type Listener = (event: { preventDefault(): void }, ...args: unknown[]) => void;

/** The parts of WebContents and its Session that harden() touches, recording every handler. */
function fakeContents() {
  const listeners = new Map<string, Listener[]>();
  const handlers: {
    windowOpen: ((details: { url: string }) => unknown)[];
    permission: ((contents: unknown, permission: string, callback: (granted: boolean) => void, details: unknown) => void)[];
    check: ((contents: unknown, permission: string, origin: string, details: unknown) => boolean)[];
    headers: ((details: { responseHeaders?: Record<string, string[]> }, callback: (response: { responseHeaders?: Record<string, string[]> }) => void) => void)[];
  } = { windowOpen: [], permission: [], check: [], headers: [] };
  const contents = {
    on(name: string, listener: Listener) {
      listeners.set(name, [...(listeners.get(name) ?? []), listener]);
      return contents;
    },
    setWindowOpenHandler: (handler: (typeof handlers.windowOpen)[number]) => void handlers.windowOpen.push(handler),
    session: {
      setPermissionRequestHandler: (handler: (typeof handlers.permission)[number]) => void handlers.permission.push(handler),
      setPermissionCheckHandler: (handler: (typeof handlers.check)[number]) => void handlers.check.push(handler),
      webRequest: { onHeadersReceived: (handler: (typeof handlers.headers)[number]) => void handlers.headers.push(handler) },
    },
  };
  /** Emits like Electron: every listener for the event gets it; true when one prevented the default. */
  const emit = (name: string, ...args: unknown[]): boolean => {
    let prevented = 0;
    for (const listener of listeners.get(name) ?? []) listener({ preventDefault: () => void prevented++ }, ...args);
    return prevented > 0;
  };
  return { contents: contents as unknown as WebContents, listeners, handlers, emit };
}

describe('window', () => {
  it('runs sandboxed and isolated, without Node', () => {
    const prefs = windowOptions('/x/preload.cjs').webPreferences;
    expect(prefs).toMatchObject({ sandbox: true, contextIsolation: true, nodeIntegration: false, nodeIntegrationInSubFrames: false, webviewTag: false, webSecurity: true });
    expect(prefs).not.toHaveProperty('experimentalFeatures');
    expect(prefs).not.toHaveProperty('enableBlinkFeatures');
  });

  it('ships the strict CSP in the page too', () => {
    expect(CSP).toBe("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'none'; base-uri 'none'; form-action 'none'");
    const html = readFileSync(resolve(import.meta.dirname, '../../renderer/index.html'), 'utf8');
    expect(html).toContain(`content="${CSP}"`);
  });

  it('prevents every navigation and webview, and denies every new window', () => {
    const fake = fakeContents();
    harden(fake.contents);
    expect(fake.listeners.get('will-navigate')).toHaveLength(1);
    for (const url of ['https://evil.example/', 'file:///etc/passwd', APP, 'javascript:alert(1)']) {
      expect(fake.emit('will-navigate', { url }, url), url).toBe(true);
      expect(fake.emit('will-attach-webview', {}, { src: url }), url).toBe(true);
    }
    expect(fake.handlers.windowOpen).toHaveLength(1);
    const open = fake.handlers.windowOpen[0]!;
    for (const url of ['https://example.com/', 'about:blank', APP, 'javascript:alert(1)']) {
      expect(open({ url }), url).toEqual({ action: 'deny' });
    }
  });

  it('grants notifications and no other permission', () => {
    const fake = fakeContents();
    harden(fake.contents);
    expect(fake.handlers.permission).toHaveLength(1);
    const request = fake.handlers.permission[0]!;
    const granted: string[] = [];
    for (const permission of Object.keys(PERMISSIONS)) {
      const answers: boolean[] = [];
      request(fake.contents, permission, (answer) => answers.push(answer), { requestingUrl: APP, isMainFrame: true });
      expect(answers, permission).toHaveLength(1);
      if (answers[0]) granted.push(permission);
    }
    expect(granted).toEqual(['notifications']);
  });

  it('answers permission checks the same way: notifications only', () => {
    const fake = fakeContents();
    harden(fake.contents);
    expect(fake.handlers.check).toHaveLength(1);
    const check = fake.handlers.check[0]!;
    const granted = Object.keys(PERMISSIONS).filter((permission) => check(fake.contents, permission, APP, { requestingUrl: APP, isMainFrame: true }));
    expect(granted).toEqual(['notifications']);
  });

  it('sends the CSP with every response, keeping the other headers', () => {
    const fake = fakeContents();
    harden(fake.contents);
    expect(fake.handlers.headers).toHaveLength(1);
    const responses: unknown[] = [];
    fake.handlers.headers[0]!({ responseHeaders: { 'Content-Type': ['text/html'] } }, (response) => responses.push(response));
    expect(responses).toEqual([{ responseHeaders: { 'Content-Type': ['text/html'], 'Content-Security-Policy': [CSP] } }]);
  });
});

describe('ipc', () => {
  it('trusts only the top frame of the app page', () => {
    expect(trustedSender(frame(APP), APP)).toBe(true);
    expect(trustedSender(frame('https://evil.example/'), APP)).toBe(false);
    expect(trustedSender(frame('file:///tmp/other.html'), APP)).toBe(false);
    expect(trustedSender(frame(APP, {}), APP)).toBe(false);
    expect(trustedSender({ senderFrame: null } as unknown as IpcMainInvokeEvent, APP)).toBe(false);
  });

  it('rejects foreign senders and bad arguments before a handler runs', async () => {
    const { entered, registered } = boundSpies();
    expect([...registered.keys()].sort()).toEqual(Object.keys(ARGUMENTS).sort());

    const bad: [string, unknown][] = [
      ['message:send', { peer: 'a'.repeat(32), text: 'x'.repeat(TEXT_LIMIT + 1) }],
      ['message:send', { peer: 'not-an-id', text: 'hi' }],
      ['message:send', { peer: 'a'.repeat(32), text: 'hi', extra: true }],
      ['conversation:page', { peer: 'a'.repeat(32), limit: 10_000 }],
      ['profile:setup', { name: 'Eve\u202e' }],
      ['settings:set', { theme: 'neon' }],
      ['host:start', { port: 80, open: true }],
      ['relay:join', { address: 42 }],
      ['app:info', { anything: 1 }],
      ['identity:unlock', null],
      ['identity:unlock', { passphrase: 42 }],
      ['identity:unlock', { passphrase: '' }],
      ['identity:unlock', { passphrase: 'p'.repeat(PASSPHRASE_MAX + 1) }],
      ['identity:unlock', { passphrase: 'a fine passphrase', remember: true }],
      ['identity:setPassphrase', { passphrase: 'short' }],
      ['identity:setPassphrase', { passphrase: ['a fine passphrase'] }],
      ['identity:setPassphrase', { passphrase: 'p'.repeat(PASSPHRASE_MAX + 1) }],
      ['identity:setPassphrase', { passphrase: 'a fine passphrase', current: 12345678 }],
      ['identity:setPassphrase', { passphrase: 'a fine passphrase', current: 'p'.repeat(PASSPHRASE_MAX + 1) }],
      ['identity:setPassphrase', { passphrase: 'a fine passphrase', hint: 'dog' }],
      ['identity:removePassphrase', null],
      ['identity:removePassphrase', { current: '' }],
      ['identity:removePassphrase', { current: 12345678 }],
      ['identity:removePassphrase', { current: 'p'.repeat(PASSPHRASE_MAX + 1) }],
      ['identity:removePassphrase', { current: 'a fine passphrase', passphrase: 'a fine passphrase' }],
    ];
    for (const [name, arg] of bad) {
      expect(await registered.get(name)!(frame(APP), arg), name).toMatchObject({ ok: false, error: { code: 'E_SCHEMA' } });
    }
    for (const name of registered.keys()) {
      expect(await registered.get(name)!(frame('https://evil.example/'), null)).toMatchObject({ ok: false, error: { code: 'E_SENDER' } });
      expect(await registered.get(name)!(frame(APP, {}), null)).toMatchObject({ ok: false, error: { code: 'E_SENDER' } });
    }
    expect(entered).toEqual([]);
    expect(await registered.get('message:send')!(frame(APP), { peer: 'a'.repeat(32), text: 'hello' })).toEqual({ ok: true, value: null });
    expect(entered).toEqual(['message:send']);
    expect(await registered.get('identity:unlock')!(frame(APP), { passphrase: 'p'.repeat(PASSPHRASE_MAX) })).toEqual({ ok: true, value: null });
    expect(await registered.get('identity:setPassphrase')!(frame(APP), { passphrase: 'a fine passphrase', current: 'x' })).toEqual({ ok: true, value: null });
    expect(await registered.get('identity:removePassphrase')!(frame(APP), { current: 'a fine passphrase' })).toEqual({ ok: true, value: null });
    expect(entered).toEqual(['message:send', 'identity:unlock', 'identity:setPassphrase', 'identity:removePassphrase']);
  });
});

/** A valid argument for every command (a Record over the contract, so a new command fails tsc here until it has one). */
const VALID: { [K in CommandName]: Commands[K][0] } = {
  'app:info': null, 'status:get': null, 'profile:get': null, 'host:stop': null, 'host:newCode': null, 'relay:leave': null,
  'relay:remembered': null, 'relay:found': null, 'people:list': null, 'settings:get': null,
  'profile:setup': { name: 'Ann' },
  'host:start': { port: 47800, open: false },
  'relay:join': { address: '192.168.1.20:47800', accessCode: 'a code' },
  'conversation:page': { peer: 'a'.repeat(32), before: 10, limit: 50 },
  'conversation:from': { peer: 'a'.repeat(32), n: 3, limit: 50 },
  'conversation:firstUnread': { peer: 'a'.repeat(32) },
  'conversation:markRead': { peer: 'a'.repeat(32), upTo: 3 },
  'message:send': { peer: 'a'.repeat(32), text: 'hello' },
  'message:retry': { n: 3 },
  'conversation:clear': { peer: 'a'.repeat(32) },
  'message:delete': { n: 3 },
  'draft:save': { peer: 'a'.repeat(32), text: 'half a thought' },
  'typing:set': { peer: 'a'.repeat(32), typing: true },
  'search:query': { query: 'lunch' },
  'peer:safety': { peer: 'a'.repeat(32) },
  'peer:verify': { peer: 'a'.repeat(32), verified: true },
  'peer:acceptKey': { peer: 'a'.repeat(32) },
  'settings:set': { theme: 'dark' },
  'link:open': { url: 'https://example.org/' },
  'identity:unlock': { passphrase: 'a fine passphrase' },
  'identity:setPassphrase': { passphrase: 'a fine passphrase', current: 'the old one' },
  'identity:removePassphrase': { current: 'a fine passphrase' },
};

describe('every IPC command (C5)', () => {
  it('runs its handler for a valid argument, and for a wrong type, an extra key or a 1 MB string answers E_SCHEMA without entering it', async () => {
    const { entered, registered } = boundSpies();
    expect([...registered.keys()].sort()).toEqual(Object.keys(VALID).sort());
    const huge = 'x'.repeat(1024 * 1024);
    for (const [name, valid] of Object.entries(VALID)) {
      const call = (arg: unknown) => registered.get(name)!(frame(APP), arg);
      const bad: unknown[] = [42, 'text', [valid], { ...(valid ?? {}), unexpected: true }];
      for (const [key, value] of Object.entries(valid ?? {})) {
        if (typeof value === 'string') bad.push({ ...valid, [key]: huge });
        bad.push({ ...valid, [key]: typeof value === 'string' ? 42 : 'text' });
      }
      for (const arg of bad) expect(await call(arg), `${name} ${JSON.stringify(arg).slice(0, 80)}`).toMatchObject({ ok: false, error: { code: 'E_SCHEMA' } });
      expect(entered, name).toEqual([]);
      expect(await call(valid), name).toEqual({ ok: true, value: null });
      expect(entered.splice(0), name).toEqual([name]);
    }
  });
});

/** dialog.showMessageBox and shell.openExternal, recording calls; `answer` is the button clicked. */
function fakeOpener(answer: number) {
  const dialogs: MessageBoxOptions[] = [];
  const opened: string[] = [];
  const refused: string[] = [];
  const opener: LinkOpener = {
    showMessageBox: async (options) => {
      dialogs.push(options);
      return { response: answer };
    },
    openExternal: async (url) => void opened.push(url),
    refused: (reason) => void refused.push(reason),
  };
  return { opener, dialogs, opened, refused };
}

// A link as written -> what the confirmation must show: the full URL, and the host in punycode.
const WEB_LINKS: [string, { url: string; host: string }][] = [
  ['https://example.com/a?b=c#d', { url: 'https://example.com/a?b=c#d', host: 'example.com' }],
  ['http://example.com', { url: 'http://example.com/', host: 'example.com' }],
  ['HTTPS://Example.COM:8443/x y', { url: 'https://example.com:8443/x%20y', host: 'example.com:8443' }],
  ['https://аpple.com/login', { url: 'https://xn--pple-43d.com/login', host: 'xn--pple-43d.com' }], // Cyrillic а
  ['https://раураl.com/', { url: 'https://xn--l-7sba6dbr.com/', host: 'xn--l-7sba6dbr.com' }], // all but the l Cyrillic
  [`https://example.com/${'a'.repeat(1900)}`, { url: `https://example.com/${'a'.repeat(1900)}`, host: 'example.com' }],
];

const REFUSED_LINKS = [
  'mailto:a@b.c',
  'file:///etc/passwd',
  'file://server/share/setup.exe',
  'smb://server/share',
  '\\\\server\\share\\setup.exe',
  'ms-settings:privacy',
  'ms-msdt:/id PCWDiagnostic',
  'parley://x',
  'vscode://file/etc/passwd',
  'javascript:alert(1)',
  ' JaVaScRiPt:alert(1)',
  'data:text/html,<script>alert(1)</script>',
  'ftp://example.com/file',
  'not a url',
  '',
  `https://example.com/${'a'.repeat(10 * 1024)}`, // 10 KB
  `https://аpple.com/${'a'.repeat(10 * 1024)}`, // 10 KB, homograph host
];

describe('links', () => {
  it('lets only http(s) reach the confirmation, showing punycode hosts', () => {
    expect(linkPolicy('https://example.com/a?b=c')).toEqual({ open: true, url: 'https://example.com/a?b=c', host: 'example.com' });
    expect(linkPolicy('http://example.com')).toEqual({ open: true, url: 'http://example.com/', host: 'example.com' });
    expect(linkPolicy('https://аpple.com/')).toEqual({ open: true, url: 'https://xn--pple-43d.com/', host: 'xn--pple-43d.com' });
    for (const url of ['javascript:alert(1)', 'file:///etc/passwd', 'smb://server/share', 'ms-settings:privacy', 'mailto:a@b.c', 'parley://x', 'data:text/html,<script>', 'not a url', `https://example.com/${'a'.repeat(3000)}`]) {
      expect(linkPolicy(url).open, url).toBe(false);
    }
  });

  it('refuses every link that is not http(s) without a dialog and without opening it', async () => {
    for (const link of REFUSED_LINKS) {
      for (const answer of [0, 1]) {
        const fake = fakeOpener(answer);
        expect(await openLink(link, fake.opener), link).toBe(false);
        expect(fake.dialogs, link).toEqual([]);
        expect(fake.opened, link).toEqual([]);
        expect(fake.refused, link).toHaveLength(1);
      }
    }
  });

  it('asks before opening a web link, showing the full URL and the punycode host, Cancel by default', async () => {
    for (const [link, shown] of WEB_LINKS) {
      const fake = fakeOpener(0);
      expect(await openLink(link, fake.opener), link).toBe(true);
      expect(fake.dialogs, link).toHaveLength(1);
      const dialog = fake.dialogs[0]!;
      expect(dialog.detail, link).toBe(shown.url);
      expect(dialog.message, link).toContain(shown.host);
      for (const text of [dialog.message, dialog.detail]) expect(text, link).toMatch(/^[ -~]+$/); // printable ASCII: no look-alike letters survive
      expect(dialog.buttons?.[dialog.defaultId!], link).toBe('Cancel');
      expect(dialog.cancelId, link).toBe(dialog.defaultId);
      expect(fake.opened, link).toEqual([shown.url]);
      expect(fake.refused, link).toEqual([]);
    }
  });

  it('opens nothing when the confirmation is cancelled or dismissed', async () => {
    for (const [link] of WEB_LINKS) {
      const fake = fakeOpener(1);
      expect(await openLink(link, fake.opener), link).toBe(false);
      expect(fake.dialogs, link).toHaveLength(1);
      expect(fake.opened, link).toEqual([]);
    }
  });

  it('is the flow the shell runs for link:open', () => {
    // main/index.ts imports the Electron runtime, so check its wiring as text: link:open must
    // go through openLink (no dialog of its own for a refused link).
    const shell = readFileSync(resolve(import.meta.dirname, '../../main/index.ts'), 'utf8');
    expect(shell).toMatch(/'link:open': async \(\{ url \}\) => \(\{\s*ok: true,\s*value: await openLink\(url, /);
  });
});

describe('the window', () => {
  it('comes back for a notification click or a second launch, even after it was closed (macOS runs on without one)', () => {
    // main/index.ts imports the Electron runtime, so check its wiring as text.
    const shell = readFileSync(resolve(import.meta.dirname, '../../main/index.ts'), 'utf8');
    expect(shell).toMatch(/note\.on\('click', showWindow\)/);
    expect(shell).toMatch(/app\.on\('second-instance', showWindow\)/);
    expect(shell).toMatch(/function showWindow\(\): void \{\s*if \(!window\) \{\s*if \(messenger\) void openWindow\(\);/);
  });

  it('shows the unread count on Windows too, as a dot over the taskbar button with the count for screen readers', () => {
    const dot = overlayDot();
    expect(dot).toHaveLength(OVERLAY_SIZE * OVERLAY_SIZE * 4);
    const pixel = (x: number, y: number) => [...dot.subarray((y * OVERLAY_SIZE + x) * 4, (y * OVERLAY_SIZE + x) * 4 + 4)];
    expect(pixel(8, 8)).toEqual([0x25, 0x30, 0xd9, 255]); // the middle: red (BGRA), opaque
    expect(pixel(0, 0)).toEqual([0, 0, 0, 0]); // a corner: outside the dot, clear
    expect([overlayDescription(0), overlayDescription(1), overlayDescription(1234)]).toEqual(['', '1 unread message', '1,234 unread messages']);
    const shell = readFileSync(resolve(import.meta.dirname, '../../main/index.ts'), 'utf8');
    expect(shell).toMatch(/window\.setOverlayIcon\(dot, overlayDescription\(unreadTotal\)\)/);
    // Shown again on a window opened anew (macOS and Windows keep running without one).
    expect(shell).toMatch(/window\.on\('closed', \(\) => \(window = null\)\);\s*showBadge\(\);/);
  });

  it("has Windows show its notifications: the process's AppUserModelID is the installer's app id", () => {
    const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { build: { appId: string } };
    expect(APP_ID).toBe(pkg.build.appId);
    const shell = readFileSync(resolve(import.meta.dirname, '../../main/index.ts'), 'utf8');
    expect(shell).toMatch(/if \(process\.platform === 'win32'\) app\.setAppUserModelId\(APP_ID\);/);
  });
});
