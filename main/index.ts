// The Electron shell: lifecycle, the window, IPC, notifications. Thin; the work happens in
// main/core, which runs (and is tested) without Electron.
import { app, BrowserWindow, dialog, ipcMain, nativeImage, Notification, safeStorage, shell } from 'electron';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CSP, DEV_CSP, windowOptions, harden } from './window.ts';
import { bindIpc } from './ipc.ts';
import { openLink } from './links.ts';
import { APP_ID, createNotifier } from './notify.ts';
import { OVERLAY_SIZE, overlayDescription, overlayDot } from './badge.ts';
import { openCore, type Core } from './core/startup.ts';
import { createHost } from './core/host.ts';
import { createDiscovery } from './core/discovery.ts';
import { appSecretStore } from './core/secrets.ts';
import { PROTOCOL_VERSION } from '../relay/protocol.ts';
import { eventChannel, EVENTS, type Events, type EventName } from '../preload/contract.ts';

const rendererFile = join(import.meta.dirname, '../renderer/index.html');
const devUrl = !app.isPackaged ? process.env.ELECTRON_RENDERER_URL : undefined;
const appUrl = devUrl ?? pathToFileURL(rendererFile).href;

let window: BrowserWindow | null = null;
let messenger: Core | null = null;
let quitting = false;
/** Everyone's unread count, as last shown. */
let unreadTotal = 0;

/** The dock (macOS) or launcher (Linux) badge; on Windows, a dot over the taskbar button. */
function showBadge(): void {
  app.setBadgeCount(unreadTotal);
  if (process.platform !== 'win32' || !window) return;
  const dot = unreadTotal > 0 ? nativeImage.createFromBitmap(overlayDot(), { width: OVERLAY_SIZE, height: OVERLAY_SIZE }) : null;
  window.setOverlayIcon(dot, overlayDescription(unreadTotal));
}

async function openWindow(): Promise<void> {
  window = new BrowserWindow(windowOptions(join(import.meta.dirname, '../preload/index.cjs')));
  harden(window.webContents, devUrl ? DEV_CSP : CSP);
  window.once('ready-to-show', () => window?.show());
  window.on('closed', () => (window = null));
  showBadge();
  await (devUrl ? window.loadURL(devUrl) : window.loadFile(rendererFile));
}

/** Closes the window, if there is one; settles once it is gone (or after 2 s). */
function closeWindow(): Promise<void> {
  const closing = window;
  if (!closing) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 2_000);
    closing.once('closed', () => {
      clearTimeout(timer);
      // A turn more for what the page sent as it went.
      setImmediate(resolve);
    });
    closing.close();
  });
}

/** Brings the window forward; opens it again if it was closed (on macOS the app runs on without one). */
function showWindow(): void {
  if (!window) {
    if (messenger) void openWindow();
    return;
  }
  if (window.isMinimized()) window.restore();
  window.show();
  window.focus();
}

async function start(): Promise<void> {
  const dataDir = app.getPath('userData');
  const discovery = createDiscovery({}, (error) => console.warn('LAN discovery unavailable:', error.message));
  // A passphrase-sealed identity leaves the core locked until the window sends identity:unlock.
  const core = await openCore({
    dataDir,
    secrets: appSecretStore(safeStorage, dataDir),
    host: createHost({ dataDir, advertise: discovery.advertise }),
    discovery,
  });
  messenger = core;

  bindIpc(ipcMain, {
    ...core.handlers,
    'app:info': async () => ({ ok: true, value: { version: app.getVersion(), protocol: PROTOCOL_VERSION, platform: process.platform } }),
    'link:open': async ({ url }) => ({
      ok: true,
      value: await openLink(url, {
        // Parented, so the question sits on the window it came from (modal on macOS).
        showMessageBox: (options) => (window ? dialog.showMessageBox(window, options) : dialog.showMessageBox(options)),
        openExternal: (link) => shell.openExternal(link),
        refused: (reason) => console.warn('link refused:', reason),
      }),
    }),
  }, () => appUrl);

  for (const event of Object.values(EVENTS) as EventName[]) {
    core.on(event, (payload: Events[typeof event]) => window?.webContents.send(eventChannel(event), payload));
  }

  // The dock/taskbar badge: everyone's unread count, as the window's 'person' events tell it;
  // read whole at the start and when the connection changes (a locked core answers only once unlocked).
  const unread = new Map<string, number>();
  const showUnread = () => {
    unreadTotal = [...unread.values()].reduce((sum, n) => sum + n, 0);
    showBadge();
  };
  const readUnread = async () => {
    const everyone = await core.handlers['people:list'](null);
    if (everyone.ok) everyone.value.forEach((p) => unread.set(p.id, p.unread));
    showUnread();
  };
  await readUnread();
  let lastState: string | undefined;
  core.on('status', (status) => {
    if (status.connection.state === lastState) return; // not at every backlog progress step
    lastState = status.connection.state;
    void readUnread();
  });
  core.on('person', (p) => {
    unread.set(p.id, p.unread);
    showUnread();
  });

  const notifier = createNotifier({
    platform: process.platform,
    names: async () => {
      const people = await core.handlers['people:list'](null);
      return new Map(people.ok ? people.value.map((p) => [p.id, p.name]) : []);
    },
    show: (text) => {
      const note = new Notification(text);
      note.on('click', showWindow);
      note.show();
    },
  });
  core.on('message:added', async (message) => {
    if (message.direction !== 'in' || window?.isFocused() || !Notification.isSupported()) return;
    const settings = await core.handlers['settings:get'](null);
    if (settings.ok && settings.value.notifications) notifier.add(message);
  });

  app.on('before-quit', (event) => {
    if (quitting) return;
    event.preventDefault();
    quitting = true;
    notifier.close();
    // The window first: as it goes, it sends the drafts typed in its last moment, which the
    // core must still be open to keep (renderer/src/state/app.svelte.ts).
    void closeWindow().then(() => core.close()).finally(() => app.quit());
  });

  await openWindow();
}

if (process.platform === 'win32') app.setAppUserModelId(APP_ID);

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', showWindow);
  app.on('window-all-closed', () => {
    // While quitting, the window closes before the core does, and the quit goes on from there.
    if (process.platform !== 'darwin' && !quitting) app.quit();
  });
  app.on('activate', () => {
    if (messenger && BrowserWindow.getAllWindows().length === 0) void openWindow();
  });
  void app.whenReady().then(start).catch((error: unknown) => {
    dialog.showErrorBox('Parley could not start', error instanceof Error ? error.message : String(error));
    app.exit(1);
  });
}
