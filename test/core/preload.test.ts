// The preload's surface (RELIABILITY C7): what the page gets through contextBridge, with a
// fake Electron that records every call, since the real one cannot run here.
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { COMMANDS, EVENTS, eventChannel } from '../../preload/contract.ts';

const electron = vi.hoisted(() => {
  const exposed: [string, unknown][] = [];
  // Every ipcRenderer method the preload touches, by name and arguments.
  const ipcCalls: [string, unknown[]][] = [];
  const ipcRenderer = new Proxy({}, {
    get: (_target, name) => (...args: unknown[]) => {
      ipcCalls.push([String(name), args]);
      return name === 'invoke' ? Promise.resolve({ ok: true, value: null }) : undefined;
    },
  });
  const contextBridge = { exposeInMainWorld: (key: string, api: unknown) => void exposed.push([key, api]) };
  return { exposed, ipcCalls, ipcRenderer, contextBridge };
});
vi.mock('electron', () => ({ contextBridge: electron.contextBridge, ipcRenderer: electron.ipcRenderer }));

let api: Record<string, unknown>;
let callsWhileLoading: [string, unknown[]][];

beforeAll(async () => {
  await import('../../preload/index.ts');
  callsWhileLoading = [...electron.ipcCalls];
  api = (electron.exposed.find(([key]) => key === 'parley')?.[1] ?? {}) as Record<string, unknown>;
});

beforeEach(() => {
  electron.ipcCalls.length = 0;
});

const call = (name: string, ...args: unknown[]): unknown => (api[name] as (...args: unknown[]) => unknown)(...args);

describe('preload', () => {
  it('exposes one frozen object, window.parley, and touches no IPC while loading', () => {
    expect(electron.exposed.map(([key]) => key)).toEqual(['parley']);
    expect(Object.isFrozen(api)).toBe(true);
    expect(Object.getPrototypeOf(api)).toBe(Object.prototype);
    expect(callsWhileLoading).toEqual([]);
  });

  it('offers exactly the commands and subscriptions of the contract, each a function', () => {
    expect(Object.keys(api).sort()).toEqual([...Object.keys(COMMANDS), ...Object.keys(EVENTS)].sort());
    for (const [name, value] of Object.entries(api)) expect(typeof value, name).toBe('function');
    for (const passthrough of ['ipcRenderer', 'invoke', 'sendSync', 'postMessage', 'on', 'once', 'off', 'removeListener', 'emit', 'electron', 'require', 'process']) {
      expect(api, passthrough).not.toHaveProperty(passthrough);
    }
  });

  it('gives each command its own channel, whatever the page passes', async () => {
    // 'send' is the message:send command, not a channel passthrough: a channel name passed to it
    // (or to any command) travels as the argument, to the command's own channel.
    for (const [name, channel] of Object.entries(COMMANDS)) {
      for (const args of [[], [null], [{ peer: 'x' }], ['app:info'], ['event:status', { x: 1 }]]) {
        electron.ipcCalls.length = 0;
        await call(name, ...args);
        expect(electron.ipcCalls, `${name}(${JSON.stringify(args)})`).toEqual([['invoke', [channel, args[0] ?? null]]]);
      }
    }
  });

  it('subscribes each event on its own channel, hides the IPC event, and unsubscribes', () => {
    for (const [name, event] of Object.entries(EVENTS)) {
      electron.ipcCalls.length = 0;
      const payloads: unknown[][] = [];
      const unsubscribe = call(name, (...args: unknown[]) => payloads.push(args), 'app:info');
      expect(electron.ipcCalls, name).toHaveLength(1);
      const [method, [channel, wrapped]] = electron.ipcCalls[0]! as [string, [string, (...args: unknown[]) => void]];
      expect([method, channel], name).toEqual(['on', eventChannel(event)]);

      // The page's listener sees the payload only, never the IpcRendererEvent (and its sender).
      wrapped({ sender: electron.ipcRenderer, senderId: 0 }, { hello: name });
      expect(payloads, name).toEqual([[{ hello: name }]]);

      expect(typeof unsubscribe, name).toBe('function');
      (unsubscribe as () => void)();
      expect(electron.ipcCalls.slice(1), name).toEqual([['removeListener', [eventChannel(event), wrapped]]]);
    }
  });
});
