// Exposes one named function per command and one subscription per event; never a channel
// passthrough. Every subscription returns a working unsubscribe.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { COMMANDS, EVENTS, eventChannel, type ParleyApi } from './contract.ts';

const api: Record<string, unknown> = {};
for (const [method, channel] of Object.entries(COMMANDS)) {
  api[method] = (arg?: unknown) => ipcRenderer.invoke(channel, arg ?? null);
}
for (const [method, event] of Object.entries(EVENTS)) {
  api[method] = (listener: (payload: unknown) => void) => {
    const wrapped = (_event: IpcRendererEvent, payload: unknown) => listener(payload);
    ipcRenderer.on(eventChannel(event), wrapped);
    return () => void ipcRenderer.removeListener(eventChannel(event), wrapped);
  };
}

contextBridge.exposeInMainWorld('parley', Object.freeze(api) as ParleyApi);
