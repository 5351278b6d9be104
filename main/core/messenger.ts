// The facade that implements the contract over history, identity, connection, outbox and
// hosting. ipc.ts calls it; so do the tests, without Electron.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { AppStatus, CommandName, DiscoveredRelay, Commands, ConnectionStatus, Message, Person, Profile, RememberedRelay, Result, Settings } from '../../preload/contract.ts';
import type { Identity } from '../../relay/identity.ts';
import { openHistory } from './history/index.ts';
import { fingerprint, loadOrCreateIdentity, safetyNumber, type SecretStore } from './identity.ts';
import { connect, type Connection } from './connection.ts';
import { Outbox } from './outbox.ts';
import { sendBatch } from './send-batch.ts';
import { createInbox } from './inbox.ts';
import { Presence, people } from './directory.ts';
import { createDirectorySync } from './directory-sync.ts';
import { createAnnouncer } from './announcer.ts';
import { createReadReceipts } from './read-receipts.ts';
import { fail, ok } from './result.ts';
import { seal } from './crypto.ts';
import type { HostController } from './host.ts';
import type { Discovery } from './discovery.ts';
import { eventHub } from './events.ts';
import { err } from '../../relay/protocol.ts';

/** The identity:* commands belong to main/core/startup.ts, which opens the identity first. */
export type MessengerCommands = Exclude<CommandName, 'app:info' | 'link:open' | 'identity:unlock' | 'identity:setPassphrase' | 'identity:removePassphrase'>;
export type MessengerHandlers = { [K in MessengerCommands]: (arg: Commands[K][0]) => Promise<Result<Commands[K][1]>> };

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
}

const DEFAULT_SETTINGS: Settings = { notifications: true, theme: 'system', hostPort: 47800 };

const isDiskFull = (error: unknown) => error instanceof Error && 'code' in error && error.code === 'SQLITE_FULL';

export async function createMessenger(deps: MessengerDeps) {
  const identity: Identity = await loadOrCreateIdentity(deps.secrets);
  const history = openHistory(join(deps.dataDir, 'history.db'), deps.historyMaxPageCount === undefined ? {} : { maxPageCount: deps.historyMaxPageCount });
  const presence = new Presence();
  const events = eventHub();
  let connection: Connection | null = null;
  let sync: AppStatus['sync'] = null;
  let found: DiscoveredRelay[] = [];

  const { emit } = events;
  const current = () => connection;
  const json = <T>(key: string, fallback: T): T => {
    const text = history.getSetting(key);
    return text === undefined ? fallback : { ...fallback, ...(JSON.parse(text) as T) };
  };
  const name = () => history.getSetting('profile.name');
  const online = () => connection?.status.state === 'online';
  const status = (): AppStatus => ({ connection: connection?.status ?? { state: 'offline' }, hosting: deps.host?.info ?? null, sync });
  const profile = (): Profile | null => {
    const n = name();
    return n === undefined ? null : { userId: identity.userId, name: n, fingerprint: fingerprint(identity.idKey), secretProtection: deps.secrets.protection };
  };
  const person = (id: string): Person | undefined => people(history, presence, identity.userId, [id])[0];

  const announcer = createAnnouncer({ history, presence, me: identity.userId, emit });
  const { announce } = announcer;
  const directory = createDirectorySync({ history, presence, me: identity.userId, connection: current, announce, emit });
  const readReceipts = createReadReceipts(current);

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
      const remembered = json<{ list: RememberedRelay[] }>('relays', { list: [] }).list.filter((r) => r.address !== next.relay);
      history.setSetting('relays', JSON.stringify({ list: [{ address: next.relay, name: next.relayName, lastUsed: Date.now() }, ...remembered].slice(0, 20) }));
      void directory.sync().then(() => outbox.kick(true)).then(readReceipts.flush);
    } else {
      presence.clear();
    }
    emit('status', status());
  }

  function joinRelay(address: string, accessCode?: string): void {
    connection?.close();
    const n = name();
    if (n === undefined) throw new Error('set up a profile first');
    connection = connect({
      identity, name: n, address, ...(accessCode ? { accessCode } : {}),
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

  const stopBrowsing = deps.discovery?.browse((relays) => {
    found = relays;
    emit('relays:found', relays);
  });

  const handlers: MessengerHandlers = {
    'status:get': async () => ok(status()),
    'profile:get': async () => ok(profile()),
    'profile:setup': async ({ name: newName }) => {
      history.setSetting('profile.name', newName);
      if (online()) await connection?.request('profile:update', { name: newName });
      const p = profile();
      return p ? ok(p) : fail('E_INTERNAL', 'profile not saved');
    },
    'host:start': async ({ port, open }) => {
      if (!deps.host) return fail('E_UNAVAILABLE', 'hosting is not available here');
      if (name() === undefined) return fail('E_PROFILE', 'set up a profile first');
      const info = await deps.host.start({ port: port ?? json('settings', DEFAULT_SETTINGS).hostPort, open, relayName: `${name()}'s Parley` });
      if (!info.ok) return info;
      joinRelay(`127.0.0.1:${info.value.port}`, info.value.accessCode ?? undefined);
      emit('status', status());
      return info;
    },
    'host:stop': async () => {
      connection?.close();
      connection = null;
      await deps.host?.stop();
      emit('status', status());
      return ok(null);
    },
    'host:newCode': async () => {
      if (!deps.host?.info) return fail('E_NOT_HOSTING', 'not hosting');
      const info = await deps.host.newCode();
      // Our own connection must prove the new code on its next reconnect.
      joinRelay(`127.0.0.1:${info.port}`, info.accessCode ?? undefined);
      return ok(info);
    },
    'relay:join': async ({ address, accessCode }) => {
      if (name() === undefined) return fail('E_PROFILE', 'set up a profile first');
      try {
        joinRelay(address, accessCode);
      } catch (error) {
        return fail('E_ADDRESS', error instanceof Error ? error.message : 'bad address');
      }
      return ok(null);
    },
    'relay:leave': async () => {
      connection?.close();
      connection = null;
      emit('status', status());
      return ok(null);
    },
    'relay:remembered': async () => ok(json<{ list: RememberedRelay[] }>('relays', { list: [] }).list),
    'relay:found': async () => ok(found),
    'people:list': async () => ok(people(history, presence, identity.userId)),
    'conversation:page': async ({ peer, before, limit }) => ok(history.page(peer, before ?? null, limit ?? 50)),
    'conversation:from': async ({ peer, n, limit }) => ok(history.from(peer, n, limit ?? 50)),
    'conversation:markRead': async ({ peer, upTo }) => {
      const ids = history.markRead(peer, upTo);
      if (ids.length > 0) {
        readReceipts.add(peer, ids);
        if (online()) void readReceipts.flush();
        announce([peer]);
      }
      return ok(null);
    },
    'message:send': async ({ peer, text }) => {
      const target = history.peer(peer);
      if (!target) return fail('E_UNKNOWN_PEER', 'no such person');
      const id = randomBytes(16).toString('base64url');
      const kaKey = target.pendingKaKey ?? target.kaKey;
      let message: Message;
      try {
        message = history.addOutgoing({ id, peer, text }, (sentAt) => seal(identity, kaKey, { from: identity.userId, to: peer, id, sentAt }, text));
      } catch (error) {
        // Not saved, so not sent: the window keeps the draft and shows why.
        if (isDiskFull(error)) return fail('E_STORAGE', 'Your disk is full, so the message was not saved. Free some space and send it again.');
        throw error;
      }
      emit('message:added', message);
      announce([peer]);
      outbox.kick();
      return ok(message);
    },
    'message:retry': async ({ n }) => {
      const again = history.requeue(n);
      if (!again) return fail('E_NOT_FOUND', 'no such message');
      emit('message:updated', again);
      outbox.kick();
      return ok(again);
    },
    'typing:set': async ({ peer, typing }) => {
      connection?.typing(peer, typing);
      return ok(null);
    },
    'search:query': async ({ query }) => ok(history.search(query)),
    'peer:safety': async ({ peer }) => {
      const target = history.peer(peer);
      if (!target) return fail('E_UNKNOWN_PEER', 'no such person');
      return ok({ peer, safetyNumber: safetyNumber(identity.idKey, target.idKey), myFingerprint: fingerprint(identity.idKey), theirFingerprint: fingerprint(target.idKey), verified: target.verified });
    },
    'peer:verify': async ({ peer, verified }) => {
      history.setVerified(peer, verified);
      const p = person(peer);
      if (p) emit('person', p);
      return p ? ok(p) : fail('E_UNKNOWN_PEER', 'no such person');
    },
    'peer:acceptKey': async ({ peer }) => {
      history.acceptKeyChange(peer);
      const p = person(peer);
      if (p) emit('person', p);
      return p ? ok(p) : fail('E_UNKNOWN_PEER', 'no such person');
    },
    'settings:get': async () => ok(json('settings', DEFAULT_SETTINGS)),
    'settings:set': async (patch) => {
      const next = { ...json('settings', DEFAULT_SETTINGS), ...patch };
      history.setSetting('settings', JSON.stringify(next));
      return ok(next);
    },
  };

  return {
    identity,
    handlers,
    on: events.on,
    async close(): Promise<void> {
      stopBrowsing?.();
      outbox.stop();
      announcer.close();
      connection?.close();
      connection = null;
      await deps.host?.stop();
      await deps.discovery?.close();
      history.close();
    },
  };
}

export type Messenger = Awaited<ReturnType<typeof createMessenger>>;
