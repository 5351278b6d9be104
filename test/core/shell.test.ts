// The shell's security posture, checked without Electron.
import { describe, expect, it } from 'vitest';
import type { IpcMainInvokeEvent } from 'electron';
import { CSP, windowOptions } from '../../main/window.ts';
import { bindIpc, trustedSender, type Handlers } from '../../main/ipc.ts';
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
    const registered = new Map<string, (event: IpcMainInvokeEvent, arg: unknown) => Promise<unknown>>();
    let entered = 0;
    const handlers: Handlers = {
      'app:info': async () => {
        entered += 1;
        return { ok: true, value: { version: '1', protocol: 1, platform: 'linux' } };
      },
    };
    bindIpc({ handle: (name, fn) => registered.set(name, fn as never) }, handlers, () => APP);
    const call = registered.get('app:info')!;
    expect(await call(frame('https://evil.example/'), null)).toMatchObject({ ok: false, error: { code: 'E_SENDER' } });
    expect(await call(frame(APP), { extra: 'x'.repeat(100_000) })).toMatchObject({ ok: false, error: { code: 'E_SCHEMA' } });
    expect(entered).toBe(0);
    expect(await call(frame(APP), null)).toMatchObject({ ok: true, value: { protocol: 1 } });
    expect(entered).toBe(1);
  });
});
