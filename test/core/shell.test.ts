// The shell's security posture, checked without Electron.
import { describe, expect, it } from 'vitest';
import type { IpcMainInvokeEvent } from 'electron';
import { CSP, windowOptions } from '../../main/window.ts';
import { ARGUMENTS, TEXT_LIMIT, bindIpc, trustedSender, type Handlers } from '../../main/ipc.ts';
import { linkPolicy } from '../../main/links.ts';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const APP = 'file:///opt/Parley/resources/app/out/renderer/index.html';
const frame = (url: string, parent: object | null = null) => ({ senderFrame: { url, parent } }) as unknown as IpcMainInvokeEvent;

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
    const entered: string[] = [];
    const handlers = new Proxy({} as Handlers, {
      get: (_target, name: string) => async () => {
        entered.push(name);
        return { ok: true, value: null };
      },
    });
    const registered = new Map<string, (event: IpcMainInvokeEvent, arg: unknown) => Promise<unknown>>();
    bindIpc({ handle: (name, fn) => registered.set(name, fn as never) }, handlers, () => APP);
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
  });
});

describe('links', () => {
  it('lets only http(s) reach the confirmation, showing punycode hosts', () => {
    expect(linkPolicy('https://example.com/a?b=c')).toEqual({ open: true, url: 'https://example.com/a?b=c' });
    expect(linkPolicy('http://example.com')).toEqual({ open: true, url: 'http://example.com/' });
    expect(linkPolicy('https://аpple.com/')).toEqual({ open: true, url: 'https://xn--pple-43d.com/' });
    for (const url of ['javascript:alert(1)', 'file:///etc/passwd', 'smb://server/share', 'ms-settings:privacy', 'mailto:a@b.c', 'parley://x', 'data:text/html,<script>', 'not a url', `https://example.com/${'a'.repeat(3000)}`]) {
      expect(linkPolicy(url).open, url).toBe(false);
    }
  });
});
