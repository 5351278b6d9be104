// Exposes one named function per command; never a channel passthrough.
import { contextBridge, ipcRenderer } from 'electron';
import type { Commands, CommandName, ParleyApi, Result } from './contract.ts';

const invoke = <K extends CommandName>(name: K, arg: Commands[K][0]): Promise<Result<Commands[K][1]>> => ipcRenderer.invoke(name, arg);

const api: ParleyApi = {
  appInfo: () => invoke('app:info', null),
};

contextBridge.exposeInMainWorld('parley', api);
