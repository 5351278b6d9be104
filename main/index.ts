// The Electron shell: lifecycle, the window, IPC. Thin; the work happens in main/core.
import { app, BrowserWindow, ipcMain } from 'electron';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { windowOptions, harden } from './window.ts';
import { bindIpc } from './ipc.ts';
import { PROTOCOL_VERSION } from '../relay/protocol.ts';

const rendererFile = join(import.meta.dirname, '../renderer/index.html');
const devUrl = !app.isPackaged ? process.env.ELECTRON_RENDERER_URL : undefined;
const appUrl = devUrl ?? pathToFileURL(rendererFile).href;

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  let window: BrowserWindow | null = null;

  const open = async () => {
    window = new BrowserWindow(windowOptions(join(import.meta.dirname, '../preload/index.cjs')));
    harden(window.webContents);
    window.once('ready-to-show', () => window?.show());
    window.on('closed', () => (window = null));
    await (devUrl ? window.loadURL(devUrl) : window.loadFile(rendererFile));
  };

  app.on('second-instance', () => {
    if (window?.isMinimized()) window.restore();
    window?.focus();
  });
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) void open();
  });

  void app.whenReady().then(() => {
    bindIpc(ipcMain, {
      'app:info': async () => ({ ok: true, value: { version: app.getVersion(), protocol: PROTOCOL_VERSION, platform: process.platform } }),
    }, () => appUrl);
    return open();
  });
}
