// Test support: real messenger cores (main/core) with their own data folders, recording
// every event they emit, as the window would see them.
import { join } from 'node:path';
import { createMessenger, type Messenger } from '../../main/core/messenger.ts';
import { fileSecretStore } from '../../main/core/identity.ts';
import { createHost } from '../../main/core/host.ts';
import type { AppStatus, Events, Message, Person, Result } from '../../preload/contract.ts';
import { eventually, tempDir } from './relay.ts';

export interface TestCore {
  messenger: Messenger;
  dataDir: string;
  id: string;
  statuses: AppStatus[];
  added: Message[];
  updated: Message[];
  persons: Person[];
  removed: Events['message:removed'][];
  cleared: Events['conversation:cleared'][];
  /** Closes the core (its hosted relay too). */
  close(): Promise<void>;
}

export async function startCore(options: { name?: string; dataDir?: string; host?: boolean; historyMaxPageCount?: number; now?: () => number } = {}): Promise<TestCore> {
  const dataDir = options.dataDir ?? tempDir('parley-core-').path;
  const messenger = await createMessenger({
    dataDir,
    secrets: fileSecretStore(join(dataDir, 'identity.json')),
    ...(options.host ? { host: createHost({ dataDir, host: '127.0.0.1' }) } : {}),
    reconnectMinMs: 100,
    ...(options.historyMaxPageCount === undefined ? {} : { historyMaxPageCount: options.historyMaxPageCount }),
    ...(options.now ? { now: options.now } : {}),
  });
  const core: TestCore = {
    messenger, dataDir, id: messenger.identity.userId,
    statuses: [], added: [], updated: [], persons: [], removed: [], cleared: [],
    close: () => messenger.close(),
  };
  messenger.on('status', (s) => core.statuses.push(s));
  messenger.on('message:added', (m) => core.added.push(m));
  messenger.on('message:updated', (m) => core.updated.push(m));
  messenger.on('person', (p) => core.persons.push(p));
  messenger.on('message:removed', (r) => core.removed.push(r));
  messenger.on('conversation:cleared', (c) => core.cleared.push(c));
  if (options.name) must(await messenger.handlers['profile:setup']({ name: options.name }));
  return core;
}

export function must<T>(result: Result<T>): T {
  if (!result.ok) throw new Error(`${result.error.code}: ${result.error.message}`);
  return result.value;
}

export const online = (core: TestCore) =>
  eventually(() => core.statuses.at(-1)?.connection.state === 'online', 'core online', 10_000);

/** Waits until `core` knows `peer` (the directory sync or a presence update brought them). */
export const knows = (core: TestCore, peer: string) =>
  eventually(async () => must(await core.messenger.handlers['people:list'](null)).find((p) => p.id === peer), `knows ${peer}`, 10_000);

/** The conversation with `peer` as `core` stores it, oldest first. */
export async function conversation(core: TestCore, peer: string): Promise<Message[]> {
  return must(await core.messenger.handlers['conversation:page']({ peer, limit: 500 }));
}
