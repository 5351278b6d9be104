// The window's security posture, exported so tests check it without Electron.
import type { BrowserWindowConstructorOptions, WebContents } from 'electron';

/** The production page's Content-Security-Policy (also set as a <meta> in renderer/index.html). */
export const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'none'; base-uri 'none'; form-action 'none'";

/**
 * The same under `npm run dev`, where Vite's dev server adds the styles as <style> elements and
 * reloads the page over a WebSocket to itself: nothing else is allowed that CSP refuses.
 */
export const DEV_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'").replace("connect-src 'none'", "connect-src 'self' ws://localhost:* ws://127.0.0.1:*");

export function windowOptions(preloadPath: string): BrowserWindowConstructorOptions {
  return {
    width: 1100,
    height: 720,
    minWidth: 640,
    minHeight: 420,
    show: false,
    title: 'Parley',
    webPreferences: {
      preload: preloadPath,
      sandbox: true,
      contextIsolation: true,
      nodeIntegration: false,
      nodeIntegrationInSubFrames: false,
      webviewTag: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      spellcheck: true,
    },
  };
}

/** The one permission the window may have: to show notifications. */
const allowed = (permission: string) => permission === 'notifications';

/** Denies navigation, new windows and every permission but notifications (asked for or only checked); sends `csp` with every response. */
export function harden(contents: WebContents, csp = CSP): void {
  contents.on('will-navigate', (event) => event.preventDefault());
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  contents.session.setPermissionRequestHandler((_contents, permission, callback) => callback(allowed(permission)));
  // Checks (navigator.permissions.query, some APIs' silent checks) are answered the same way.
  contents.session.setPermissionCheckHandler((_contents, permission) => allowed(permission));
  contents.session.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [csp] } });
  });
}
