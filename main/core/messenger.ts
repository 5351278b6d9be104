// The facade that implements the contract over history, identity, connection, outbox and
// hosting. ipc.ts calls it; so do the tests, without Electron.
import { join } from 'node:path';
import type { AppStatus, ConnectionStatus, DiscoveredRelay } from '../../preload/contract.ts';
import type { Identity } from '../../relay/identity.ts';
import { err } from '../../relay/protocol.ts';
import { openHistory } from './history/index.ts';
import { loadOrCreateIdentity, type SecretStore } from './identity.ts';
import { relayBaseUrl } from '../../relay/handshake.ts';
import { connect, type Connection } from './connection.ts';
import { Outbox } from './outbox.ts';
import { sendBatch } from './send-batch.ts';
import { createInbox } from './inbox.ts';
import { Presence } from './directory.ts';
import { createDirectorySync } from './directory-sync.ts';
import { createAnnouncer } from './announcer.ts';
import { createReadReceipts } from './read-receipts.ts';
import { messengerHandlers } from './messenger-handlers.ts';
import { profileName, rememberRelay } from './settings.ts';
import type { HostController } from './host.ts';
import type { Discovery } from './discovery.ts';
import { eventHub } from './events.ts';

export interface MessengerDeps {
  /** Folder for history.db (and the hosted relay's data). */
  dataDir: string;
  secrets: SecretStore;
  host?: HostController;
  /** LAN discovery: found relays are reported as 'relays:found'. */
  discovery?: Discovery;
  /** Reconnect backoff floor; tests shorten it. */
  reconnectMinMs?: number;
  /** A cap on history.db's size in pages, as on a full disk (openHistory); tests set it. */
  historyMaxPageCount?: number;
  /** The wall clock that stamps messages (sent, created, read); tests skew it. Default Date.now. */
  now?: () => number;
}

export async function createMessenger(deps: MessengerDeps) {
  const identity: Identity = await loadOrCreateIdentity(deps.secrets);
  const history = openHistory(join(deps.dataDir, 'history.db'), {
    ...(deps.historyMaxPageCount === undefined ? {} : { maxPageCount: deps.historyMaxPageCount }),
    ...(deps.now ? { now: deps.now } : {}),
  });
  const presence = new Presence();
  const events = eventHub();
  let connection: Connection | null = null;
  let sync: AppStatus['sync'] = null;
  let found: DiscoveredRelay[] = [];

  const { emit } = events;
  const current = () => connection;
  const online = () => connection?.status.state === 'online';
  const status = (): AppStatus => ({ connection: connection?.status ?? { state: 'offline' }, hosting: deps.host?.info ?? null, sync });

  const announcer = createAnnouncer({ history, presence, me: identity.userId, emit });
  const { announce } = announcer;
  const directory = createDirectorySync({ history, presence, me: identity.userId, connection: current, announce, named: announcer.named, emit });
  const readReceipts = createReadReceipts(history, current);

  const outbox = new Outbox({
    history,
    online,
    send: (batch) => sendBatch(connection, batch),
    updated: (m) => emit('message:updated', m),
  });

  const inbox = createInbox({
    identity,
    history,
    seePeer: directory.seePeer,
    lookup: (ids) => connection?.request('directory:get', { ids }) ?? Promise.resolve(err('E_UNAVAILABLE', 'offline')),
    added: (messages) => {
      for (const m of messages) emit('message:added', m);
      announce(messages.map((m) => m.peer));
    },
    updated: (messages) => messages.forEach((m) => emit('message:updated', m)),
    progress: (received) => {
      sync = received > 0 ? { received } : null;
      emit('status', status());
    },
  });

  function onStatus(next: ConnectionStatus): void {
    if (next.state === 'online') {
      rememberRelay(history, next);
      void directory.sync().then(() => outbox.kick(true)).then(readReceipts.flush);
    } else {
      // The window shows them as offline too: nobody is known to be online any more.
      announce(presence.clear((deps.now ?? Date.now)()));
    }
    emit('status', status());
  }

  function joinRelay(address: string, accessCode?: string): void {
    if (profileName(history) === undefined) throw new Error('set up a profile first');
    // A mistyped address is refused before the relay in use is left.
    relayBaseUrl(address);
    connection?.close();
    connection = connect({
      // Read at every handshake: the relay takes the name it carries (PROTOCOL.md 5.1).
      identity, name: () => profileName(history) ?? '', address, ...(accessCode ? { accessCode } : {}),
      ...(deps.reconnectMinMs ? { minDelayMs: deps.reconnectMinMs, maxDelayMs: deps.reconnectMinMs * 8 } : {}),
      handlers: {
        status: onStatus,
        deliver: inbox,
        presence: directory.presenceUpdated,
        typing: (t) => emit('typing', { peer: t.from, typing: t.typing }),
        directoryChanged: directory.changed,
      },
    });
    emit('status', status());
  }

  function disconnect(): void {
    connection?.close();
    connection = null;
  }

  const stopBrowsing = deps.discovery?.browse((relays) => {
    found = relays;
    emit('relays:found', relays);
  });

  const handlers = messengerHandlers({
    identity, secrets: deps.secrets, history, presence, host: deps.host,
    emit, announce, outbox, readReceipts, status, online,
    connection: current, joinRelay, disconnect,
    found: () => found,
  });

  return {
    identity,
    handlers,
    on: events.on,
    async close(): Promise<void> {
      stopBrowsing?.();
      outbox.stop();
      readReceipts.close();
      announcer.close();
      disconnect();
      await deps.host?.stop();
      await deps.discovery?.close();
      history.close();
    },
  };
}

export type Messenger = Awaited<ReturnType<typeof createMessenger>>;
