// A fake window.parley for component tests: answers commands from in-memory data the way
// main/core/messenger.ts does, records every call, and lets a test push events.
import type { AppStatus, COMMANDS, Commands, EVENTS, Events, Message, ParleyApi, Person, Profile, Result } from '../../preload/contract.ts';

type CommandKey = keyof typeof COMMANDS;
type EventKey = keyof typeof EVENTS;
type ArgOf<K extends CommandKey> = Parameters<ParleyApi[K]>[0];
type ResultOf<K extends CommandKey> = Result<Commands[(typeof COMMANDS)[K]][1]>;
type Handler<K extends CommandKey> = (arg: ArgOf<K>) => ResultOf<K> | Promise<ResultOf<K>>;

export interface Call {
  method: CommandKey;
  arg: unknown;
}

export const ME: Profile = { userId: 'meeeeeeeeeeeeeeeeeeeeeeeeeeeeeee', name: 'Dana', fingerprint: 'f00d 1234', secretProtection: 'os-encrypted' };
export const ONLINE: AppStatus = { connection: { state: 'online', relay: '10.0.0.2:47800', relayId: 'r', relayName: 'Lab relay' }, hosting: null, sync: null };

const ok = <T>(value: T): Result<T> => ({ ok: true, value });
const OPEN_WHILE_LOCKED: readonly CommandKey[] = ['appInfo', 'openLink', 'unlock'];

let nextId = 0;
/** A user id as the contract has them: 32 base32 characters. */
export function userId(seed: string): string {
  return (seed.toLowerCase().replace(/[^a-z]/g, '') + 'abcdefghijklmnopqrstuvwxyzabcdefgh').slice(0, 32);
}

export function person(name: string, extra: Partial<Person> = {}): Person {
  return { id: userId(name), name, fingerprint: 'abcd 1234', online: false, lastSeen: 0, unread: 0, last: null, verified: false, keyChanged: false, nameClash: false, draft: null, ...extra };
}

export function message(peer: string, n: number, extra: Partial<Message> = {}): Message {
  const at = Date.UTC(2025, 0, 1, 12) + n * 60_000;
  return { n, id: `m${n}`, peer, direction: 'in', text: `message ${n}`, state: 'received', error: null, flagged: false, sentAt: at, createdAt: at, readAt: at, ...extra };
}

export class FakeParley {
  readonly calls: Call[] = [];
  profile: Profile | null = ME;
  status: AppStatus = ONLINE;
  people: Person[] = [];
  /** Set to seal the keys: until unlock() with it, commands answer E_LOCKED as main's do. */
  passphrase: string | null = null;
  private unlocked = false;
  /** Each conversation's history, sorted by n. */
  readonly history = new Map<string, Message[]>();
  private readonly overrides: { [K in CommandKey]?: Handler<K> } = {};
  private readonly listeners = new Map<EventKey, Set<(payload: never) => void>>();
  private readonly held = new Map<CommandKey, Promise<void>>();
  private n = 10_000;

  /** Replaces how one command answers. */
  on<K extends CommandKey>(method: K, handler: Handler<K>): void {
    (this.overrides as Record<K, Handler<K>>)[method] = handler;
  }

  /**
   * Holds back the answers to one command until the returned function is called. Each answer
   * is worked out when the command is called, as main reads its data before it answers.
   */
  hold(method: CommandKey): () => void {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    this.held.set(method, released);
    return () => {
      this.held.delete(method);
      release();
    };
  }

  callsOf(method: CommandKey): unknown[] {
    return this.calls.filter((c) => c.method === method).map((c) => c.arg);
  }

  emit<K extends EventKey>(event: K, payload: Events[(typeof EVENTS)[K]]): void {
    for (const listener of this.listeners.get(event) ?? []) (listener as (p: typeof payload) => void)(payload);
  }

  listening(event: EventKey): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  // Optional so one shape fits commands with and without an argument.
  private command<K extends CommandKey>(method: K, fallback: Handler<K>): (arg?: ArgOf<K>) => Promise<ResultOf<K>> {
    return async (arg) => {
      this.calls.push({ method, arg: arg ?? null });
      if (this.passphrase !== null && !this.unlocked && !OPEN_WHILE_LOCKED.includes(method)) {
        return { ok: false, error: { code: 'E_LOCKED', message: 'Parley is locked: enter your passphrase first.' } };
      }
      const handler = (this.overrides as Record<K, Handler<K> | undefined>)[method] ?? fallback;
      const held = this.held.get(method);
      const answer = handler(arg as ArgOf<K>);
      if (held) await held;
      return answer;
    };
  }

  private subscribe<K extends EventKey>(event: K): (listener: (payload: Events[(typeof EVENTS)[K]]) => void) => () => void {
    return (listener) => {
      let set = this.listeners.get(event);
      if (!set) this.listeners.set(event, (set = new Set()));
      set.add(listener as (payload: never) => void);
      return () => void set.delete(listener as (payload: never) => void);
    };
  }

  private messages(peer: string): Message[] {
    return this.history.get(peer) ?? [];
  }

  readonly api: ParleyApi = {
    appInfo: this.command('appInfo', () => ok({ version: '0.1.0', protocol: 1, platform: 'linux' })),
    status: this.command('status', () => ok(this.status)),
    profile: this.command('profile', () => ok(this.profile)),
    setupProfile: this.command('setupProfile', ({ name }) => ok((this.profile = { ...ME, name }))),
    startHosting: this.command('startHosting', ({ port }) => ok({ port: port ?? 47800, addresses: ['192.168.1.5:47800'], accessCode: 'ABCDE-12345', relayName: 'Dana’s Parley', relayId: 'own' })),
    stopHosting: this.command('stopHosting', () => ok(null)),
    newAccessCode: this.command('newAccessCode', () => ok({ port: 47800, addresses: [], accessCode: 'NEWCO-DE123', relayName: 'x', relayId: 'own' })),
    join: this.command('join', () => ok(null)),
    leave: this.command('leave', () => ok(null)),
    rememberedRelays: this.command('rememberedRelays', () => ok([])),
    foundRelays: this.command('foundRelays', () => ok([])),
    people: this.command('people', () => ok(this.people)),
    page: this.command('page', ({ peer, before, limit }) => {
      const older = this.messages(peer).filter((m) => before === undefined || m.n < before);
      return ok(older.slice(Math.max(0, older.length - (limit ?? 50))));
    }),
    pageFrom: this.command('pageFrom', ({ peer, n, limit }) => ok(this.messages(peer).filter((m) => m.n >= n).slice(0, limit ?? 50))),
    firstUnread: this.command('firstUnread', ({ peer }) => ok(this.messages(peer).find((m) => m.direction === 'in' && m.readAt === null)?.n ?? null)),
    markRead: this.command('markRead', () => ok(null)),
    send: this.command('send', ({ peer, text }) => {
      const sent = message(peer, ++this.n, { id: `s${++nextId}`, direction: 'out', text, state: 'queued', readAt: null });
      this.emit('onMessageAdded', sent);
      // Stored, so its draft goes.
      const i = this.people.findIndex((p) => p.id === peer);
      const known = this.people[i];
      if (known?.draft) this.emit('onPerson', (this.people[i] = { ...known, draft: null }));
      return ok(sent);
    }),
    retry: this.command('retry', ({ n }) => {
      const found = [...this.history.values()].flat().find((m) => m.n === n);
      return found ? ok({ ...found, state: 'queued', error: null }) : { ok: false, error: { code: 'E_NOT_FOUND', message: 'no such message' } };
    }),
    deleteMessage: this.command('deleteMessage', ({ n }) => {
      for (const [peer, messages] of this.history) {
        const at = messages.findIndex((m) => m.n === n);
        const found = messages[at];
        if (!found) continue;
        messages.splice(at, 1);
        this.emit('onMessageRemoved', { peer, n });
        return ok({ state: found.state, withdrawn: found.direction === 'out' && found.state === 'queued' });
      }
      return { ok: false, error: { code: 'E_NOT_FOUND', message: 'no such message' } };
    }),
    clearConversation: this.command('clearConversation', ({ peer }) => {
      const messages = this.messages(peer);
      const upTo = messages.at(-1)?.n;
      this.history.set(peer, []);
      if (upTo !== undefined) this.emit('onConversationCleared', { peer, upTo });
      return ok({ removed: messages.length });
    }),
    saveDraft: this.command('saveDraft', ({ peer, text }) => {
      const i = this.people.findIndex((p) => p.id === peer);
      const known = this.people[i];
      if (!known) return { ok: false, error: { code: 'E_UNKNOWN_PEER', message: 'no such person' } };
      const draft = text.trim() === '' ? null : text;
      if (draft !== known.draft) this.emit('onPerson', (this.people[i] = { ...known, draft }));
      return ok(null);
    }),
    setTyping: this.command('setTyping', () => ok(null)),
    search: this.command('search', () => ok([])),
    safety: this.command('safety', ({ peer }) => ok({ peer, safetyNumber: '11111 22222 33333 44444 55555 66666 77777 88888 99999 00000 12345 67890', myFingerprint: ME.fingerprint, theirFingerprint: 'abcd 1234', verified: false })),
    verify: this.command('verify', ({ peer, verified }) => ok({ ...person('x'), ...this.people.find((p) => p.id === peer), verified })),
    acceptKey: this.command('acceptKey', ({ peer }) => ok({ ...person('x'), ...this.people.find((p) => p.id === peer), keyChanged: false })),
    settings: this.command('settings', () => ok({ notifications: true, theme: 'system', hostPort: 47800 })),
    updateSettings: this.command('updateSettings', (patch) => ok({ notifications: true, theme: 'system', hostPort: 47800, ...patch })),
    openLink: this.command('openLink', () => ok(true)),
    unlock: this.command('unlock', ({ passphrase }) => {
      if (this.passphrase !== null && passphrase !== this.passphrase) return { ok: false, error: { code: 'E_PASSPHRASE', message: 'That passphrase is not right.' } };
      this.unlocked = true;
      return ok(null);
    }),
    setPassphrase: this.command('setPassphrase', ({ passphrase, current }) => {
      if (this.passphrase !== null && current !== this.passphrase) return { ok: false, error: { code: 'E_PASSPHRASE', message: 'The current passphrase is not right.' } };
      this.passphrase = passphrase;
      this.unlocked = true;
      if (this.profile) this.profile = { ...this.profile, secretProtection: 'passphrase' };
      return ok('passphrase' as const);
    }),
    removePassphrase: this.command('removePassphrase', ({ current }) => {
      if (current !== this.passphrase) return { ok: false, error: { code: 'E_PASSPHRASE', message: 'The current passphrase is not right.' } };
      this.passphrase = null;
      if (this.profile) this.profile = { ...this.profile, secretProtection: 'plain-text-keyring' };
      return ok('plain-text-keyring' as const);
    }),
    onStatus: this.subscribe('onStatus'),
    onPerson: this.subscribe('onPerson'),
    onMessageAdded: this.subscribe('onMessageAdded'),
    onMessageUpdated: this.subscribe('onMessageUpdated'),
    onMessageRemoved: this.subscribe('onMessageRemoved'),
    onConversationCleared: this.subscribe('onConversationCleared'),
    onTyping: this.subscribe('onTyping'),
    onRelaysFound: this.subscribe('onRelaysFound'),
  };
}
