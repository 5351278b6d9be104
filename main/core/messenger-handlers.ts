// The messenger's side of the contract: one handler per command, each answering a Result.
import { randomBytes } from 'node:crypto';
import type { AppStatus, CommandName, Commands, DiscoveredRelay, Message, Person, Profile, Result } from '../../preload/contract.ts';
import type { Identity } from '../../relay/identity.ts';
import { LIMITS } from '../../relay/protocol.ts';
import type { Connection } from './connection.ts';
import { seal } from './crypto.ts';
import { people, type Presence } from './directory.ts';
import type { EventHub } from './events.ts';
import type { History } from './history/index.ts';
import type { HostController } from './host.ts';
import { fingerprint, safetyNumber, type SecretStore } from './identity.ts';
import type { Outbox } from './outbox.ts';
import type { ReadReceipts } from './read-receipts.ts';
import { fail, ok } from './result.ts';
import { changeSettings, profileName, rememberedRelays, settingsOf } from './settings.ts';

/** The identity:* commands belong to main/core/startup.ts, which opens the identity first. */
export type MessengerCommands = Exclude<CommandName, 'app:info' | 'link:open' | 'identity:unlock' | 'identity:setPassphrase' | 'identity:removePassphrase'>;
export type MessengerHandlers = { [K in MessengerCommands]: (arg: Commands[K][0]) => Promise<Result<Commands[K][1]>> };

export interface HandlerDeps {
  identity: Identity;
  secrets: SecretStore;
  history: History;
  presence: Presence;
  host?: HostController;
  emit: EventHub['emit'];
  announce: (ids: Iterable<string>) => void;
  outbox: Pick<Outbox, 'kick' | 'sending'>;
  readReceipts: ReadReceipts;
  status: () => AppStatus;
  online: () => boolean;
  /** The connection to a relay, if any. */
  connection: () => Connection | null;
  /** Connects to a relay in place of the current one; throws on a bad address. */
  joinRelay: (address: string, accessCode?: string) => void;
  /** Closes the connection and forgets it. */
  disconnect: () => void;
  /** The relays found on the LAN lately. */
  found: () => DiscoveredRelay[];
}

const isDiskFull = (error: unknown) => error instanceof Error && 'code' in error && error.code === 'SQLITE_FULL';

/** A message whose sealed body is over the relay's limit: thrown before it is stored. */
class TooLong extends Error {
  readonly bytes: number;
  constructor(bytes: number) {
    super('sealed body over the relay limit');
    this.bytes = bytes;
  }
}
const kb = (bytes: number) => Math.ceil(bytes / 1024);
/** Messages deleted per step when a conversation is cleared: other calls are answered between steps. */
const CLEAR_STEP = 2_000;

export function messengerHandlers(deps: HandlerDeps): MessengerHandlers {
  const { identity, history, presence, emit, announce, outbox, status, online, connection, joinRelay, disconnect } = deps;
  const name = () => profileName(history);
  const profile = (): Profile | null => {
    const n = name();
    return n === undefined ? null : { userId: identity.userId, name: n, fingerprint: fingerprint(identity.idKey), secretProtection: deps.secrets.protection };
  };
  const person = (id: string): Person | undefined => people(history, presence, identity.userId, [id])[0];
  /** The connection is to the relay this app hosts: on this computer (loopback or one of its addresses), at its port. */
  const onHostedRelay = (): boolean => {
    const hosting = deps.host?.info;
    const current = connection()?.status;
    if (!hosting || !current || current.state === 'offline') return false;
    const here = [...hosting.addresses, ...['127.0.0.1', 'localhost', '[::1]'].map((host) => `${host}:${hosting.port}`)];
    return here.includes(current.relay);
  };

  return {
    'status:get': async () => ok(status()),
    'profile:get': async () => ok(profile()),
    'profile:setup': async ({ name: newName }) => {
      history.setSetting('profile.name', newName);
      if (online()) await connection()?.request('profile:update', { name: newName });
      const p = profile();
      return p ? ok(p) : fail('E_INTERNAL', 'profile not saved');
    },
    'host:start': async ({ port, open }) => {
      if (!deps.host) return fail('E_UNAVAILABLE', 'hosting is not available here');
      if (name() === undefined) return fail('E_PROFILE', 'set up a profile first');
      const info = await deps.host.start({ port: port ?? settingsOf(history).hostPort, open, relayName: `${name()}'s Parley` });
      if (!info.ok) return info;
      joinRelay(`127.0.0.1:${info.value.port}`, info.value.accessCode ?? undefined);
      emit('status', status());
      return info;
    },
    'host:stop': async () => {
      // Someone else's relay the user joined meanwhile stays joined.
      if (onHostedRelay()) disconnect();
      await deps.host?.stop();
      emit('status', status());
      return ok(null);
    },
    'host:newCode': async () => {
      if (!deps.host?.info) return fail('E_NOT_HOSTING', 'not hosting');
      // Asked before the new code: whether our connection is to our own relay.
      const ours = onHostedRelay();
      const info = await deps.host.newCode();
      // Our own connection must prove the new code on its next reconnect; someone else's relay
      // the user joined meanwhile stays joined.
      if (ours) joinRelay(`127.0.0.1:${info.port}`, info.accessCode ?? undefined);
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
      disconnect();
      emit('status', status());
      return ok(null);
    },
    'relay:remembered': async () => ok(rememberedRelays(history)),
    'relay:found': async () => ok(deps.found()),
    'people:list': async () => ok(people(history, presence, identity.userId)),
    'conversation:page': async ({ peer, before, limit }) => ok(history.page(peer, before ?? null, limit ?? 50)),
    'conversation:from': async ({ peer, n, limit }) => ok(history.from(peer, n, limit ?? 50)),
    'conversation:firstUnread': async ({ peer }) => ok(history.firstUnread(peer)),
    'conversation:markRead': async ({ peer, upTo }) => {
      if (history.markRead(peer, upTo) > 0) {
        if (online()) void deps.readReceipts.flush();
        announce([peer]);
      }
      return ok(null);
    },
    'conversation:clear': async ({ peer }) => {
      if (!history.peer(peer)) return fail('E_UNKNOWN_PEER', 'no such person');
      const upTo = history.newest(peer);
      if (upTo === null) return ok({ removed: 0 });
      let removed = 0;
      let through = 0;
      try {
        for (;;) {
          const step = history.clear(peer, upTo, CLEAR_STEP);
          removed += step.count;
          through = Math.max(through, step.through);
          if (step.count < CLEAR_STEP) break;
          await new Promise((resolve) => setImmediate(resolve));
        }
      } catch (error) {
        if (!isDiskFull(error)) throw error;
        // The steps before this one are done: the window shows what is left.
        if (removed > 0) {
          emit('conversation:cleared', { peer, upTo: through });
          announce([peer]);
        }
        return fail('E_STORAGE', 'Your disk is full, so not all of the conversation was deleted. Free some space and try again.');
      }
      emit('conversation:cleared', { peer, upTo });
      announce([peer]);
      return ok({ removed });
    },
    'message:send': async ({ peer, text }) => {
      const target = history.peer(peer);
      if (!target) return fail('E_UNKNOWN_PEER', 'no such person');
      const id = randomBytes(16).toString('base64url');
      const kaKey = target.pendingKaKey ?? target.kaKey;
      let message: Message;
      try {
        message = history.addOutgoing({ id, peer, text }, (sentAt) => {
          const sealed = seal(identity, kaKey, { from: identity.userId, to: peer, id, sentAt }, text);
          // The relay counts bytes, and most letters outside ASCII take two to four of them.
          const bytes = Buffer.byteLength(sealed);
          if (bytes > LIMITS.bodyBytes) throw new TooLong(bytes);
          return sealed;
        });
      } catch (error) {
        // Not saved, so not sent: the window keeps the draft and shows why.
        if (error instanceof TooLong) {
          return fail('E_TOO_LARGE', `This message is too long to send: encrypted, it takes ${kb(error.bytes)} KB, and the limit is ${kb(LIMITS.bodyBytes)} KB (letters outside the Latin alphabet and emoji take more room). Shorten it or send it in parts.`);
        }
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
      // As it is now: the outbox may have failed it again at once (too long, say), and the
      // window applies this answer after the events that said so.
      return ok(history.from(again.peer, n, 1)[0] ?? again);
    },
    'message:delete': async ({ n }) => {
      // Asked first: once the row is gone, the outbox's answer for it changes nothing.
      const onItsWay = outbox.sending(n);
      let removed: ReturnType<History['remove']>;
      try {
        removed = history.remove(n);
      } catch (error) {
        if (isDiskFull(error)) return fail('E_STORAGE', 'Your disk is full, so the message was not deleted. Free some space and try again.');
        throw error;
      }
      if (!removed) return fail('E_NOT_FOUND', 'no such message');
      const { message, attempted } = removed;
      emit('message:removed', { peer: message.peer, n });
      announce([message.peer]);
      return ok({ state: message.state, withdrawn: message.direction === 'out' && message.state === 'queued' && !attempted && !onItsWay });
    },
    'draft:save': async ({ peer, text }) => {
      if (!history.peer(peer)) return fail('E_UNKNOWN_PEER', 'no such person');
      try {
        if (history.setDraft(peer, text)) announce([peer]);
      } catch (error) {
        // The window still holds it; only a restart would lose it.
        if (isDiskFull(error)) return fail('E_STORAGE', 'Your disk is full, so the draft was not saved.');
        throw error;
      }
      return ok(null);
    },
    'typing:set': async ({ peer, typing }) => {
      connection()?.typing(peer, typing);
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
    'settings:get': async () => ok(settingsOf(history)),
    'settings:set': async (patch) => ok(changeSettings(history, patch)),
  };
}
