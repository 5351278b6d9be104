// The typed API between the renderer and the main process: every command with its
// arguments and result, every event with its payload. The renderer imports only types.

/** The most characters (UTF-16 code units) one message's text can hold; main and the renderer each declare a constant of this type. */
export type TextLimit = 16_384;
/** The most characters (UTF-16 code units) a saved draft can hold: room for a long draft past TextLimit, which the composer lets one shorten before sending. */
export type DraftLimit = 65_536;

export interface AppError {
  code: string;
  message: string;
}
export type Result<T> = { ok: true; value: T } | { ok: false; error: AppError };

export interface AppInfo {
  version: string;
  protocol: number;
  platform: string;
}

/** queued -> sent -> delivered -> read for outgoing messages (or failed); received for incoming. */
export type MessageState = 'queued' | 'sent' | 'delivered' | 'read' | 'failed' | 'received';

export interface Message {
  /** Local order within the conversation; also the paging cursor. */
  n: number;
  id: string;
  peer: string;
  direction: 'in' | 'out';
  text: string;
  state: MessageState;
  /** Why it failed (outgoing) or why it cannot be trusted (incoming). */
  error: string | null;
  /** Incoming only: failed to decrypt or authenticate. Never show it as genuine. */
  flagged: boolean;
  sentAt: number;
  createdAt: number;
  readAt: number | null;
}

export interface SearchHit {
  message: Message;
  peerName: string;
  /** Matched text with each hit between U+0002 and U+0003; render the parts as text. */
  snippet: string;
}

export interface Profile {
  userId: string;
  name: string;
  /** Short form of the identity key, shown beside the name. */
  fingerprint: string;
  /** How the private keys are protected at rest; 'plain-text-keyring' deserves a warning and the offer of a passphrase. */
  secretProtection: 'os-encrypted' | 'plain-text-keyring' | 'file-0600' | 'passphrase';
}

export interface Person {
  id: string;
  name: string;
  fingerprint: string;
  online: boolean;
  lastSeen: number;
  unread: number;
  last: { text: string; direction: 'in' | 'out'; at: number; flagged: boolean } | null;
  verified: boolean;
  /** Their key-agreement key changed since first seen; warn until the user accepts it. */
  keyChanged: boolean;
  /** Another person the user knows has the same display name with a different key. */
  nameClash: boolean;
  /** What the user has written to them and not sent yet (kept across restarts), or null. */
  draft: string | null;
}

export type ConnectionStatus =
  | { state: 'offline' }
  | { state: 'connecting'; relay: string }
  | { state: 'online'; relay: string; relayId: string; relayName: string }
  | { state: 'reconnecting'; relay: string; reason: string; attempt: number }
  | { state: 'refused'; relay: string; code: string; reason: string };

export interface HostInfo {
  port: number;
  /** Addresses people on the network can join with (host:port). */
  addresses: string[];
  /** Null when the relay is open to the network. */
  accessCode: string | null;
  relayName: string;
  /** The hosted relay's id: the connection is to it when its status carries the same relayId. */
  relayId: string;
}

export interface AppStatus {
  connection: ConnectionStatus;
  hosting: HostInfo | null;
  /** Messages stored from the current backlog while one is arriving, else null. */
  sync: { received: number } | null;
}

export interface DiscoveredRelay {
  relayId: string;
  name: string;
  /** host:port to join with. */
  address: string;
  accessCode: boolean;
  protocol: number;
}

export interface RememberedRelay {
  address: string;
  name: string;
  lastUsed: number;
}

export interface Settings {
  notifications: boolean;
  theme: 'system' | 'light' | 'dark';
  hostPort: number;
}

export interface SafetyInfo {
  peer: string;
  /** 60 digits in groups of 5; the same on both sides. */
  safetyNumber: string;
  myFingerprint: string;
  theirFingerprint: string;
  verified: boolean;
}

/**
 * Commands: name -> [argument, result]. Channel names are `domain:verb`.
 * While the identity is sealed with a passphrase and not yet unlocked, every command but
 * app:info, link:open and identity:unlock answers the error code 'E_LOCKED'.
 */
export interface Commands {
  'app:info': [null, AppInfo];
  'status:get': [null, AppStatus];
  'profile:get': [null, Profile | null];
  'profile:setup': [{ name: string }, Profile];
  'host:start': [{ port?: number; open: boolean }, HostInfo];
  'host:stop': [null, null];
  'host:newCode': [null, HostInfo];
  'relay:join': [{ address: string; accessCode?: string }, null];
  'relay:leave': [null, null];
  'relay:remembered': [null, RememberedRelay[]];
  /** Relays found on the LAN so far (updates arrive as 'relays:found'). */
  'relay:found': [null, DiscoveredRelay[]];
  'people:list': [null, Person[]];
  'conversation:page': [{ peer: string; before?: number; limit?: number }, Message[]];
  'conversation:from': [{ peer: string; n: number; limit?: number }, Message[]];
  /** The oldest unread incoming message's n (a conversation opens there), or null. */
  'conversation:firstUnread': [{ peer: string }, number | null];
  'conversation:markRead': [{ peer: string; upTo: number }, null];
  /**
   * Deletes every message with a person from this computer, as message:delete does each
   * (messages still in the outbox are not sent). Answers how many; announced as 'conversation:cleared'.
   */
  'conversation:clear': [{ peer: string }, { removed: number }];
  'message:send': [{ peer: string; text: string }, Message];
  'message:retry': [{ n: number }, Message];
  /**
   * Deletes a message from this computer (the other person keeps their copy). Answers its
   * state as it was then, and whether it was withdrawn: waiting in the outbox, and sure never
   * to reach the relay (a queued message that a request carried, unanswered, may). Announced
   * as 'message:removed'.
   */
  'message:delete': [{ n: number }, { state: MessageState; withdrawn: boolean }];
  /** Keeps what the composer holds for a conversation, so that it survives a restart; text with nothing but spaces removes it. Sending a message removes it too. */
  'draft:save': [{ peer: string; text: string }, null];
  'typing:set': [{ peer: string; typing: boolean }, null];
  'search:query': [{ query: string }, SearchHit[]];
  'peer:safety': [{ peer: string }, SafetyInfo];
  'peer:verify': [{ peer: string; verified: boolean }, Person];
  'peer:acceptKey': [{ peer: string }, Person];
  'settings:get': [null, Settings];
  'settings:set': [Partial<Settings>, Settings];
  'link:open': [{ url: string }, boolean];
  /** Opens a passphrase-sealed identity and starts the messenger; a wrong passphrase is 'E_PASSPHRASE'. */
  'identity:unlock': [{ passphrase: string }, null];
  /** Seals the identity with a passphrase (changing one needs `current`); answers the new protection. */
  'identity:setPassphrase': [{ passphrase: string; current?: string }, Profile['secretProtection']];
  /** Takes the passphrase away (proven by `current`); the keys go back to the system's keeping. Answers the new protection. */
  'identity:removePassphrase': [{ current: string }, Profile['secretProtection']];
}
export type CommandName = keyof Commands;

/** Events main -> renderer: name -> payload. */
export interface Events {
  status: AppStatus;
  person: Person;
  'message:added': Message;
  'message:updated': Message;
  /** A message was deleted from this computer. */
  'message:removed': { peer: string; n: number };
  /** Every message with `peer` up to n `upTo` was deleted from this computer. */
  'conversation:cleared': { peer: string; upTo: number };
  typing: { peer: string; typing: boolean };
  'relays:found': DiscoveredRelay[];
}
export type EventName = keyof Events;

/** window.parley's functions and the channels behind them. */
export const COMMANDS = {
  appInfo: 'app:info',
  status: 'status:get',
  profile: 'profile:get',
  setupProfile: 'profile:setup',
  startHosting: 'host:start',
  stopHosting: 'host:stop',
  newAccessCode: 'host:newCode',
  join: 'relay:join',
  leave: 'relay:leave',
  rememberedRelays: 'relay:remembered',
  foundRelays: 'relay:found',
  people: 'people:list',
  page: 'conversation:page',
  pageFrom: 'conversation:from',
  firstUnread: 'conversation:firstUnread',
  markRead: 'conversation:markRead',
  clearConversation: 'conversation:clear',
  send: 'message:send',
  retry: 'message:retry',
  deleteMessage: 'message:delete',
  saveDraft: 'draft:save',
  setTyping: 'typing:set',
  search: 'search:query',
  safety: 'peer:safety',
  verify: 'peer:verify',
  acceptKey: 'peer:acceptKey',
  settings: 'settings:get',
  updateSettings: 'settings:set',
  openLink: 'link:open',
  unlock: 'identity:unlock',
  setPassphrase: 'identity:setPassphrase',
  removePassphrase: 'identity:removePassphrase',
} as const satisfies Record<string, CommandName>;

export const EVENTS = {
  onStatus: 'status',
  onPerson: 'person',
  onMessageAdded: 'message:added',
  onMessageUpdated: 'message:updated',
  onMessageRemoved: 'message:removed',
  onConversationCleared: 'conversation:cleared',
  onTyping: 'typing',
  onRelaysFound: 'relays:found',
} as const satisfies Record<string, EventName>;

type Command<C extends CommandName> = Commands[C][0] extends null
  ? () => Promise<Result<Commands[C][1]>>
  : (arg: Commands[C][0]) => Promise<Result<Commands[C][1]>>;

/** What window.parley offers: one named function per command, one per event subscription. */
export type ParleyApi = { [M in keyof typeof COMMANDS]: Command<(typeof COMMANDS)[M]> } & {
  [M in keyof typeof EVENTS]: (listener: (payload: Events[(typeof EVENTS)[M]]) => void) => () => void;
};

/** Channel used for events main -> renderer: `event:<name>`. */
export const eventChannel = (name: EventName): string => `event:${name}`;

declare global {
  interface Window {
    parley: ParleyApi;
  }
}
