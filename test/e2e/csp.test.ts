// The shipped Content-Security-Policy is in force: the page as built carries it, normal use
// never trips it, and whatever tries to reach the network, run inline code or code made from
// strings, or load foreign content from the page is refused and reported.
import { describe, expect, it } from 'vitest';
import { CSP } from '../../main/window.ts';
import { useSession } from './bridge.ts';
import { expectHealthy, firstRun, joinRelay, useServerRelay } from './flows.ts';

const POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'none'; base-uri 'none'; form-action 'none'";

const session = useSession();
const relay = useServerRelay({ name: 'Lab relay' });

describe('the content security policy', () => {
  it('is the shipped policy, and normal use never violates it', async () => {
    const ada = await session.current.person();
    const meta = ada.page.locator('meta[http-equiv="Content-Security-Policy"]');
    expect(await meta.count()).toBe(1);
    expect(await meta.getAttribute('content')).toBe(POLICY);
    // The same policy main/window.ts sends as a header in the app.
    expect(CSP).toBe(POLICY);

    await firstRun(ada, 'Ada Lovelace');
    await joinRelay(ada, relay.current.address);
    await ada.page.getByTestId('open-settings').click();
    await ada.page.getByTestId('settings-dialog').getByText('Dark', { exact: true }).click();
    await ada.page.locator('html[data-theme="dark"]').waitFor({ state: 'attached' });
    await ada.page.keyboard.press('Escape');
    expect(await ada.page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    await expectHealthy(ada);
  });

  it('blocks network access, inline code and foreign content from the page', async () => {
    const ada = await session.current.person();
    await ada.page.getByTestId('profile-setup').waitFor();
    const relayUrl = `http://127.0.0.1:${relay.current.port}`;
    const probe = `${session.current.server.origin}/csp-probe`;

    const outcome = await ada.page.evaluate(async ({ relayUrl, probe }) => {
      const refused = (promise: Promise<unknown>) => promise.then(() => 'allowed', (error: unknown) => String(error));
      const fetchHello = await refused(fetch(`${relayUrl}/parley/hello`));
      const fetchProbe = await refused(fetch(probe));
      const socket = await new Promise<string>((resolve) => {
        try {
          const ws = new WebSocket(`${relayUrl.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
          ws.onopen = () => resolve('open');
          ws.onerror = () => resolve('error');
        } catch (error) {
          resolve(String(error));
        }
      });
      const inline = document.createElement('script');
      inline.textContent = 'window.__pwned = 1';
      document.head.append(inline);
      const external = document.createElement('script');
      external.src = `${relayUrl}/parley/hello`;
      document.head.append(external);
      const image = document.createElement('img');
      image.src = `${relayUrl}/parley/hello`;
      document.body.append(image);
      const frame = document.createElement('iframe');
      frame.src = `${relayUrl}/parley/hello`;
      document.body.append(frame);
      // A srcdoc frame inherits the policy: its inline script is refused (reported in the frame).
      const srcdoc = document.createElement('iframe');
      srcdoc.srcdoc = '<script>parent.__pwned = 1</script>';
      document.body.append(srcdoc);
      const styled = document.createElement('div');
      styled.setAttribute('style', 'color: red');
      document.body.append(styled);
      // Violation reports are dispatched as tasks: give them a few frames to arrive.
      for (let i = 0; i < 5; i++) await new Promise((resolve) => requestAnimationFrame(resolve));
      return { fetchHello, fetchProbe, socket, pwned: '__pwned' in window, styled: getComputedStyle(styled).color };
    }, { relayUrl, probe });

    expect(outcome.fetchHello).toMatch(/TypeError/);
    expect(outcome.fetchProbe).toMatch(/TypeError/);
    expect(outcome.socket).not.toBe('open');
    expect(outcome.pwned).toBe(false);
    expect(outcome.styled).not.toBe('rgb(255, 0, 0)');
    expect(session.current.server.requests).not.toContain('/csp-probe');

    await expect.poll(async () => (await ada.violations()).map((v) => v.directive).sort(), { timeout: 5000 }).toEqual(
      ['connect-src', 'connect-src', 'connect-src', 'frame-src', 'img-src', 'script-src-elem', 'script-src-elem', 'style-src-attr'].sort(),
    );
    const blocked = (await ada.violations()).map((v) => `${v.directive} ${v.blocked}`);
    expect(blocked).toEqual(expect.arrayContaining([
      `connect-src ${relayUrl}/parley/hello`,
      `connect-src ${probe}`,
      `script-src-elem inline`,
      `img-src ${relayUrl}/parley/hello`,
    ]));
  });

  it('blocks and reports code made from strings (eval, new Function, string timers)', async () => {
    const ada = await session.current.person();
    await ada.page.getByTestId('profile-setup').waitFor();
    const before = (await ada.violations()).length;

    const outcome = await ada.page.evaluate(async () => {
      const attempt = (run: () => unknown) => {
        try {
          run();
          return 'allowed';
        } catch (error) {
          return error instanceof Error ? error.name : String(error);
        }
      };
      // From a task of the page's own, as its scripts would: code that DevTools evaluates
      // (this function's first turn) may compile strings whatever the policy says.
      const tried = await new Promise<{ evaluated: string; constructed: string }>((resolve) => setTimeout(() => resolve({
        evaluated: attempt(() => (0, eval)('window.__pwned = "eval"')),
        constructed: attempt(() => new Function('window.__pwned = "Function"')()),
      }), 0));
      // A string handler is compiled later, as a task: it must never run either.
      setTimeout('window.__pwned = "setTimeout"' as unknown as () => void, 0);
      for (let i = 0; i < 5; i++) await new Promise((resolve) => requestAnimationFrame(resolve));
      return { ...tried, pwned: (window as { __pwned?: unknown }).__pwned ?? null };
    });

    expect(outcome).toEqual({ evaluated: 'EvalError', constructed: 'EvalError', pwned: null });
    // Each attempt is reported, as a script-src violation of the page's policy with blockedURI "eval".
    await expect.poll(async () => (await ada.violations()).slice(before).map((v) => `${v.directive} ${v.blocked}`), { timeout: 5000 }).toEqual(
      ['script-src eval', 'script-src eval', 'script-src eval'],
    );
    expect(ada.pageErrors).toEqual([]);
    expect(ada.dialogs).toEqual([]);
  });
});
