// `npm run dev`: Vite's dev server serves the window with styles it adds as <style> elements
// and a WebSocket back to itself for reloads. The page's policy there (DEV_CSP) lets exactly
// those through, so the window is styled and reloads; the shipped policy stays strict.
import { afterAll, describe, expect, it } from 'vitest';
import { createServer, type ViteDevServer } from 'vite';
import config from '../../electron.vite.config.ts';
import { CSP, DEV_CSP } from '../../main/window.ts';
import { launchChromium } from './chromium.ts';
import { freePort } from './flows.ts';

let server: ViteDevServer | undefined;
afterAll(async () => {
  await server?.close();
});

describe('the window under npm run dev', () => {
  it('is styled and connected to the dev server, with no policy violation, under a policy otherwise as strict', async () => {
    const renderer = (config as { renderer: { root: string; plugins: unknown[] } }).renderer;
    const port = await freePort();
    server = await createServer({ configFile: false, root: renderer.root, plugins: renderer.plugins as never, server: { host: '127.0.0.1', port, strictPort: true }, logLevel: 'silent' });
    await server.listen();
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const violations: string[] = [];
      page.on('console', (message) => {
        if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
      });
      const hmr = page.waitForEvent('websocket');
      await page.goto(`http://127.0.0.1:${port}/`);
      expect((await hmr).url()).toContain(`127.0.0.1:${port}`);
      await page.waitForFunction(() => document.querySelectorAll('style').length > 0);
      expect(await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content')).toBe(DEV_CSP);
      // The app's stylesheet is in force (not the browser's default serif).
      expect(await page.evaluate(() => getComputedStyle(document.body).fontFamily)).not.toMatch(/^"?Times/);
      expect(violations).toEqual([]);
    } finally {
      await browser.close();
    }
    // Only what the dev server needs differs from the shipped policy.
    expect(DEV_CSP.split('; ').filter((d) => !CSP.split('; ').includes(d))).toEqual(["style-src 'self' 'unsafe-inline'", "connect-src 'self' ws://localhost:* ws://127.0.0.1:*"]);
  });
});
